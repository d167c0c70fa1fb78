//===- HostTargets.h - which x86-64 targets the codegen tests run ---------===//
//
// The codegen tests run every case once per x86-64 schedule family
// (TargetInfo.h), each on its own Halide target, and skip the families
// this CPU cannot execute.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_CODEGEN_HOSTTARGETS_H
#define KILN_TEST_UNIT_CODEGEN_HOSTTARGETS_H

#include "kiln/CodeGen/Halide/TargetInfo.h"

#include <Halide.h>

#include <string>

namespace kiln::test {

/// One target per x86-64 schedule family, most specific first.
inline const char *const kX86Targets[] = {"x86-64-linux-avx512_skylake",
                                          "x86-64-linux-avx2-fma", "x86-64-linux-sse41"};

/// Whether this CPU runs code for `target` (the host has all its features).
inline bool hostRuns(const Halide::Target &target) {
  Halide::Target host = kiln::codegen::hostTarget();
  if (host.arch != target.arch || host.bits != target.bits)
    return false;
  for (int f = 0; f < Halide::Target::FeatureEnd; ++f) {
    auto feature = static_cast<Halide::Target::Feature>(f);
    if (target.has_feature(feature) && !host.has_feature(feature))
      return false;
  }
  return true;
}

/// The reason a test for `target` is skipped on this CPU.
inline std::string cannotRunReason(const std::string &target) {
  return "this CPU cannot run " + target + " code (host: " +
         kiln::codegen::hostTarget().to_string() + ")";
}

/// "x86-64-linux-avx2-fma" -> "avx2_fma": the part of a test name that
/// names the target.
inline std::string targetSuffix(const std::string &target) {
  std::string suffix = target.rfind("x86-64-linux-", 0) == 0 ? target.substr(13) : target;
  for (char &ch : suffix)
    if (!isalnum(static_cast<unsigned char>(ch)))
      ch = '_';
  return suffix;
}

} // namespace kiln::test

#endif // KILN_TEST_UNIT_CODEGEN_HOSTTARGETS_H

//===- TargetInfoTest.cpp - the host target names only what the CPU has ---===//
//
// Halide 14's get_host_target() names avx512_sapphirerapids on any CPU with
// AVX512-BF16, and code built for it may use AVX-VNNI; on an AMD Zen 4
// (AVX512-BF16, no AVX-VNNI) that died of SIGILL. hostTarget() and
// jitTarget() drop it there; GCC's CPU detection is the independent check.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/TargetInfo.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

using Halide::Target;

TEST(HostTarget, NamesAvxVnniOnlyWhereTheCpuHasIt) {
  Target host = kiln::codegen::hostTarget();
  if (host.arch != Target::X86)
    GTEST_SKIP() << "not an x86-64 host: " << host.to_string();
  if (!__builtin_cpu_supports("avxvnni"))
    EXPECT_FALSE(host.has_feature(Target::AVX512_SapphireRapids)) << host.to_string();
  // The rest of Halide's detection is kept.
  EXPECT_EQ(host.has_feature(Target::AVX2), bool(__builtin_cpu_supports("avx2")));
  EXPECT_EQ(host.has_feature(Target::AVX512_Skylake),
            Halide::get_host_target().has_feature(Target::AVX512_Skylake));
}

TEST(HostTarget, ParsesHostAsHostTarget) {
  std::vector<kiln::codegen::TargetInfo> infos;
  std::string error;
  ASSERT_TRUE(kiln::codegen::parseTargets("host", infos, error)) << error;
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].target, kiln::codegen::hostTarget());
  EXPECT_EQ(kiln::codegen::hostTargetInfo().target, kiln::codegen::hostTarget());
}

TEST(JitTarget, IsTheHostTargetWithJitUnlessHlJitTargetSaysOtherwise) {
  const char *saved = std::getenv("HL_JIT_TARGET");
  std::string savedValue = saved ? saved : "";
  unsetenv("HL_JIT_TARGET");
  Target jit = kiln::codegen::jitTarget();
  EXPECT_TRUE(jit.has_feature(Target::JIT));
  EXPECT_EQ(jit.without_feature(Target::JIT), kiln::codegen::hostTarget());
  // An explicit choice is the user's, kept as given.
  setenv("HL_JIT_TARGET", "x86-64-linux-avx512_sapphirerapids", 1);
  EXPECT_TRUE(kiln::codegen::jitTarget().has_feature(Target::AVX512_SapphireRapids));
  if (saved)
    setenv("HL_JIT_TARGET", savedValue.c_str(), 1);
  else
    unsetenv("HL_JIT_TARGET");
}

} // namespace

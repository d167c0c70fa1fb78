//===- Toolchain.h - the tools and runtime kilnc links a target with -*- C++ -*-===//
//
// `kilnc build` turns Halide's object into an executable, object or library
// with a C compiler and binutils, against Kiln's runtime. Which ones depends
// on the target: the host's `cc`, `ld`, `ar`, `objcopy` when the target is
// the machine kilnc runs on, `<triple>-gcc`, `<triple>-ld`, ... (Debian's
// cross toolchains) otherwise; `--cc` replaces the C compiler.
//
// Kiln's runtime (headers, libraries) is found relative to kilnc's own
// executable, never through paths of the source or build tree: kilnc at
// PREFIX/bin/kilnc reads
//   PREFIX/include/kiln/runtime/*.h    the runtime's C API (model.h, ...)
//   PREFIX/lib/kiln/<triple>/          the runtime libraries for <triple>
// The build tree has the same layout (build/bin/kilnc, build/include,
// build/lib/kiln), so a build tree and an install, moved or not, behave alike.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_TOOLCHAIN_H
#define KILN_DRIVER_TOOLCHAIN_H

#include "mlir/IR/Location.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace kiln {

/// What a model's output is linked against, for one target machine.
struct RuntimePaths {
  std::string prefix;        // PREFIX of PREFIX/bin/kilnc
  std::string includeDir;    // PREFIX/include (kiln/runtime/*.h)
  std::string libraryDir;    // PREFIX/lib/kiln/<triple>
  std::string modelLibrary;  // libkiln_runtime_model.a: merged into every model (C)
  std::string runnerLibrary; // libkiln_runtime.a: the runner of executables (C++)
};

/// The programs and runtime that build outputs for one target machine.
struct Toolchain {
  std::string triple;  // GNU triple of the target: x86_64-linux-gnu, aarch64-linux-gnu
  bool cross = false;  // the target is not the machine kilnc was built for
  std::string cc;      // compiles the generated C, links libraries and programs
  std::string ld, ar, objcopy;
  RuntimePaths runtime;

  /// System libraries every output needs (Halide's runtime: threads, dlopen, libm).
  std::vector<std::string> systemLibraries() const;
  /// What an executable links after Kiln's runtime libraries: the runner is
  /// C++ (libstdc++) and reads gzip-compressed IDX files (zlib).
  std::vector<std::string> executableLibraries() const;
};

/// The GNU triple of the Linux machine `target` runs on, or an error message.
bool tripleForTarget(const Halide::Target &target, std::string &triple, std::string &error);

/// Finds the tools and the runtime for `targets` (a build's variants, which
/// must all run on one machine); `cc` (from --cc, may be empty) names the C
/// compiler instead of the machine's default. Reports what is missing, with
/// the Debian package that provides it.
mlir::FailureOr<Toolchain> resolveToolchain(mlir::Location loc,
                                            llvm::ArrayRef<Halide::Target> targets,
                                            llvm::StringRef cc);

/// Runs `program` with `args`, its output captured in `logPath`. On success
/// the output (warnings) is passed on to stderr; on failure the error is one
/// line: the tool, its exit status and the first line of its output that
/// says what went wrong.
mlir::LogicalResult runTool(mlir::Location loc, llvm::StringRef program,
                            llvm::ArrayRef<std::string> args, llvm::StringRef logPath);

} // namespace kiln

#endif // KILN_DRIVER_TOOLCHAIN_H

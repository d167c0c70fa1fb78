//===- Build.h - ahead-of-time outputs of kilnc build -----------*- C++ -*-===//
#ifndef KILN_DRIVER_BUILD_H
#define KILN_DRIVER_BUILD_H

#include "kiln/Driver/Compile.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace kiln {

enum class OutputKind { Executable, Object, StaticLibrary, SharedLibrary };

struct BuildOptions {
  std::string outputPath;          // -o: OUT, OUT.o, libOUT.a, libOUT.so
  OutputKind kind = OutputKind::Executable;
  bool allowExtraKeys = false;     // external weights: ignore unknown tensors
  bool allowNonfinite = false;     // external weights: accept NaN/Inf, negative variances
  std::string cc;                  // --cc: the C compiler (default: the target's, Toolchain.h)
};

/// The C identifier of the generated API: the base name of `outputPath`
/// without directory, extension or "lib" prefix of a library.
std::string apiNameFor(const BuildOptions &options);

/// Compiles the lowered pipeline ahead of time and writes the requested
/// output next to a documented C header (OUT.h). Objects are linked with the
/// target's C compiler and binutils (resolveToolchain). Outputs are written to a temporary directory and
/// renamed into place, so a failure leaves nothing half-written.
mlir::LogicalResult buildOutputs(mlir::ModuleOp module,
                                 std::vector<TargetVariant> &variants,
                                 const BuildOptions &options);

/// The statement Halide lowers the pipeline to, for the target it was
/// scheduled for (kilnc emit --emit=halide-stmt).
mlir::LogicalResult printHalideStmt(codegen::LoweredModel &model, llvm::raw_ostream &os);

} // namespace kiln

#endif // KILN_DRIVER_BUILD_H

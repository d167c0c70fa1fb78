//===- Build.h - ahead-of-time outputs of kilnc build -----------*- C++ -*-===//
#ifndef KILN_DRIVER_BUILD_H
#define KILN_DRIVER_BUILD_H

#include "kiln/Driver/Compile.h"
#include "kiln/Driver/OutputPath.h"

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
  std::vector<std::string> inputs; // the model and weights files: no output may be one of them
};

/// The C identifier of the generated API: the base name of `outputPath`
/// without directory, extension or "lib" prefix of a library.
std::string apiNameFor(const BuildOptions &options);

/// Where a build's outputs go: the product (-o) and the header beside it
/// (OUT.h, in the directory -o names), resolved by the runtime's rules
/// (OutputPath.h): regular files only (or links to them), two distinct
/// files, neither one of `options.inputs`.
struct BuildPaths {
  std::unique_ptr<OutputPath> product, header;
};

/// Resolves the paths of a build's outputs, and checks that the API name
/// (from -o) is a C identifier; reports the first problem at `loc`. Nothing
/// is created. kilnc calls it before compiling, so that a bad -o fails at
/// once; buildOutputs calls it again.
mlir::LogicalResult resolveBuildPaths(mlir::Location loc, const BuildOptions &options,
                                      BuildPaths &paths);

/// Compiles the lowered pipeline ahead of time and writes the requested
/// output next to a documented C header (OUT.h). Objects are linked with the
/// target's C compiler and binutils (resolveToolchain). Everything is made in
/// a work directory beside the product and goes into place only once all of
/// it succeeded, the paths resolved again: the header, then the product by
/// rename (removing the header again if that fails). So a failed build
/// leaves neither file, and nothing half-written.
mlir::LogicalResult buildOutputs(mlir::ModuleOp module,
                                 std::vector<TargetVariant> &variants,
                                 const BuildOptions &options);

/// The model's train section as the trainer's defaults
/// (kiln/runtime/train_runner.h's kiln_train_section_t): what training
/// builds compile in and `kilnc train` checks its run against.
struct TrainSection {
  int64_t epochs = 1, batch = 64;
  double validation = 0;
  int64_t patience = 0; // early_stopping; 0: none
  double delta = 0;
  int64_t seed = 0;
  std::string data;     // "fashion_mnist", or empty
  float scale = 1.0f / 255.0f, mean = 0, stddev = 1;
};
TrainSection trainSection(mlir::ModuleOp module);

/// `kilnc build --mode=train`: compiles each variant's training step and
/// eval forward (compileTraining; `module` is the one prepared for
/// training) ahead of time, with the generated C of the trainer runtime
/// (kiln/runtime/trainer.h) and a header OUT.h declaring OUT_create,
/// OUT_load_state, OUT_train_step, OUT_eval, OUT_save_state, ...; an
/// executable runs as `kilnc train` does (kiln/runtime/train_runner.h).
/// Assembled, checked and moved into place as buildOutputs does.
mlir::LogicalResult buildTrainOutputs(mlir::ModuleOp module, TrainCompilation &compiled,
                                      const BuildOptions &options);

/// The statement Halide lowers the pipeline to, for the target it was
/// scheduled for (kilnc emit --emit=halide-stmt).
mlir::LogicalResult printHalideStmt(codegen::LoweredModel &model, llvm::raw_ostream &os);

} // namespace kiln

#endif // KILN_DRIVER_BUILD_H

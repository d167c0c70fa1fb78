//===- Compile.h - from a model to its Halide pipelines ---------*- C++ -*-===//
//
// The one place pipelines are assembled: every tool and test that turns a
// module into code goes through compileModel with one options struct, so
// kilnc's flags, the JIT tests and AOT builds get the same pipelines.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_COMPILE_H
#define KILN_DRIVER_COMPILE_H

#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Driver.h"

#include <string>
#include <vector>

namespace kiln {

struct CompileOptions {
  /// Binding and the nn passes (weights, fold, report).
  InferenceOptions inference;
  /// `--target`: a Halide target string, `host`, or a comma-separated list
  /// (one variant per target, most specific first).
  std::string target = "host";
  /// The module's functions to compile, one pipeline each.
  std::vector<std::string> entryPoints = {"forward"};
  /// Kiln's hand schedules; without, the serial reference schedule.
  bool schedule = true;
  /// Linear and conv layers per stage, and the most a model may have and
  /// stay one pipeline (codegen::LoweringOptions).
  int stageLayers = codegen::LoweringOptions::kStageLayers;
  int unstagedLayers = codegen::LoweringOptions::kUnstagedLayers;
};

/// The pipelines of one target: one per entry point, in order.
struct TargetVariant {
  codegen::TargetInfo target;
  std::vector<codegen::LoweredModel> entries;
};

/// Parses the targets, binds the weights and runs the inference passes on
/// `module`, then lowers every entry point once per target. Errors are
/// reported through the module's context (a bad target names the entry).
mlir::FailureOr<std::vector<TargetVariant>> compileModel(mlir::ModuleOp module,
                                                         const CompileOptions &options);

/// The pipelines of a training build for one target: nn-autodiff's
/// training step, and the eval forward (inference mode: running
/// statistics, BatchNorm folded) as an inference build with external
/// weights lowers it, so that its load pipelines pack the training state.
struct TrainVariant {
  codegen::TargetInfo target;
  codegen::LoweredModel step;
  codegen::LoweredModel eval;
};

struct TrainCompilation {
  /// The module the eval forward was lowered from (a copy of the model
  /// before training: inference passes, no weights bound).
  mlir::OwningOpRef<mlir::ModuleOp> evalModule;
  /// Most specific first, as CompileOptions::target lists them.
  std::vector<TrainVariant> variants;
};

/// `kilnc build --mode=train` and `kilnc emit --emit=halide-stmt
/// --mode=train`: runs the training pipeline (prepareForTraining with
/// `autodiff`) on `module` and the inference pipeline (external weights) on
/// a copy of it, then lowers @train_step and @forward once per target of
/// `options` (whose weights options are not used). Errors are reported.
mlir::FailureOr<TrainCompilation> compileTraining(mlir::ModuleOp module,
                                                  const CompileOptions &options,
                                                  const nn::AutodiffOptions &autodiff);

} // namespace kiln

#endif // KILN_DRIVER_COMPILE_H

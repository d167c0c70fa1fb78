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

} // namespace kiln

#endif // KILN_DRIVER_COMPILE_H

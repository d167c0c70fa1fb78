//===- Lowering.h - nn graph to one Halide pipeline -------------*- C++ -*-===//
//
// One Halide pipeline per entry point (see DESIGN.md). Each nn op kind has
// one builder that defines its Funcs (the algorithm, Lowering.cpp); the
// schedule is decided apart from it (Schedule.cpp), once the whole graph is
// built, and the same schedule serves JIT (tests, training) and AOT
// (objects, libraries, executables).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_HALIDE_LOWERING_H
#define KILN_CODEGEN_HALIDE_LOWERING_H

#include "mlir/IR/BuiltinOps.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace kiln::codegen {

struct LoweringOptions {
  /// Apply Kiln's hand schedules; without, every layer is computed whole,
  /// in order, serially and unvectorized (the reference for tests).
  bool schedule = true;
  /// Weights not bound to values become inputs of the pipeline, filled by a
  /// second pipeline (`load`) from the state_dict tensors when the program
  /// loads its weights; without, every weight must be bound.
  bool externalWeights = false;
};

/// A state_dict tensor the load pipeline reads (external weights).
struct StateTensor {
  std::string key;            // the state_dict name
  std::vector<int64_t> shape; // tensor order
  Halide::ImageParam param;
};

/// A weight in the layout the inference pipeline reads, computed by the
/// load pipeline from the state_dict tensors (external weights).
struct PackedWeight {
  std::vector<int> extents;   // Halide order (innermost first), dense
  Halide::ImageParam param;   // what the inference pipeline reads
  Halide::Func layout;        // what the load pipeline computes
};

/// What code generation knows of each layer, for the scheduler.
struct LayerFuncs {
  enum class Kind { Linear, Conv2D, Pool, Flatten, Elementwise, BatchStats };
  Kind kind;
  std::string name;
  Halide::Func output;
  Halide::Func reduction; // the accumulator of linear, conv2d, pooling
  std::vector<int64_t> shape; // tensor order; shape[0] is the batch
  int64_t reductionSize = 0;  // linear: in_features
};

struct LoweredModel {
  std::string name;
  Halide::ImageParam input;
  Halide::Func output;
  std::vector<int64_t> inputShape;  // tensor order; [0] is the dynamic batch
  std::vector<int64_t> outputShape;
  std::vector<LayerFuncs> layers;   // in graph order
  /// Bytes of weight data the pipeline embeds, or with external weights
  /// reads from memory the load pipeline fills.
  int64_t weightBytes = 0;
  /// External weights only: the load pipeline's inputs and outputs.
  std::vector<StateTensor> stateTensors;
  std::vector<PackedWeight> packedWeights;

  bool externalWeights = false;

  bool hasExternalWeights() const { return externalWeights; }
  Halide::Pipeline pipeline() const { return Halide::Pipeline(output); }
  /// The inference pipeline's arguments: the input, then the packed weights.
  std::vector<Halide::Argument> arguments() const;
  /// The load pipeline: state_dict tensors in, packed weights out.
  Halide::Pipeline loadPipeline() const;
  std::vector<Halide::Argument> loadArguments() const;
};

/// Builds the Halide algorithm of the module's forward function and, with
/// `options.schedule`, its schedule. Every parameter must be bound unless
/// `options.externalWeights`.
/// Errors are reported at the op that caused them.
mlir::FailureOr<LoweredModel> lowerToHalide(mlir::ModuleOp module,
                                            const LoweringOptions &options = {});

/// Kiln's schedules for CPU targets (Schedule.cpp).
void scheduleForCpu(LoweredModel &model);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_HALIDE_LOWERING_H

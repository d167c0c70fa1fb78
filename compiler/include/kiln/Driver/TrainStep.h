//===- TrainStep.h - the compiled training step as a C++ call ---*- C++ -*-===//
//
// nn-autodiff's @train_step lowered to one Halide pipeline and JIT-compiled,
// with its state (parameters, buffers, optimizer state, the step count) held
// here between calls under the state_dict's keys: load it from a safetensors
// checkpoint (or set it with InitialState.h's initialiseState), run a step
// per batch, read it back. The trainer (epochs, `kilnc train`) builds on
// this call.
//
// Buffers are allocated once, at create: each state tensor has two, the
// step reads one and writes the other, and they swap (a Halide pipeline's
// outputs must not alias its inputs). The pipeline's own intermediate
// buffers come from a ReusingAllocator: after the first step of a batch
// size, a step allocates nothing (systemAllocations() stays put).
// Not thread-safe: one step at a time per TrainStep.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_TRAINSTEP_H
#define KILN_DRIVER_TRAINSTEP_H

#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/ReusingAllocator.h"

#include "mlir/IR/BuiltinOps.h"

#include <Halide.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln {

/// What one step reports (before the update: the step's own forward).
struct StepMetrics {
  float loss = 0;
  int64_t correct = 0;
};

/// Where a lowered @train_step keeps its state and metrics: each state
/// tensor is an input (static shape) and the output of the same key, one
/// buffer that the step's update stage writes in place (LoweredStage); the
/// JIT (TrainStep) and AOT builds (kilnc build --mode=train) bind them
/// alike.
struct TrainStepLayout {
  struct Slot {
    std::string key;
    size_t input = 0, output = 0; // indices in model.inputs / model.outputs
  };
  std::vector<Slot> slots; // the step's argument order
  size_t loss = 0, correct = 0; // indices in model.outputs
  /// The classes (cross-entropy's logits) and the smallest batch a step
  /// takes: 2 where a train-mode BatchNorm1d on [N, C] would see one value
  /// per channel, else 1.
  int64_t classes = 0, smallestBatch = 1;
};

/// The layout of `model`, lowered from `module`'s @train_step.
TrainStepLayout trainStepLayout(mlir::ModuleOp module, const codegen::LoweredModel &model);

/// Whether `key` names optimizer state (absent from a fresh checkpoint, so
/// zero): "step", or the key of another of `keys` with an optimizer suffix
/// (.momentum_buffer, .exp_avg, .exp_avg_sq).
bool isOptimizerState(const std::string &key, const std::vector<std::string> &keys);

class TrainStep {
public:
  /// Lowers `module`'s @train_step (made by prepareForTraining) with
  /// `options` and JIT-compiles it. Errors are reported at the op that
  /// caused them; null on failure.
  static std::unique_ptr<TrainStep> create(mlir::ModuleOp module,
                                           const codegen::LoweringOptions &options = {});

  /// Every state tensor's key, in the step's argument order (the
  /// state_dict's, then the optimizer state, then "step").
  std::vector<std::string> stateKeys() const;
  /// The current value of state tensor `key`, or null if the step has none.
  Halide::Buffer<> *state(const std::string &key);

  /// Sets the state from a safetensors file: every parameter and buffer of
  /// the model must be there with its shape (f32; integer counters as
  /// i64); optimizer state tensors and "step" are read where present and
  /// are zero where absent (a fresh optimizer, as torch.optim's). Nothing
  /// is changed on failure. False with a message naming the file and tensor.
  bool loadState(const std::string &path, std::string &error);

  /// One training step on `batch` samples: `inputs` in the model's input
  /// layout (C order), `labels` class indices. Refuses labels outside
  /// [0, classes) (PyTorch's "Target out of bounds") and a batch of 1 where
  /// a BatchNorm would see one value per channel. A step refused, or one
  /// whose gradients stage fails, changes nothing; one whose update stage
  /// fails (only a device could) leaves the state partly updated, and every
  /// later step is refused until a loadState.
  bool step(const float *inputs, const int64_t *labels, int64_t batch, StepMetrics &out,
            std::string &error);

  /// Floats of one sample of the input, and the classes.
  int64_t sampleSize() const;
  int64_t classes() const { return numClasses; }
  /// The smallest batch step() accepts (2 where a BatchNorm1d on [N, C]
  /// would see one value per channel, else 1).
  int64_t smallestBatch() const { return minBatch; }
  /// Memory blocks the step's pipeline has taken from the system so far.
  size_t systemAllocations() const { return allocator->systemAllocations(); }

private:
  TrainStep() = default;

  codegen::LoweredModel model;
  Halide::Target target;
  struct Slot {
    std::string key;
    size_t input = 0, output = 0; // indices in model.inputs / model.outputs
    Halide::Buffer<> value;       // both: updated in place
  };
  std::vector<Slot> slots;
  size_t lossOutput = 0, correctOutput = 0;
  Halide::Buffer<float> loss;
  Halide::Buffer<int64_t> correct;
  int64_t numClasses = 0;
  /// The smallest batch train-mode BatchNorm accepts (2 where a channel
  /// has one value per sample, BatchNorm1d on [N, C]).
  int64_t minBatch = 1;
  /// An update stage failed: the state is partly updated (see step).
  bool stateLost = false;
  std::unique_ptr<ReusingAllocator> allocator = std::make_unique<ReusingAllocator>();
};

} // namespace kiln

#endif // KILN_DRIVER_TRAINSTEP_H

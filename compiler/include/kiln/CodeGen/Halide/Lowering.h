//===- Lowering.h - nn graph to one Halide pipeline -------------*- C++ -*-===//
//
// One Halide pipeline per entry point (docs/architecture.md). Each nn op kind has
// one builder that defines its Funcs (the algorithm, Lowering.cpp); the
// schedule is decided apart from it (Schedule.cpp), once the whole graph is
// built, and the same schedule serves JIT (tests, training) and AOT
// (objects, libraries, executables).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_HALIDE_LOWERING_H
#define KILN_CODEGEN_HALIDE_LOWERING_H

#include "kiln/CodeGen/Halide/TargetInfo.h"

#include "mlir/IR/BuiltinOps.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace kiln::codegen {

struct LoweringOptions {
  /// The target the layouts and schedules are made for.
  TargetInfo target = hostTargetInfo();
  /// Apply Kiln's hand schedules; without, every layer is computed whole,
  /// in order, serially and unvectorized (the reference for tests).
  bool schedule = true;
  /// Weights not bound to values become inputs of the pipeline, filled by a
  /// second pipeline (`load`) from the state_dict tensors when the program
  /// loads its weights; without, every weight must be bound.
  bool externalWeights = false;
  /// Linear and conv layers per stage, at most, in an entry point with more
  /// than `unstagedLayers` of them (see LoweredStage); 0: never cut.
  int stageLayers = kStageLayers;
  int unstagedLayers = kUnstagedLayers;
  /// Measured on a 50-layer MLP (64 wide, 2 threads, Intel Xeon AVX-512):
  /// stages of 1, 2, 4 and 8 layers took 21.7, 20.8, 23.1 and 31.6 s of CPU
  /// time to build, and 8.96, 7.89, 7.48 and 7.37 µs per call at batch 1
  /// (a stage costs about 30 ns a call).
  static constexpr int kStageLayers = 4;
  /// Models up to this many layers stay one pipeline (every seed model; the
  /// largest, LeNet, has 5), which Halide compiles in a few seconds.
  static constexpr int kUnstagedLayers = 8;
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
  /// WeightLayout: a weight's layout computed in the pipeline, because it
  /// comes from an entry-point argument (state passed in). Train: a Func of
  /// a training-step op (TrainLowering.cpp), computed whole; its update
  /// stages, if any, are a reduction over their RDom. MatrixProduct: a
  /// training-step Func that is `reduction`, a matrix product whose vector
  /// operand is contiguous along Halide dimension 0 (register-blocked).
  /// ConvWeightGrad: a convolution's weight gradient, the sum over
  /// Halide dimension 0 of `reduction`, vectors of partial sums per tap.
  /// Softmax: softmax or log_softmax over tensor dimension `axis`;
  /// `rowMax` and `reduction` (Σ exp) are Funcs of the other dimensions.
  enum class Kind {
    Linear,
    Conv2D,
    Pool,
    Softmax,
    Flatten,
    Elementwise,
    BatchStats,
    WeightLayout,
    Train,
    MatrixProduct,
    ConvWeightGrad
  };
  Kind kind;
  std::string name;
  Halide::Func output;
  Halide::Func reduction; // the accumulator of linear, conv2d, pooling
  std::vector<int64_t> shape; // tensor order; shape[0] is the batch
  int64_t reductionSize = 0;  // linear: in_features
  /// Rank-2 linear: the accumulator below TargetInfo::smallBatch() rows
  /// (one row of TargetInfo::smallBatchGroup panels per block).
  Halide::Func smallBatchReduction;
  /// Softmax: the maximum along the axis, and the axis (tensor order).
  Halide::Func rowMax;
  int64_t axis = -1;
  /// Conv2D: its rows may be computed past their width, rounded up to
  /// whole vectors (TailStrategy::RoundUp): it reads only Funcs defined
  /// everywhere and is no pipeline output (a convolution's input gradient).
  bool roundUpRows = false;
  /// Conv2D: its stride (the larger of the two) and the input pixels one
  /// output pixel's taps span along x and y ((kernel − 1) · dilation + 1),
  /// from which the GPU schedule sizes the input window a block reads.
  int64_t stride = 1;
  int64_t reach[2] = {1, 1};
  /// ConvWeightGrad: `reduction` is acc(o, kx, ky, i), vectors of output
  /// channels (Halide dimension 0) summed over the batch and image, rather
  /// than partial sums along the output's rows.
  bool channelVectors = false;
};

/// A tensor an entry point takes (an input buffer) or gives (an output).
struct EntryTensor {
  std::string name;           // "input", "output", or the name the IR gives
  std::vector<int64_t> shape; // tensor order; -1 for the batch
  /// Whether shape[0] is the batch, a run-time extent (Halide's last
  /// dimension); state tensors (parameters, buffers) have static shapes.
  bool batched = true;
  /// Inputs: the argument. Outputs that a later stage reads: its input.
  Halide::ImageParam param;
  Halide::Func func;          // outputs
  /// The element type: Float(32), or Int(64) for labels and counters
  /// (i64 tensors of the IR).
  Halide::Type type = Halide::Float(32);
  /// What the IR's attributes call it: the state_dict key of a state
  /// argument or result (`nn.state_key`), a metric (`nn.metric`: "loss",
  /// "correct") or a batch (`nn.batch`: "input", "labels"); empty if none.
  std::string key;
  /// Outputs: which of `func`'s values (a tuple's, as an optimizer's new
  /// parameter and moments), or -1 for a Func of one value. A stage's
  /// outputs list a tuple's values together, in order, as Halide's
  /// pipelines order their buffers.
  int component = -1;
};

/// A training step's optimizer hyper-parameter (lr, momentum, ...): a scalar
/// argument of the pipeline, so that a compiled step takes any value at run
/// time; `value` is the IR's (the train section's), the default. What the
/// update computes from it is what it computed from a constant: the double
/// rounded to f32 where it meets a tensor (TrainLowering.cpp).
struct HyperParameter {
  std::string name; // "lr", "momentum", "dampening", "weight_decay", "beta1", ...
  Halide::Param<double> param;
  double value = 0;
};

/// One Halide pipeline of an entry point: a run of its layers, the tensors
/// that flow in and out of it, and (external weights) the load pipeline of
/// its weights. An entry point is one stage unless it has more than
/// LoweringOptions::unstagedLayers linear and conv layers: Halide's lowering
/// and LLVM take time that grows faster than the pipeline (a 50-layer MLP
/// took 271 s as one pipeline), so large models are cut into stages that
/// are compiled apart (in parallel) and run one after another.
///
/// A training step is two stages (docs/architecture.md, "State in place"): the
/// gradients (forward, loss, backward, batch statistics) and the update
/// (optimizer, running statistics, counters), which reads the gradients from
/// buffers and writes the state over the state it read: the update is
/// element-wise, each new value read only by nothing but its own element's
/// update, so its outputs may alias its inputs.
struct LoweredStage {
  /// The stage's arguments and results. Inference: the entry point's for
  /// the first and the last stage; between stages, the one tensor that
  /// flows from one to the next (a stage is cut only where a single tensor
  /// is live). A training step's update stage takes the entry point's
  /// arguments too, then the tensors the gradients stage gives it.
  std::vector<EntryTensor> inputs;
  std::vector<EntryTensor> outputs;
  /// Per output: its index among the entry point's results, or -1 for a
  /// tensor a later stage reads (through the ImageParam in its `param`).
  std::vector<int> results;
  /// Whether this is a training step's update stage (see above).
  bool update = false;
  std::vector<LayerFuncs> layers;   // in graph order
  /// Whether the stage holds training-step ops (scheduled as one).
  bool training = false;
  /// The optimizer's hyper-parameters, in the order they were first read.
  std::vector<HyperParameter> hyperParameters;
  /// External weights only: the load pipeline's inputs and outputs.
  std::vector<StateTensor> stateTensors;
  std::vector<PackedWeight> packedWeights;

  /// The batch extent: that of the first batched input.
  Halide::Expr batch() const;
  /// Every output, in order.
  Halide::Pipeline pipeline() const;
  /// The pipeline's arguments: the inputs, the hyper-parameters, then the
  /// packed weights (the outputs come after them in the compiled function's
  /// signature).
  std::vector<Halide::Argument> arguments() const;
  /// The load pipeline: state_dict tensors in, packed weights out.
  Halide::Pipeline loadPipeline() const;
  std::vector<Halide::Argument> loadArguments() const;

  /// JIT: the pipeline LoweredModel::compileJit compiled (undefined before).
  Halide::Pipeline jit;
  /// JIT: the buffers of the outputs that a later stage reads, kept from
  /// call to call while their extents stay (nothing allocated per step).
  std::vector<Halide::Buffer<>> between;
};

struct LoweredModel {
  std::string name;
  /// The entry point (the module's function) this model computes.
  std::string entry;
  /// What the layouts and schedules were made for.
  TargetInfo target;
  /// The entry point's arguments and results, in order (the first stage's
  /// inputs and the last stage's outputs).
  std::vector<EntryTensor> inputs;
  std::vector<EntryTensor> outputs;
  /// At least one; in the order they run.
  std::vector<LoweredStage> stages;
  /// Bytes of weight data the pipelines embed, or with external weights
  /// read from memory the load pipelines fill.
  int64_t weightBytes = 0;

  bool externalWeights = false;
  /// What compileJit compiled for (undefined before).
  Halide::Target jitCompiledFor;
  /// JIT: the stages the last realize ran to the end (all of them, or
  /// those before the one that failed).
  size_t stagesRun = 0;

  bool hasExternalWeights() const { return externalWeights; }
  /// The first input and output (inference: the only ones).
  const EntryTensor &input() const { return inputs.front(); }
  const EntryTensor &output() const { return outputs.front(); }
  /// Every layer of every stage, in graph order.
  std::vector<const LayerFuncs *> layers() const;

  /// JIT: compiles every stage's pipeline for `target`.
  void compileJit(const Halide::Target &target);
  /// JIT: runs the stages in order on the buffers bound to `inputs`' params,
  /// into `outputs` (one buffer per output of the entry point), as
  /// Halide::Pipeline::realize does (compiling for `target` what compileJit
  /// did not; an undefined `target` means the one compileJit used, or
  /// jitTarget()); the tensors between stages live in buffers allocated
  /// here (LoweredStage::between). `context` (may be null) reaches the
  /// runtime's handlers.
  void realize(Halide::Realization outputs, const Halide::Target &target = Halide::Target(),
               Halide::JITUserContext *context = nullptr);
};

/// Builds the Halide algorithm of the module's function `entry` (any
/// number of tensor arguments and results) and, with `options.schedule`,
/// its schedule for `options.target`. Every parameter must be bound unless
/// `options.externalWeights`. Errors are reported at the op that caused
/// them; Halide errors are caught and reported, never thrown.
mlir::FailureOr<LoweredModel> lowerToHalide(mlir::ModuleOp module,
                                            const LoweringOptions &options = {},
                                            llvm::StringRef entry = "forward");

/// Kiln's schedules for CPU targets (Schedule.cpp).
void scheduleForCpu(LoweredStage &stage, const TargetInfo &target);
/// Kiln's schedules for GPU targets, CUDA and OpenCL alike (ScheduleGpu.cpp):
/// every layer a kernel. Fails, with `error`, where anything would run on
/// the host.
bool scheduleForGpu(LoweredStage &stage, const TargetInfo &target, std::string &error);
/// Whether every Func the stage computes whole is a GPU kernel; `error`
/// names the first that is not.
bool checkGpuResident(const LoweredStage &stage, std::string &error);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_HALIDE_LOWERING_H

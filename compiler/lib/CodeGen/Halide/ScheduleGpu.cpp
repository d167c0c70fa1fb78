//===- ScheduleGpu.cpp - Kiln's GPU schedules (CUDA and OpenCL) -----------===//
//
// One schedule family for every GPU target: CUDA and OpenCL get the same
// loops, Halide's GPU back ends differ only in the kernels' language. Every
// Func a CPU schedule computes whole is a kernel here, tiled over its pure
// dimensions into blocks of threads, one output element per thread; a
// layer's reduction (its accumulator) is computed per thread, inside the
// kernel, so it lives in registers. Nothing a pipeline computes runs on the
// host: checkGpuResident() refuses a schedule where something would.
//
// The block shapes are reasoned, not measured (no GPU was lent to the
// sessions that wrote them; docs/gpu.md says how to measure them): 256
// threads a block, the common choice that lets a streaming multiprocessor
// hold several blocks, with 32 consecutive elements of the innermost
// dimension per row of the block, so that a warp reads and writes one
// contiguous run. A linear layer's weights are packed in panels of 32
// output channels (TargetInfo::lanes for GPUs), so the 32 threads of a warp
// read 32 consecutive floats of a panel at each step of the reduction while
// they share the input's element (a broadcast).
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace kiln::codegen {

using Halide::TailStrategy;

namespace {

/// Threads along the innermost dimension of a block (a warp) and rows of a
/// block, for Funcs of two or more dimensions; a one-dimensional Func gets
/// blocks of kThreads.
constexpr int kWarp = 32;
constexpr int kBlockRows = 8;
constexpr int kThreads = kWarp * kBlockRows;

/// The innermost pure variable of a tiled stage: where a layer's
/// accumulator is computed (per thread).
struct GpuTiling {
  Halide::Var thread;
};

/// Tiles `stage` over the pure variables `args` (innermost first, as the
/// Func declares them): the innermost in warps of 32 (fewer where its
/// static `extent` is smaller), the next one in rows of the block, every
/// dimension beyond fused into a third block index (Halide maps at most
/// three). A Func of no dimension is one thread.
GpuTiling gpuTile(Halide::Stage stage, const std::vector<Halide::Var> &args, int64_t extent) {
  GpuTiling tiling;
  if (args.empty()) {
    stage.gpu_single_thread();
    return tiling;
  }
  Halide::Var xo("gpu_xo"), xi("gpu_xi"), yo("gpu_yo"), yi("gpu_yi");
  tiling.thread = xi;
  if (args.size() == 1) {
    stage.gpu_tile(args[0], xo, xi, kThreads, TailStrategy::GuardWithIf);
    return tiling;
  }
  // A narrow innermost dimension (a 10-class output, LeNet's 4-wide pooled
  // rows) gives its threads to the rows instead.
  int width = kWarp;
  while (extent > 0 && width > 4 && width / 2 >= extent)
    width /= 2;
  int rows = kThreads / width;
  if (args.size() == 2) {
    stage.gpu_tile(args[0], args[1], xo, yo, xi, yi, width, rows, TailStrategy::GuardWithIf);
    return tiling;
  }
  Halide::VarOrRVar outer = args[2];
  for (size_t d = 3; d < args.size(); ++d) {
    Halide::Var fused(args[d].name() + "_gpu");
    stage.fuse(outer, args[d], fused);
    outer = fused;
  }
  stage.gpu_tile(args[0], args[1], xo, yo, xi, yi, width, std::min(rows, kBlockRows),
                 TailStrategy::GuardWithIf);
  stage.gpu_blocks(outer);
  return tiling;
}

/// Computes `f` as kernels of its own: its pure definition and every update
/// (each a kernel over the pure variables; the update's reduction runs
/// serially in each thread).
GpuTiling gpuWhole(Halide::Func f, int64_t innerExtent) {
  f.compute_root();
  std::vector<Halide::Var> args = f.args();
  GpuTiling tiling = gpuTile(f, args, innerExtent);
  for (int i = 0; i < f.num_update_definitions(); ++i)
    gpuTile(f.update(i), args, innerExtent);
  return tiling;
}

/// The static extent of a layer's innermost Halide dimension (the last of
/// its tensor shape), or 0 where it is the batch.
int64_t innermost(const LayerFuncs &layer) {
  if (layer.shape.size() <= 1)
    return 0;
  return std::max<int64_t>(layer.shape.back(), 0);
}

/// A layer whose output is a kernel and whose reduction is computed per
/// thread inside it.
void scheduleLayer(const LayerFuncs &layer) {
  GpuTiling tiling = gpuWhole(layer.output, innermost(layer));
  Halide::Func reduction = layer.reduction;
  if (reduction.defined())
    reduction.compute_at(layer.output, tiling.thread);
}

/// A linear layer: the batch-wide accumulator where the batch has a full
/// block of rows, the small-batch one below (both per thread; on a GPU they
/// are the same loop, specialized so that only one is computed).
void scheduleLinear(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  Halide::Func out = layer.output, acc = layer.reduction, small = layer.smallBatchReduction;
  GpuTiling tiling = gpuWhole(out, innermost(layer));
  acc.compute_at(out, tiling.thread);
  if (small.defined()) {
    out.specialize(batch >= target.smallBatch());
    small.compute_at(out, tiling.thread);
  }
}

/// A reduction as one kernel: a wrapper (Func::in) is the kernel, and the
/// Func, its initial value and its update, is computed per thread inside
/// it, where the init and the update would otherwise be a kernel each. A
/// pipeline output cannot be computed inside another Func: two kernels; so
/// is a scalar (no thread loop to put it in).
void gpuReductionKernel(Halide::Func f, int64_t innerExtent, bool output) {
  if (f.num_update_definitions() == 0 || output || f.args().empty()) {
    gpuWhole(f, innerExtent);
    return;
  }
  Halide::Func kernel = f.in();
  kernel.compute_root();
  GpuTiling tiling = gpuTile(kernel, kernel.args(), innerExtent);
  f.compute_at(kernel, tiling.thread);
}

/// Training-step Funcs of at most this many elements, pure, and not
/// outputs, are inlined into their consumers rather than launched: a
/// BatchNorm's per-channel mean, variance and 1/sqrt(var + eps), a bias's
/// layout. Recomputing a few operations per element costs less than a
/// kernel launch (microseconds each; a step was 192 launches for LeNet with
/// every such Func a kernel of its own).
constexpr int64_t kInlineElements = 4096;

/// A training-step Func. A per-channel sum over the batch and the image
/// (BatchNorm2d's statistics and their gradients, a convolution's bias
/// gradient) would be one thread per channel walking the whole batch (LeNet's
/// first BatchNorm: 6 threads of 36,864 steps each), so it is split by
/// Halide's rfactor over its outermost reduction variable, the batch: a
/// kernel of one thread per (channel, sample) sums the sample's image, and a
/// kernel of one thread per channel sums those. The sums are associative
/// (float or double additions), so rfactor applies; where it does not,
/// the Func stays one kernel of its own.
void scheduleTrain(const LayerFuncs &layer, bool output) {
  Halide::Func f = layer.output;
  int64_t elements = 1;
  for (int64_t extent : layer.shape)
    elements *= extent < 0 ? kInlineElements : extent;
  if (!output && f.num_update_definitions() == 0 && elements <= kInlineElements)
    return; // inlined
  if (layer.fuseWith.defined() && f.num_update_definitions() == 0) {
    // An optimizer's outputs of one parameter (the new value, its moments
    // or momentum buffer): one kernel, their block loops fused, each
    // thread computing the element of every one.
    gpuWhole(f, innermost(layer));
    // Fused at the innermost block loop: every block computes its tile of
    // each (fused at an outer one, Halide 14 counts a block dimension twice:
    // an internal error in FuseGPUThreadLoops).
    std::string block;
    for (const Halide::Internal::Dim &d : f.function().definition().schedule().dims())
      if (d.for_type == Halide::Internal::ForType::GPUBlock && block.empty())
        block = d.var.substr(d.var.rfind('.') + 1);
    f.compute_with(Halide::LoopLevel(layer.fuseWith, Halide::Var(block), 0));
    return;
  }
  if (f.args().size() == 1 && f.num_update_definitions() == 1 && f.rvars(0).size() >= 2) {
    std::vector<Halide::RVar> r = f.rvars(0);
    try {
      Halide::Var sample("gpu_sample");
      Halide::Func partial = f.update(0).rfactor(r.back(), sample);
      gpuReductionKernel(partial, 0, false);
      gpuReductionKernel(f, innermost(layer), output);
      return;
    } catch (const Halide::Error &) {
      // Not an associative update: one kernel, below.
    }
  }
  gpuReductionKernel(f, innermost(layer), output);
}

/// softmax, log_softmax: the maximum and Σ exp along the axis per thread
/// where the axis is the innermost dimension (each thread of a row
/// recomputes them over the row, a handful of classes), else as kernels of
/// their own over the other dimensions.
void scheduleSoftmax(const LayerFuncs &layer) {
  GpuTiling tiling = gpuWhole(layer.output, innermost(layer));
  bool innermostAxis = layer.axis == static_cast<int64_t>(layer.shape.size()) - 1;
  for (Halide::Func f : {layer.rowMax, layer.reduction}) {
    if (innermostAxis && layer.shape.size() > 1)
      f.compute_at(layer.output, tiling.thread);
    else
      gpuWhole(f, 0);
  }
}

/// The Func that `f` copies, `f(v...) = g(v...)`, or an undefined Func.
Halide::Func copiedLayer(Halide::Func f) {
  const Halide::Internal::Definition &definition = f.function().definition();
  if (f.num_update_definitions() != 0 || definition.values().size() != 1)
    return Halide::Func();
  const auto *call = definition.values()[0].as<Halide::Internal::Call>();
  if (!call || call->call_type != Halide::Internal::Call::Halide || !call->func.defined())
    return Halide::Func();
  std::vector<Halide::Var> args = f.args();
  if (call->args.size() != args.size())
    return Halide::Func();
  for (size_t i = 0; i < args.size(); ++i) {
    const auto *var = call->args[i].as<Halide::Internal::Variable>();
    if (!var || var->name != args[i].name())
      return Halide::Func();
  }
  return Halide::Func(Halide::Internal::Function(call->func));
}

} // namespace

bool scheduleForGpu(LoweredStage &stage, const TargetInfo &target, std::string &error) {
  Halide::Expr batch = stage.batch();
  auto isOutput = [&](const LayerFuncs &layer) {
    return std::any_of(stage.outputs.begin(), stage.outputs.end(), [&](const EntryTensor &out) {
      return out.func.defined() && out.func.name() == layer.output.name();
    });
  };
  // An output that copies a layer (inference's `output(v) = last(v)`) is
  // that layer's kernel: the layer inlined into it, its reduction per
  // thread inside it; a launch and a tensor fewer.
  std::map<std::string, Halide::Func> copies;
  std::set<std::string> scheduled;
  for (EntryTensor &output : stage.outputs)
    if (Halide::Func copy = copiedLayer(output.func); copy.defined() && !stage.training)
      copies[copy.name()] = output.func;
  for (LayerFuncs &layer : stage.layers) {
    auto copy = copies.find(layer.output.name());
    bool fusable = layer.kind == LayerFuncs::Kind::Linear || layer.kind == LayerFuncs::Kind::Conv2D ||
                   layer.kind == LayerFuncs::Kind::Pool || layer.kind == LayerFuncs::Kind::Flatten;
    if (copy != copies.end() && fusable) {
      Halide::Func out = copy->second, reduction = layer.reduction;
      GpuTiling tiling = gpuWhole(out, innermost(layer));
      if (reduction.defined())
        reduction.compute_at(out, tiling.thread);
      scheduled.insert(out.name());
      continue;
    }
    switch (layer.kind) {
    case LayerFuncs::Kind::Linear:
      scheduleLinear(layer, batch, target);
      break;
    case LayerFuncs::Kind::Conv2D:
    case LayerFuncs::Kind::Pool:
    case LayerFuncs::Kind::Flatten:
      scheduleLayer(layer);
      break;
    case LayerFuncs::Kind::Softmax:
      scheduleSoftmax(layer);
      break;
    case LayerFuncs::Kind::BatchStats:
      // A BatchNorm of batch statistics in a forward pass: the mean and the
      // variance per channel are kernels (a thread per channel), the
      // normalization is inlined into its consumer.
      gpuWhole(layer.reduction.defined() ? layer.reduction : layer.output, 0);
      break;
    case LayerFuncs::Kind::Elementwise:
      // Inlined into its consumer; in a training step a kernel of its own,
      // since the backward pass reads it again.
      if (stage.training)
        gpuWhole(layer.output, innermost(layer));
      break;
    case LayerFuncs::Kind::WeightLayout:
    case LayerFuncs::Kind::Train:
      // Small ones inlined, a reduction one kernel (sums over batch and
      // image two), an optimizer's outputs of one parameter one kernel
      // (scheduleTrain).
      scheduleTrain(layer, isOutput(layer));
      break;
    case LayerFuncs::Kind::MatrixProduct:
    case LayerFuncs::Kind::ConvWeightGrad:
      // A backward matrix product (dX, dW), or a convolution's weight
      // gradient and its partial sums: one output element per thread.
      scheduleLayer(layer);
      break;
    }
  }
  for (EntryTensor &output : stage.outputs) {
    bool isLayer = std::any_of(stage.layers.begin(), stage.layers.end(),
                               [&](const LayerFuncs &l) { return l.name == output.func.name(); });
    if (!isLayer && !scheduled.count(output.func.name()))
      gpuWhole(output.func, output.shape.size() > 1 ? std::max<int64_t>(output.shape.back(), 0) : 0);
  }
  return checkGpuResident(stage, error);
}

bool checkGpuResident(const LoweredStage &stage, std::string &error) {
  std::vector<Halide::Internal::Function> outputs;
  for (const EntryTensor &output : stage.outputs)
    outputs.push_back(output.func.function());
  std::map<std::string, Halide::Internal::Function> env =
      Halide::Internal::build_environment(outputs);
  for (const auto &[name, function] : env) {
    // Outputs are computed whole even where their schedule says inline.
    Halide::LoopLevel level = function.schedule().compute_level();
    level.lock();
    bool output = std::any_of(outputs.begin(), outputs.end(),
                              [&](const Halide::Internal::Function &f) { return f.name() == name; });
    if (!level.is_root() && !(output && level.is_inlined()))
      continue; // inlined, or computed inside a kernel
    // Every definition, and every specialization of one, must be a kernel.
    std::function<bool(const Halide::Internal::Definition &)> onDevice =
        [&](const Halide::Internal::Definition &definition) {
          const std::vector<Halide::Internal::Dim> &dims = definition.schedule().dims();
          bool kernel = std::any_of(dims.begin(), dims.end(), [](const Halide::Internal::Dim &d) {
            return d.for_type == Halide::Internal::ForType::GPUBlock;
          });
          for (const Halide::Internal::Specialization &s : definition.specializations())
            kernel = kernel && onDevice(s.definition);
          return kernel;
        };
    bool device = onDevice(function.definition());
    for (const Halide::Internal::Definition &update : function.updates())
      device = device && onDevice(update);
    if (!device) {
      error = "internal error: '" + name + "' has no GPU schedule, so it would run on the host";
      return false;
    }
  }
  return true;
}

} // namespace kiln::codegen

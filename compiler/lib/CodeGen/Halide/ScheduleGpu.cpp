//===- ScheduleGpu.cpp - Kiln's GPU schedules (CUDA and OpenCL) -----------===//
//
// One schedule family for every GPU target: CUDA and OpenCL get the same
// loops, Halide's GPU back ends differ only in the kernels' language. Every
// Func a CPU schedule computes whole is a kernel here, tiled over its pure
// dimensions into blocks of threads, one output element per thread; a
// layer's reduction (its accumulator) is computed inside the kernel, its
// operands staged through shared memory a chunk at a time for matrix
// products and convolutions (stageReduction), per thread for the rest.
// Nothing a pipeline computes runs on the host: checkGpuResident() refuses
// a schedule where something would.
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

/// A tiled stage's loops: the innermost pure variable (where a layer's
/// accumulator is computed per thread), the innermost block variable
/// (where a block's shared-memory tiles are computed), and the block's
/// shape in threads (width along the innermost dimension, rows).
struct GpuTiling {
  Halide::Var thread;
  Halide::Var block;
  int width = 0, rows = 0;
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
  tiling.block = xo;
  if (args.size() == 1) {
    stage.gpu_tile(args[0], xo, xi, kThreads, TailStrategy::GuardWithIf);
    tiling.width = kThreads;
    tiling.rows = 1;
    return tiling;
  }
  // A narrow innermost dimension (a 10-class output, LeNet's 4-wide pooled
  // rows) gives its threads to the rows instead.
  int width = kWarp;
  while (extent > 0 && width > 4 && width / 2 >= extent)
    width /= 2;
  int rows = kThreads / width;
  tiling.width = width;
  tiling.rows = args.size() == 2 ? rows : std::min(rows, kBlockRows);
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

/// Floats of shared memory a block's tiles may take: 16 KB, a third of the
/// 48 KB a CUDA block gets by default and well within OpenCL's minimum of
/// 32 KB, so that a streaming multiprocessor holds several blocks.
constexpr int64_t kSharedFloats = 4096;
/// The longest chunk of a matrix product's reduction staged at once: a
/// 32-wide block and 8 rows read (32 + 8)·32 floats a chunk, 5 KB.
constexpr int kMaxChunk = 32;

/// The extent of the `index`th reduction variable of `f`'s first update
/// (Func::rvars names them without their domain).
Halide::Expr rvarExtent(Halide::Func f, size_t index) {
  return f.function().update(0).schedule().rvars()[index].extent;
}

/// The Funcs that `acc`'s update reads and its initial value does not (the
/// operands of a reduction; the init's bias is read once per thread).
std::vector<Halide::Func> updateOperands(Halide::Func acc) {
  struct Calls : Halide::Internal::IRVisitor {
    std::map<std::string, Halide::Internal::Function> found;
    using IRVisitor::visit;
    void visit(const Halide::Internal::Call *call) override {
      IRVisitor::visit(call);
      if (call->call_type == Halide::Internal::Call::Halide && call->func.defined())
        found.emplace(call->name, Halide::Internal::Function(call->func));
    }
  };
  Calls init, update;
  for (const Halide::Expr &e : acc.function().definition().values())
    e.accept(&init);
  const Halide::Internal::Definition &definition = acc.function().update(0);
  for (const Halide::Expr &e : definition.values())
    e.accept(&update);
  for (const Halide::Expr &e : definition.args())
    e.accept(&update);
  std::vector<Halide::Func> operands;
  for (const auto &[name, function] : update.found)
    if (!init.found.count(name) && name != acc.name() && !function.args().empty())
      operands.push_back(Halide::Func(function));
  return operands;
}

/// A reduction staged through shared memory, per block of `out`'s kernel:
/// `acc` (one element per thread) is computed at the block, its outermost
/// reduction variable (a matrix product's k, a convolution's input
/// channels) split into chunks; per chunk the block's threads copy the part of every operand the block reads into shared
/// memory (consecutive threads, consecutive addresses), Halide puts a
/// barrier after the copy, and each thread sums the chunk from there. A
/// weight or input element that 32 or 8 threads of a block read (a linear
/// layer's weights by the block's rows, its input by the block's channels;
/// a convolution's input by every tap that reaches it) is read from global
/// memory once a block. `tileFloats(chunk)` is the shared memory a chunk's
/// tiles take. Returns false where the reduction is not one that staging
/// serves (a reduction over the run-time batch, no operand to stage, a
/// one-dimensional block); the caller computes it per thread.
bool stageReduction(Halide::Func out, const GpuTiling &tiling, Halide::Func acc,
                    const std::function<int64_t(int)> &tileFloats) {
  if (acc.num_update_definitions() != 1 || tiling.rows <= 1)
    return false;
  std::vector<Halide::RVar> r = acc.rvars(0);
  std::vector<Halide::Var> args = acc.args();
  if (r.empty() || args.size() < 2)
    return false;
  const int64_t *extent = Halide::Internal::as_const_int(rvarExtent(acc, r.size() - 1));
  if (!extent || *extent < 1)
    return false;
  std::vector<Halide::Func> operands = updateOperands(acc);
  if (operands.empty())
    return false;
  int chunk = 0;
  for (int d = static_cast<int>(std::min<int64_t>(*extent, kMaxChunk)); d > 0 && !chunk; --d)
    if (*extent % d == 0 && tileFloats(d) <= kSharedFloats)
      chunk = d;
  if (!chunk)
    return false;
  // The accumulators in shared memory, one float per thread: Halide 14
  // gives a block-level MemoryType::Register Func a whole copy per thread
  // (a private array of 256 floats in each thread of the OpenCL it emitted).
  acc.compute_at(out, tiling.block).store_in(Halide::MemoryType::GPUShared);
  acc.gpu_threads(args[0], args[1]);
  Halide::RVar ro(r.back().name() + "_chunk"), ri(r.back().name() + "_in");
  Halide::Stage update = acc.update();
  update.split(r.back(), ro, ri, chunk, TailStrategy::GuardWithIf);
  std::vector<Halide::VarOrRVar> order(r.begin(), r.end() - 1);
  order.push_back(ri);
  order.push_back(args[0]);
  order.push_back(args[1]);
  order.push_back(ro);
  for (size_t d = 2; d < args.size(); ++d)
    order.push_back(args[d]);
  update.reorder(order).gpu_threads(args[0], args[1]);
  for (Halide::Func operand : operands) {
    Halide::Func tile = operand.in(acc);
    tile.compute_at(acc, ro).store_in(Halide::MemoryType::GPUShared);
    // The block's threads over the tile's first two dimensions (a pass
    // per block-sized piece; the rest serial): the tile's bounds stay
    // exact, where fusing its dimensions into one let Halide 14's bounds
    // of the divided-back coordinates reach past the tensor.
    std::vector<Halide::Var> dims = tile.args();
    Halide::Var xo("tile_xo"), xi("tile_xi"), yo("tile_yo"), yi("tile_yi");
    if (dims.size() == 1) {
      tile.split(dims[0], xo, xi, tiling.width, TailStrategy::GuardWithIf).gpu_threads(xi);
      continue;
    }
    tile.tile(dims[0], dims[1], xo, yo, xi, yi, tiling.width, tiling.rows,
              TailStrategy::GuardWithIf)
        .gpu_threads(xi, yi);
  }
  return true;
}

/// The shared memory a linear layer's or matrix product's chunk takes: the
/// block's `width` channels and `rows` rows of each operand.
std::function<int64_t(int)> productTiles(const GpuTiling &tiling) {
  return [=](int chunk) { return static_cast<int64_t>(chunk) * (tiling.width + tiling.rows); };
}

/// A convolution's chunk of input channels: the input window of the
/// block's pixels (its stride apart, each spanning the kernel's reach) and
/// the taps' weights, per input channel.
std::function<int64_t(int)> convTiles(const GpuTiling &tiling, const LayerFuncs &layer) {
  int64_t window = ((tiling.width - 1) * layer.stride + layer.reach[0]) *
                   ((tiling.rows - 1) * layer.stride + layer.reach[1]);
  int64_t taps = layer.reach[0] * layer.reach[1];
  return [=](int chunk) { return chunk * (window + taps); };
}

/// The shared memory a chunk of `layer`'s staged reduction takes: matrix
/// products (a linear layer, a backward product) and convolutions; none
/// (an empty function) for the layers whose reduction stays per thread.
std::function<int64_t(int)> stagedTiles(const LayerFuncs &layer, const GpuTiling &tiling) {
  switch (layer.kind) {
  case LayerFuncs::Kind::Linear:
  case LayerFuncs::Kind::MatrixProduct:
    return productTiles(tiling);
  case LayerFuncs::Kind::Conv2D:
    return convTiles(tiling, layer);
  default:
    return {};
  }
}

/// A layer whose output is a kernel and whose reduction is computed in it:
/// staged through shared memory where `tiles` is given and staging serves
/// (stageReduction), else per thread.
void computeReductionIn(Halide::Func out, const GpuTiling &tiling, Halide::Func reduction,
                        const std::function<int64_t(int)> &tiles) {
  if (!reduction.defined())
    return;
  if (tiles && stageReduction(out, tiling, reduction, tiles))
    return;
  reduction.compute_at(out, tiling.thread);
}

/// A layer whose output is a kernel and whose reduction is computed inside
/// it: matrix products and convolutions staged through shared memory.
void scheduleLayer(const LayerFuncs &layer) {
  GpuTiling tiling = gpuWhole(layer.output, innermost(layer));
  computeReductionIn(layer.output, tiling, layer.reduction, stagedTiles(layer, tiling));
}

/// A linear layer: the batch-wide accumulator where the batch has a full
/// block of rows, the small-batch one below (both per thread; on a GPU they
/// are the same loop, specialized so that only one is computed).
void scheduleLinear(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  Halide::Func out = layer.output, acc = layer.reduction, small = layer.smallBatchReduction;
  GpuTiling tiling = gpuWhole(out, innermost(layer));
  computeReductionIn(out, tiling, acc, stagedTiles(layer, tiling));
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
      Halide::Func out = copy->second;
      GpuTiling tiling = gpuWhole(out, innermost(layer));
      computeReductionIn(out, tiling, layer.reduction, stagedTiles(layer, tiling));
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
      // image two), an optimizer's update of one parameter (a Func of its
      // new value and moments) one kernel (scheduleTrain).
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

//===- Schedule.cpp - Kiln's CPU schedules ---------------------------------===//
//
// The algorithm (Lowering.cpp) says what each layer computes; this file says
// where and in what order, from the target's description (TargetInfo):
// vector widths are its f32 lanes, register blocks its linear block (the
// measurements behind each are in TargetInfo.cpp). The parallel thresholds
// were measured on an AMD EPYC Zen 4 (AVX-512, 2 threads; docs/performance.md)
// unless a comment names a bench/ run; they count elements and
// multiply-adds, not vectors, so they do not depend on the ISA.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"

#include <algorithm>

namespace kiln::codegen {

using Halide::TailStrategy;

namespace {

// A linear layer's register block (TargetInfo::linearPanels × linearRows):
// per k step one weight vector per panel and one broadcast input per row
// feed panels × rows FMAs. At batch 1 the panels are independent FMA
// chains, where one panel alone was bound by FMA latency (one chain, 17.9 µs
// for the MLP at batch 1 on 1 thread; bench/ on an AMD EPYC Zen 4, 2026-11-24).
/// Weights (elements) above which a layer is worth running in parallel at
/// small batch (AMD EPYC Zen 4, 2 threads, batch 1). With Halide's thread
/// pool, whose workers sleep between loops, only the 784×256 first MLP
/// layer was (batchnorm_net's 784×128: 3.9 µs serial, 6.2 µs parallel); with
/// Kiln's pool, whose workers spin between loops (runtime/src/ThreadPool.c), 32K
/// weights are: batchnorm_net 3.83 → 2.78 µs, simple_nn 4.05 → 3.0 µs.
constexpr int64_t kParallelWeights = 32 * 1024;
/// Multiply-adds per sample above which a convolution's rows are worth
/// running in parallel on one sample; LeNet's (86K and 154K) are not: on 2
/// threads at batch 1 it took 10.5 µs with parallel rows against 8.8 µs on
/// 1 thread (bench/results/2026-11-24-1401-vm.md).
constexpr int64_t kParallelConvMacs = 512 * 1024;
/// Multiply-adds of a whole linear layer (all rows) below which its row
/// tiles run serially: about a microsecond of work, where handing tiles to
/// the pool costs a good part of it. simple_net (3×3 weights) took 8.5 µs
/// at batch 1024 on 2 threads, 4.5 µs on 1 (bench/results/2026-11-24-1401).
constexpr int64_t kParallelMacs = 64 * 1024;

/// The largest divisor of `value` that is at most `limit` (0 if none).
int largestDivisor(int64_t value, int limit) {
  for (int d = std::min<int64_t>(limit, value); d > 0; --d)
    if (value % d == 0)
      return d;
  return 0;
}

/// The row tiles of a linear layer's register block, tallest first.
std::vector<int> rowTiles(const TargetInfo &target) {
  if (target.linearRows > target.smallBatch())
    return {target.linearRows, target.smallBatch()};
  return {target.linearRows};
}

/// Y[n, o] = act(b + X·Wᵀ): register-blocked over rows × panels of lanes,
/// the reduction innermost over k, parallel over row tiles at batch ≥ rows
/// and over channel panels below (batch 1 is bound by reading the weights).
void scheduleLinear(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  const int lanes = target.lanes, panels = target.linearPanels;
  Halide::Func out = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> args = out.args(), accArgs = acc.args();
  Halide::Var o = args[0], n = args.back();
  Halide::Var oi = accArgs[0], an = accArgs.back();
  Halide::RVar k = acc.rvars(0)[0];
  Halide::Var oo("oo"), ov("ov"), og("og"), op("op"), no("no"), ni("ni");
  Halide::Var ao = accArgs[1];
  out.compute_root();
  int64_t channels = layer.shape.back();
  // One panel of output channels per vector: `o / lanes` and `o % lanes` in
  // the algorithm simplify away under this split. The last panel of a layer
  // whose width is not a multiple of the lanes stores under a guard; the
  // accumulator computes the zero padding (weights are padded to whole
  // groups of panels).
  out.split(o, oo, ov, lanes, TailStrategy::GuardWithIf);
  bool small = layer.smallBatchReduction.defined();
  if (!small)
    out.split(oo, og, op, panels, TailStrategy::GuardWithIf);
  if (small) {
    // Whole row tiles from `rows` up; a block of 4 rows for smaller batches
    // where the block is taller (AVX-512's 8 rows at batch 4-7: 47 µs for
    // mlp_bn at batch 7, against 23 µs with 4-row tiles).
    for (int tile : rowTiles(target)) {
      Halide::Stage tiled = out.specialize(batch >= tile);
      tiled.split(oo, og, op, panels, TailStrategy::GuardWithIf)
          .split(n, no, ni, tile, TailStrategy::ShiftInwards)
          .reorder(ov, op, ni, og, no)
          .vectorize(ov);
      Halide::Expr macs = Halide::cast<int64_t>(batch) *
                          Halide::Expr(channels * layer.reductionSize);
      tiled.specialize(macs >= Halide::Expr(kParallelMacs)).parallel(no);
    }
  }
  // Below 4 rows each weight is read once per row: the time is reading the
  // weights, so a layer with many of them spreads its panel groups over the
  // threads; small layers stay serial, where a parallel loop's start-up
  // costs more than it saves (measured: only the first MLP layer parallel
  // at batch 1). One row at a time, in groups of as many panels as divide
  // the layer's (their independent FMA chains hide the latency).
  int realPanels = static_cast<int>((channels + lanes - 1) / lanes);
  int paddedPanels = (realPanels + panels - 1) / panels * panels;
  bool manyWeights = channels * layer.reductionSize >= kParallelWeights;
  int wide = small ? target.smallBatchGroup(realPanels, paddedPanels, manyWeights) : panels;
  if (small)
    out.split(oo, og, op, wide, TailStrategy::GuardWithIf);
  out.vectorize(ov);
  if (manyWeights && (realPanels + wide - 1) / wide >= 2)
    out.parallel(og);
  acc.compute_at(out, og).bound_extent(ao, panels).vectorize(oi).unroll(ao);
  Halide::Stage update = acc.update();
  update.reorder(oi, ao, an, k).vectorize(oi).unroll(ao);
  if (!small)
    return;
  for (int tile : rowTiles(target))
    update.specialize(batch >= tile).unroll(an);
  Halide::Func one = layer.smallBatchReduction;
  std::vector<Halide::Var> oneArgs = one.args();
  one.compute_at(out, og).bound_extent(oneArgs[1], wide).vectorize(oneArgs[0]).unroll(oneArgs[1]);
  one.update().reorder(oneArgs[0], oneArgs[1], oneArgs.back(), one.rvars(0)[0])
      .vectorize(oneArgs[0])
      .unroll(oneArgs[1]);
}

/// Conv2d: the accumulator of one output row (all its channels) is computed
/// per (row, sample), kept in registers: either vectorized over output
/// channels (a vector of lanes; weights are laid out channels innermost)
/// with the row's pixels unrolled, or, for layers with few channels
/// (LeNet's first, 6), vectorized along the row with blocks of channels
/// unrolled. The reduction (input channels, kernel taps) runs outside the
/// register block, whose accumulators take at most three quarters of the
/// registers (TargetInfo::convAccumulators), leaving the rest for weights
/// and inputs.
void scheduleConv(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  const int lanes = target.lanes;
  Halide::Func out = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> args = out.args(), accArgs = acc.args();
  Halide::Var x = args[0], y = args[1], c = args[2], n = args[3];
  Halide::Var ax = accArgs[0], ac = accArgs[2];
  std::vector<Halide::RVar> r = acc.rvars(0);
  int64_t width = layer.shape[3], channels = layer.shape[1];
  // The widest vector along the row that divides it, down to 4 lanes; or,
  // where the row may be computed past its end, whole vectors of the
  // target's lanes with the row rounded up to them. LeNet-BN's conv2 input
  // gradient (12-wide rows) in 16 lanes, 4 of them wasted, rather than 3
  // vectors of 4: measured below. (A guarded 16-lane tail was 3x slower:
  // Halide 14 scalarizes the guarded accumulator.)
  int vector = lanes;
  while (vector > 4 && width % vector != 0)
    vector /= 2;
  TailStrategy tail = width % vector == 0 ? TailStrategy::Auto : TailStrategy::GuardWithIf;
  if (layer.roundUpRows && width % lanes != 0 && width > lanes / 2) {
    vector = lanes;
    tail = TailStrategy::RoundUp;
  }
  // The register block: `pixels` × `channelBlock` accumulators, at most
  // the target's budget; the reduction runs over the whole block, and the
  // blocks of a row one after another.
  int budget = target.convAccumulators();
  int channelVectors = channels % lanes == 0 ? static_cast<int>(channels / lanes) : 0;
  int pixels = channelVectors ? largestDivisor(width, budget / channelVectors) : 0;
  // Or `vectors` along the row per channel, a block of `channelBlock`
  // channels, and `rows` rows: where the row and channels are few, more
  // rows keep enough independent accumulators to hide the FMA latency (4
  // cycles, 2 a cycle: 8 in flight), within half the budget. LeNet-BN's
  // conv2 input gradient (12-wide rows, 6 channels), Intel Xeon (AVX-512,
  // 1 thread, batch 64, perf of the AOT step): 0.79 ms per step in 3
  // vectors of 4 lanes, 0.54 in one 16-lane vector (RoundUp), 0.39 with 2
  // rows (12 accumulators), 0.56 with 4 (24: LLVM spilled and computed the
  // taps' addresses in vector registers).
  int vectors = static_cast<int>((width + vector - 1) / vector);
  int channelBlock = !pixels && vectors <= budget ? largestDivisor(channels, budget / vectors) : 0;
  int rows = channelBlock
                 ? std::max(1, largestDivisor(layer.shape[2], budget / 2 / (vectors * channelBlock)))
                 : 1;
  Halide::Var yo("yo"), yi("yi");
  Halide::Var rowLoop = y;
  out.compute_root();
  if (rows > 1) {
    out.split(y, yo, yi, rows).reorder(x, c, yi, yo, n);
    rowLoop = yo;
  } else {
    out.reorder(x, c, y, n);
  }
  // Channel vectors read back along a row that no vector divides are
  // stored a pixel at a time. Vectorized with a guarded tail, Halide 14
  // dropped the tail when it was one pixel (rows of 5, 9, 13: the last
  // column never written, the output's memory left as it was; 16 channels
  // on AVX-512 and AVX2, test/unit/codegen/OpReferenceTest.cpp).
  if (!(pixels > 0 && tail == TailStrategy::GuardWithIf))
    out.vectorize(x, vector, tail);
  out.specialize(batch >= 2).parallel(n);
  int64_t macs = layer.shape[1] * layer.shape[2] * layer.shape[3] * layer.reductionSize;
  if (macs >= kParallelConvMacs)
    out.parallel(rowLoop);
  acc.compute_at(out, rowLoop);
  if (tail == TailStrategy::RoundUp) {
    // The accumulator's rows declared whole vectors wide, so that what it
    // reads is computed there too: with RoundUp alone, Halide 14 allocated
    // the padded dY that wide but computed only what the unrounded rows
    // read, and the extra lanes summed uninitialized memory (denormals from
    // a reused block made the JIT step 6x slower).
    acc.bound(ax, 0, static_cast<int>((width + vector - 1) / vector * vector));
  }
  if (pixels > 0) {
    // Vectors of output channels: channels innermost in the accumulator's
    // storage too, so each accumulator is one dense vector (a register).
    Halide::Var xo("xo"), xi("xi"), co("co"), ci("ci");
    acc.reorder_storage(ac, ax, accArgs[1], accArgs[3])
        .reorder(ac, ax)
        .vectorize(ac, lanes);
    acc.update()
        .split(ax, xo, xi, pixels)
        .split(ac, co, ci, lanes)
        .reorder(ci, co, xi, r[0], r[1], r[2], xo)
        .vectorize(ci)
        .unroll(co)
        .unroll(xi);
    return;
  }
  // Vectors along the row, `vectors` of them per row, with blocks of
  // channels (and rows) unrolled beside them.
  Halide::Var xo("xo"), xi("xi"), co("co"), ci("ci");
  acc.vectorize(ax, vector, tail);
  Halide::Stage update = acc.update();
  update.split(ax, xo, xi, vector, tail);
  if (channelBlock == 0) {
    update.reorder(xi, xo, ac, r[0], r[1], r[2]).vectorize(xi);
    return;
  }
  Halide::Var ay = accArgs[1];
  update.split(ac, co, ci, channelBlock)
      .reorder(xi, xo, ci, ay, r[0], r[1], r[2], co)
      .vectorize(xi)
      .unroll(xo)
      .unroll(ci);
  if (rows > 1)
    update.unroll(ay);
}

void schedulePool(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  Halide::Func out = layer.output;
  std::vector<Halide::Var> args = out.args();
  int64_t width = layer.shape[3];
  out.compute_root();
  // A vector width that divides the row: LeNet's pooled rows are 12 and 4.
  int vector = std::min(target.lanes, width % 8 == 0 ? 8 : 4);
  if (width >= 4)
    out.vectorize(args[0], vector, TailStrategy::GuardWithIf);
  // Last: a specialization copies the schedule so far. One sample runs
  // serially, since a parallel loop of one task still goes through the
  // thread pool.
  out.specialize(batch >= 2).parallel(args[3]);
}

/// A vector width for rows of `width` elements (a dynamic one: the
/// target's): 8 or 4 lanes where the row divides by them or has room for one,
/// as pools do.
int rowVector(int64_t width, const TargetInfo &target) {
  if (width < 0)
    return target.lanes;
  return std::min(target.lanes, width % 8 == 0 ? 8 : 4);
}

/// softmax, log_softmax: computed whole, vectorized along the innermost
/// dimension and, for more than one sample, parallel over the batch. The
/// max and Σ exp along the axis are computed per row where the axis is the
/// innermost dimension (a handful of scalars), else whole (in parallel over
/// the batch unless the axis is the batch itself), and vectorized along
/// their innermost dimension where it is not the axis. Two passes over a slice
/// that stays in cache, no parallel loop for one sample.
void scheduleSoftmax(const LayerFuncs &layer, Halide::Expr batch, const TargetInfo &target) {
  Halide::Func out = layer.output, rowMax = layer.rowMax, sum = layer.reduction;
  std::vector<Halide::Var> args = out.args();
  size_t rank = args.size();
  out.compute_root();
  int64_t inner = layer.shape.back();
  if (inner < 0 || inner >= 4)
    out.vectorize(args[0], rowVector(inner, target), TailStrategy::GuardWithIf);
  bool overBatch = layer.axis == 0;
  bool innermost = layer.axis == static_cast<int64_t>(rank) - 1;
  for (Halide::Func f : {rowMax, sum}) {
    // Along an inner axis that is not the innermost dimension they are
    // computed whole, in parallel over the batch, not per sample inside
    // the output's loop: there Halide 14 dropped the output's tail guard,
    // and each row's last vector wrote past the row (into the next one, a
    // race between samples, and past the buffer after the last; a softmax
    // of [N, 4, 13] along axis 1 was wrong in 3 of 156 elements under
    // load, [N, 4, 5] always; 2026-12-03).
    if (overBatch || rank == 1) {
      f.compute_root();
    } else if (!innermost) {
      f.compute_root();
      f.parallel(f.args().back());
    } else {
      f.compute_at(out, args[1]);
    }
    std::vector<Halide::Var> fArgs = f.args();
    int64_t fInner = innermost ? 0 : layer.shape.back();
    if (!fArgs.empty() && (fInner < 0 || fInner >= 4)) {
      int vector = rowVector(fInner, target);
      f.vectorize(fArgs[0], vector, TailStrategy::GuardWithIf);
      for (int i = 0; i < f.num_update_definitions(); ++i)
        f.update(i).vectorize(fArgs[0], vector, TailStrategy::GuardWithIf);
    }
  }
  if (rank >= 2)
    out.specialize(batch >= 2).parallel(args.back());
}

/// Static elements of a Func above which its outermost dimension runs in
/// parallel, the batch counted as kBatchRows rows. A first choice of about
/// 16 µs of element-wise work, where the pool's start-up (about a
/// microsecond) no longer matters.
constexpr int64_t kParallelElements = 16 * 1024;
/// The batch the parallel thresholds assume: the seed models' training
/// batch. Counted as 16 (the fixtures' batch), mlp_bn's 256-channel
/// BatchNorm gradient (0.28 ms of a 2.26 ms step at batch 256) ran serially
/// on 2 threads.
constexpr int64_t kBatchRows = 64;

/// A training-step Func (or, in a training step, a forward element-wise
/// layer), computed whole: every stage vectorized over the innermost pure
/// dimension by the target's lanes (an update, a reduction, then keeps a
/// vector of accumulators per step of its RDom), the outermost in parallel
/// where the Func is large.
/// Per-channel statistics over images of at least this many pixels run their
/// channels in parallel (LeNet-BN's first BatchNorm2d, 24x24, does).
constexpr int64_t kParallelImage = 256;

/// Vector lanes of partial sums along a reduction's innermost RVar, for a
/// per-channel statistic over images (BatchNorm2d's sums over N, H, W): the
/// largest power of two, up to a vector of `f`'s type, that divides the
/// row's static width; 0 where the reduction is not of that form.
int imageReductionLanes(Halide::Func f, const TargetInfo &target) {
  if (f.args().size() != 1 || f.num_update_definitions() != 1)
    return 0;
  // The RDom's extents are in the stage's schedule (Func::rvars has names).
  const std::vector<Halide::Internal::ReductionVariable> &r =
      f.update(0).get_schedule().rvars();
  const int64_t *width = r.size() >= 2 ? Halide::Internal::as_const_int(r[0].extent) : nullptr;
  if (!width)
    return 0;
  int lanes = target.lanes * 32 / f.output_types()[0].bits();
  while (lanes >= 2 && *width % lanes != 0)
    lanes /= 2;
  return lanes >= 2 ? lanes : 0;
}

void scheduleWhole(const LayerFuncs &layer, const TargetInfo &target) {
  Halide::Func f = layer.output;
  f.compute_root();
  std::vector<Halide::Var> args = f.args();
  if (args.empty())
    return;
  if (int lanes = imageReductionLanes(f, target)) {
    // Partial sums in a vector along the image's rows (rfactor), then
    // their sum: the reduction was a scalar chain of double adds, one per
    // element (LeNet-BN's BatchNorm2d(6) over 64x24x24: about 0.25 ms of
    // the step per sum on the Intel Xeon, four sums a step).
    Halide::RVar rxo("rxo"), rxi("rxi");
    Halide::Var u("u");
    // The image's pixels (the first two RVars: imageReductionLanes checked
    // the first; rfactor replaces the RDom).
    const std::vector<Halide::Internal::ReductionVariable> &r = f.update(0).get_schedule().rvars();
    const int64_t *height = Halide::Internal::as_const_int(r[1].extent);
    int64_t pixels = height ? *height * *Halide::Internal::as_const_int(r[0].extent) : 0;
    Halide::Func partial = f.update(0).split(f.rvars(0)[0], rxo, rxi, lanes).rfactor(rxi, u);
    // u innermost in memory too: rfactor puts it last, and a vector of
    // partial sums strided by the channels was a scatter per element (and,
    // with channels in parallel, cache lines shared between threads).
    Halide::Var channel = partial.args()[0].name() == u.name() ? partial.args()[1] : partial.args()[0];
    partial.compute_root().reorder_storage(u, channel).vectorize(u);
    partial.update(0).vectorize(u);
    // Channels in parallel where each has a whole image per sample: on 2
    // threads the second one otherwise waits out these serial sums.
    if (pixels >= kParallelImage)
      partial.update(0).parallel(channel);
    return;
  }
  int64_t inner = layer.shape.empty() ? 1 : layer.shape.back();
  bool vectorize = inner < 0 || inner >= target.lanes;
  int64_t elements = 1;
  for (int64_t extent : layer.shape)
    elements *= extent < 0 ? kBatchRows : extent;
  bool parallel = args.size() >= 2 && elements >= kParallelElements;
  bool channelBlocks = args.size() == 1 && f.num_update_definitions() > 0 &&
                       inner >= 4 * target.lanes;
  for (int i = 0; i <= f.num_update_definitions(); ++i) {
    Halide::Stage stage = i == 0 ? Halide::Stage(f) : f.update(i - 1);
    if (parallel)
      stage.parallel(args.back());
    // The pure definition of a static width shifts its last vector inwards
    // (computing a few elements twice); with GuardWithIf, Halide 14 left
    // elements past the first vector unwritten in a 5-wide tensor with SSE's
    // 4 lanes (a bias of conv_pools' fc). Updates, which must not run twice
    // on one element, and batch-wide dimensions keep the guard.
    TailStrategy tail = i == 0 && inner > 0 ? TailStrategy::ShiftInwards : TailStrategy::GuardWithIf;
    if (channelBlocks) {
      // A per-channel reduction (BatchNorm's sums over the batch): blocks
      // of channel vectors in parallel.
      Halide::Var co("co"), ci("ci");
      stage.split(args[0], co, ci, target.lanes, tail).vectorize(ci).parallel(co);
    } else if (vectorize) {
      stage.vectorize(args[0], target.lanes, tail);
    }
  }
}

/// A Func of a training step's update stage, which stores new state over
/// the old it reads (TrainContext::inPlace): computed whole, the outermost
/// dimension in parallel where the tensor is large, and no element computed
/// twice (the same update again would read its own new value). The vectors
/// are the widest power of two, up to the target's lanes, that divides the
/// row, so there is no tail to guard (Halide 14 dropped a guarded
/// one-element tail, scheduleConv): every row of the seed models'
/// parameters is whole vectors; a 5-wide convolution kernel's rows are
/// scalar.
void scheduleUpdate(const LayerFuncs &layer, const TargetInfo &target) {
  Halide::Func f = layer.output;
  f.compute_root();
  std::vector<Halide::Var> args = f.args();
  if (args.empty())
    return;
  int64_t elements = 1;
  for (int64_t extent : layer.shape)
    elements *= extent;
  int lanes = target.lanes;
  while (lanes > 1 && layer.shape.back() % lanes != 0)
    lanes /= 2;
  for (int i = 0; i <= f.num_update_definitions(); ++i) {
    Halide::Stage stage = i == 0 ? Halide::Stage(f) : f.update(i - 1);
    if (lanes > 1)
      stage.vectorize(args[0], lanes, TailStrategy::GuardWithIf);
    if (args.size() >= 2 && elements >= kParallelElements)
      stage.parallel(args.back());
  }
}

/// Accumulators of a matrix product's register block.
struct ProductBlock {
  int panels = 1; // vectors along Halide dimension 0
  int rows = 1;   // along dimension 1
};

/// The target's linear block (TargetInfo::linearPanels × linearRows, the
/// same accumulator count the forward's register block uses) shrunk to the
/// matrix: as many whole vectors as the width has, up to the panels, and
/// rows up to the height (a static one).
ProductBlock productBlock(int64_t width, int64_t height, const TargetInfo &target) {
  ProductBlock block;
  block.panels = static_cast<int>(std::min<int64_t>(target.linearPanels, width / target.lanes));
  block.rows = target.linearRows;
  if (height > 0)
    block.rows = static_cast<int>(std::min<int64_t>(block.rows, height));
  return block;
}

/// out(j, r, ...) = acc(j, r, ...) = Σ_k A(j, k) · B(k, r): a backward
/// matrix product (dX = dY·W, dW = dYᵀ·X) whose vector operand A is
/// contiguous along j. The block of the forward's linear layer (panels ×
/// rows accumulators in registers, TargetInfo): per step of k, `panels`
/// vector loads of A and `rows` broadcasts of B feed panels × rows FMAs.
/// The blocks tile the output with ShiftInwards (the last one overlaps
/// its neighbour rather than reading past the operands); a batch of fewer
/// rows than the block runs one row per block. Row tiles run in parallel
/// where the product is large enough (kParallelMacs).
void scheduleMatrixProduct(const LayerFuncs &layer, Halide::Expr batch,
                           const TargetInfo &target) {
  size_t rank = layer.shape.size();
  int64_t width = layer.shape[rank - 1], height = layer.shape[rank - 2];
  ProductBlock block = productBlock(width, height, target);
  if (block.panels < 1) {
    // Narrower than a vector: computed whole.
    LayerFuncs whole = layer;
    whole.output = layer.reduction;
    scheduleWhole(whole, target);
    Halide::Func(layer.output).compute_root();
    return;
  }
  const int lanes = target.lanes;
  Halide::Func out = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> args = out.args();
  Halide::Var j = args[0], r = args[1];
  Halide::Var jo("jo"), ji("ji"), ro("ro"), ri("ri");
  out.compute_root();
  auto tile = [&](Halide::Stage stage, int rows) {
    stage.split(j, jo, ji, block.panels * lanes, TailStrategy::ShiftInwards)
        .split(r, ro, ri, rows, TailStrategy::ShiftInwards)
        .reorder(ji, ri, jo, ro)
        .vectorize(ji, lanes)
        .unroll(ri);
  };
  // Multiply-adds with the batch counted as kBatchRows, as for the
  // element-wise Funcs.
  auto staticExtent = [](int64_t extent) { return extent < 0 ? kBatchRows : extent; };
  int64_t macs = width * staticExtent(height) * staticExtent(layer.reductionSize);
  bool parallel = macs >= kParallelMacs;
  if (height < 0 && block.rows > 1) {
    Halide::Stage blocked = out.specialize(batch >= block.rows);
    tile(blocked, block.rows);
    if (parallel)
      blocked.parallel(ro);
  }
  tile(out, height < 0 ? 1 : block.rows);
  if (parallel)
    out.parallel(ro);
  std::vector<Halide::Var> accArgs = acc.args();
  acc.compute_at(out, jo).vectorize(accArgs[0], lanes).unroll(accArgs[1]);
  std::vector<Halide::VarOrRVar> order = {accArgs[0], accArgs[1]};
  for (Halide::RVar k : acc.rvars(0))
    order.push_back(k);
  for (size_t d = 2; d < accArgs.size(); ++d)
    order.push_back(accArgs[d]);
  acc.update().reorder(order).vectorize(accArgs[0], lanes).unroll(accArgs[0]).unroll(accArgs[1]);
}

/// A weight layout computed per call (a training step's weights change
/// every step). A linear layer's panels, w(oi, k, oo) = W[oo·L + oi, k],
/// transpose W: blocks of lanes × lanes, both dimensions vectorized, so that
/// Halide reads W's rows as dense vectors and transposes them in registers
/// (mlp_bn's 784×256: 0.23 ms a step computed whole, 0.097 with the panel
/// vectorized and k unrolled, 0.030 so; Halide's profiler, Intel Xeon
/// AVX-512, 1 thread).
void scheduleWeightLayout(const LayerFuncs &layer, const TargetInfo &target) {
  Halide::Func layout = layer.output;
  layout.compute_root();
  std::vector<Halide::Var> args = layout.args();
  if (args.size() != 3)
    return;
  Halide::Var ko("ko"), ki("ki");
  layout.split(args[1], ko, ki, target.lanes, TailStrategy::GuardWithIf)
      .reorder(args[0], ki, ko, args[2])
      .vectorize(args[0])
      .vectorize(ki);
}

/// A convolution's weight gradient as acc(o, kx, ky, i), vectors of output
/// channels: per input channel, the accumulators of all the kernel's taps
/// (one vector of o each) in registers where they fit, else a row of taps,
/// while the batch and image stream past: per pixel one vector of dY and
/// one broadcast X element per tap feed one FMA per tap. Input channels in
/// parallel. dW itself is acc transposed, a pass over the weights.
void scheduleConvWeightGradByChannels(const LayerFuncs &layer, const TargetInfo &target) {
  Halide::Func dw = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> a = acc.args();
  int64_t taps = layer.shape[2] * layer.shape[3];
  dw.compute_root();
  acc.compute_root().vectorize(a[0], target.lanes);
  std::vector<Halide::RVar> r = acc.rvars(0);
  Halide::Var oo("oo"), oi("oi");
  Halide::Stage update = acc.update();
  update.split(a[0], oo, oi, target.lanes);
  if (taps <= target.vectorRegisters - 4)
    update.reorder(oi, a[1], a[2], r[0], r[1], r[2], a[3], oo).unroll(a[2]);
  else
    update.reorder(oi, a[1], r[0], r[1], r[2], a[2], a[3], oo);
  update.vectorize(oi).unroll(a[1]);
  int64_t macs = layer.shape[0] * layer.shape[1] * taps * layer.reductionSize * 16;
  if (macs >= kParallelConvMacs) {
    acc.parallel(a[3]);
    update.parallel(a[3]);
  }
}

/// A convolution's weight gradient dW(kx, ky, i, o) = Σ_v partial(v, kx,
/// ky, i, o): the partial sums of one (i, o), a vector per tap, are kept in
/// registers while the reduction (the output's columns in vectors, its
/// rows, the batch) streams dY and X past them: per step one vector of dY
/// and one of X per tap feed one FMA per tap. All the kernel's taps
/// unrolled where they fit the registers (LeNet's 25 in AVX-512's 32, with
/// room for dY's vector and X's), else one row of taps; (o) in parallel.
void scheduleConvWeightGrad(const LayerFuncs &layer, const TargetInfo &target) {
  if (layer.channelVectors)
    return scheduleConvWeightGradByChannels(layer, target);
  Halide::Func dw = layer.output, partial = layer.reduction;
  std::vector<Halide::Var> args = dw.args(), pArgs = partial.args();
  int64_t taps = layer.shape[2] * layer.shape[3];
  dw.compute_root();
  int64_t macs = layer.shape[0] * layer.shape[1] * taps * layer.reductionSize * 16;
  if (macs >= kParallelConvMacs) {
    dw.parallel(args[3]);
    dw.update().parallel(args[3]);
  }
  partial.compute_at(dw, args[2]).vectorize(pArgs[0]);
  std::vector<Halide::RVar> r = partial.rvars(0);
  Halide::Stage update = partial.update();
  bool allTaps = taps <= target.vectorRegisters - 4;
  if (allTaps)
    update.reorder(pArgs[0], pArgs[1], pArgs[2], r[0], r[1], r[2], pArgs[3], pArgs[4])
        .unroll(pArgs[2]);
  else
    update.reorder(pArgs[0], pArgs[1], r[0], r[1], r[2], pArgs[2], pArgs[3], pArgs[4]);
  if (layer.shape[3] <= 8)
    update.unroll(pArgs[1]);
  update.vectorize(pArgs[0]);
}

} // namespace

void scheduleForCpu(LoweredStage &stage, const TargetInfo &target) {
  Halide::Expr batch = stage.batch();
  for (LayerFuncs &layer : stage.layers) {
    switch (layer.kind) {
    case LayerFuncs::Kind::Linear:
      scheduleLinear(layer, batch, target);
      break;
    case LayerFuncs::Kind::Conv2D:
      scheduleConv(layer, batch, target);
      break;
    case LayerFuncs::Kind::Pool:
      schedulePool(layer, batch, target);
      break;
    case LayerFuncs::Kind::Softmax:
      scheduleSoftmax(layer, batch, target);
      break;
    case LayerFuncs::Kind::Flatten:
      // Materialized so the next linear reads a plain [N, K] matrix rather
      // than recomputing div/mod index arithmetic for every k.
      layer.output.compute_root()
          .specialize(batch >= target.linearRows)
          .parallel(layer.output.args().back());
      break;
    case LayerFuncs::Kind::BatchStats:
      if (layer.reduction.defined())
        layer.reduction.compute_root();
      else
        layer.output.compute_root();
      break;
    case LayerFuncs::Kind::WeightLayout:
      // Once per call, whole, before the layer that reads it.
      scheduleWeightLayout(layer, target);
      break;
    case LayerFuncs::Kind::Train:
      if (stage.update)
        scheduleUpdate(layer, target);
      else
        scheduleWhole(layer, target);
      break;
    case LayerFuncs::Kind::MatrixProduct:
      scheduleMatrixProduct(layer, batch, target);
      break;
    case LayerFuncs::Kind::ConvWeightGrad:
      scheduleConvWeightGrad(layer, target);
      break;
    case LayerFuncs::Kind::Elementwise:
      // Inlined into its consumer; in a training step computed whole, since
      // the backward pass reads it again inside its reductions.
      if (stage.training)
        scheduleWhole(layer, target);
      break;
    }
  }
  for (EntryTensor &output : stage.outputs) {
    std::vector<Halide::Var> args = output.func.args();
    // An output between stages is its last layer's Func, scheduled above.
    bool isLayer = std::any_of(stage.layers.begin(), stage.layers.end(),
                               [&](const LayerFuncs &l) { return l.name == output.func.name(); });
    if (!isLayer && output.shape.size() == 2 && output.shape[1] >= 8)
      output.func.vectorize(args[0], std::min(8, target.lanes), TailStrategy::GuardWithIf);
  }
}

} // namespace kiln::codegen

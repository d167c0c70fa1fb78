//===- Schedule.cpp - Kiln's CPU schedules ---------------------------------===//
//
// The algorithm (Lowering.cpp) says what each layer computes; this file says
// where and in what order. Figures quoted are from ../shared/PERF-NOTES.md
// (Zen 4/Zen 5, AVX-512, 2 threads) unless a comment names a bench/ run.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"

namespace kiln::codegen {

using Halide::TailStrategy;

namespace {

/// f32 lanes of one AVX-512 register.
constexpr int kVector = 16;
/// Rows of a linear layer's register block: 8 rows × one 16-lane vector of
/// output channels = 8 zmm accumulators, one weight load and 8 FMAs per k
/// step. 64×8 (32 accumulators) spilled and was 5-13% slower (PERF-NOTES).
constexpr int kRows = 8;

/// Y[n, o] = act(b + X·Wᵀ): register-blocked over 8 rows × 16 channels,
/// the reduction innermost over k, parallel over row tiles at batch ≥ 8
/// and over channel panels below (batch 1 is bound by reading the weights).
void scheduleLinear(const LayerFuncs &layer, Halide::Expr batch) {
  Halide::Func out = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> args = out.args();
  Halide::Var o = args[0], n = args.back();
  Halide::Var oo("oo"), oi("oi"), no("no"), ni("ni");
  out.compute_root();
  int64_t channels = layer.shape.back();
  bool rank2 = layer.shape.size() == 2;
  // Weights are padded to whole vectors, so the accumulator may compute the
  // padding lanes; only the output store needs a guard.
  out.split(o, oo, oi, kVector, TailStrategy::GuardWithIf);
  if (rank2) {
    Halide::Stage tiled = out.specialize(batch >= kRows);
    tiled.split(n, no, ni, kRows, TailStrategy::ShiftInwards)
        .reorder(oi, ni, oo, no)
        .vectorize(oi)
        .parallel(no);
  }
  out.vectorize(oi);
  if (channels >= 4 * kVector)
    out.parallel(oo);
  acc.compute_at(out, oo)
      .bound_extent(o, kVector)
      .vectorize(o);
  acc.update()
      .reorder(o, n)
      .vectorize(o)
      .unroll(n);
}

/// Conv2d: one output row at a time, vectorized along the row, the
/// accumulator kept in a row-sized scratch; parallel over the batch.
void scheduleConv(const LayerFuncs &layer) {
  Halide::Func out = layer.output, acc = layer.reduction;
  std::vector<Halide::Var> args = out.args();
  Halide::Var x = args[0], y = args[1], c = args[2], n = args[3];
  int64_t width = layer.shape[3];
  // A vector width that divides the row, so no lane reads past the input
  // (LeNet's rows are 24 and 8 wide).
  int vector = width % kVector == 0 ? kVector : width % 8 == 0 ? 8 : 4;
  TailStrategy tail = width % vector == 0 ? TailStrategy::Auto : TailStrategy::GuardWithIf;
  out.compute_root().parallel(n).vectorize(x, vector, tail);
  acc.compute_at(out, y).vectorize(x, vector, tail);
  acc.update().vectorize(x, vector, tail);
}

void schedulePool(const LayerFuncs &layer) {
  Halide::Func out = layer.output;
  std::vector<Halide::Var> args = out.args();
  int64_t width = layer.shape[3];
  out.compute_root().parallel(args[3]);
  if (width >= 8)
    out.vectorize(args[0], 8, TailStrategy::GuardWithIf);
}

} // namespace

void scheduleForCpu(LoweredModel &model) {
  Halide::Expr batch = model.input.dim(model.inputShape.size() - 1).extent();
  for (LayerFuncs &layer : model.layers) {
    switch (layer.kind) {
    case LayerFuncs::Kind::Linear:
      scheduleLinear(layer, batch);
      break;
    case LayerFuncs::Kind::Conv2D:
      scheduleConv(layer);
      break;
    case LayerFuncs::Kind::Pool:
      schedulePool(layer);
      break;
    case LayerFuncs::Kind::Flatten:
      // Materialized so the next linear reads a plain [N, K] matrix rather
      // than recomputing div/mod index arithmetic for every k.
      layer.output.compute_root().parallel(layer.output.args().back());
      break;
    case LayerFuncs::Kind::BatchStats:
      if (layer.reduction.defined())
        layer.reduction.compute_root();
      else
        layer.output.compute_root();
      break;
    case LayerFuncs::Kind::Elementwise:
      break; // inlined into its consumer
    }
  }
  std::vector<Halide::Var> args = model.output.args();
  if (model.outputShape.size() == 2 && model.outputShape[1] >= 8)
    model.output.vectorize(args[0], 8, TailStrategy::GuardWithIf);
}

} // namespace kiln::codegen

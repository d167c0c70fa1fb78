//===- FoldBatchNorm.cpp - fold eval-mode BatchNorm away ------------------===//
//
// Two rewrites of an eval-mode BatchNorm with running statistics: folded
// into the Linear/Conv2d that produces its input, or else turned into a
// per-channel scale-and-shift. With the values bound, the new weights are
// constants computed here; without (weights loaded at run time), they are an
// nn.fold_batch_norm that code generation runs once at load. Either way the
// arithmetic is done in double precision and rounded to f32 once, so the
// folded layer differs from PyTorch's unfolded computation by float rounding
// only.
//
//===----------------------------------------------------------------------===//
#include "kiln/Dialect/NN/IR/BatchNormFold.h"
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

using namespace mlir;

namespace kiln::nn {
namespace {

#define GEN_PASS_CLASSES
#include "kiln/Dialect/NN/Transforms/Passes.h.inc"

/// y = x · scale[c] + shift[c]: what an eval-mode BatchNorm computes.
struct ChannelAffine {
  SmallVector<double> scale, shift;
};

SmallVector<double> toDoubles(DenseElementsAttr values) {
  SmallVector<double> out;
  for (float v : values.getValues<float>())
    out.push_back(v);
  return out;
}

/// Why this BatchNorm cannot be rewritten at all, or "" if it can.
std::string whyKept(BatchNormOp bn) {
  if (bn.training())
    return "it is in training mode";
  if (!bn.tracksRunningStats())
    return "track_running_stats=false: it normalizes with batch statistics "
           "in eval mode too, as PyTorch does";
  return "";
}

/// Whether every one of `values` that is present has a value.
bool allBound(ArrayRef<Value> values) {
  return llvm::all_of(values, [](Value v) { return !v || getBoundValue(v); });
}

bool statisticsBound(BatchNormOp bn) {
  return allBound({bn.running_mean(), bn.running_var(), bn.weight(), bn.bias()});
}

/// The folded weight and bias as an nn.fold_batch_norm on the unbound
/// values (`weight` and `bias` may be null: then they are scale and shift).
std::pair<Value, Value> createSymbolicFold(PatternRewriter &rewriter, Location loc,
                                           BatchNormOp bn, Value weight, Value bias) {
  auto channelType = bn.running_mean().getType();
  Type weightType = weight ? weight.getType() : channelType;
  auto fold = rewriter.create<FoldBatchNormOp>(
      loc, TypeRange{weightType, channelType}, weight, bias, bn.running_mean(),
      bn.running_var(), bn.weight(), bn.bias(), bn.epsAttr());
  return {fold.folded_weight(), fold.folded_bias()};
}

/// scale = γ / sqrt(var + eps), shift = β − mean · scale (γ = 1, β = 0
/// without affine). Only for a BatchNorm whyKept() accepts.
ChannelAffine computeAffine(BatchNormOp bn) {
  SmallVector<double> mean = toDoubles(getBoundValue(bn.running_mean()));
  SmallVector<double> var = toDoubles(getBoundValue(bn.running_var()));
  SmallVector<double> gamma(mean.size(), 1.0), beta(mean.size(), 0.0);
  if (bn.isAffine()) {
    gamma = toDoubles(getBoundValue(bn.weight()));
    beta = toDoubles(getBoundValue(bn.bias()));
  }
  double eps = bn.eps().convertToDouble();
  ChannelAffine affine;
  for (size_t c = 0; c < mean.size(); ++c) {
    double scale = fold::scale(gamma[c], var[c], eps);
    affine.scale.push_back(scale);
    affine.shift.push_back(fold::shift(beta[c], mean[c], scale));
  }
  return affine;
}

/// Why the BatchNorm cannot be folded into its input's producer, or "".
std::string whyNotFoldable(BatchNormOp bn) {
  Operation *producer = bn.input().getDefiningOp();
  if (!producer)
    return "its input is the model's input";
  if (!isa<LinearOp, Conv2DOp>(producer))
    return "its input comes from " + describeLayer(producer) +
           ", not from a linear or conv2d";
  // BatchNorm normalizes dimension 1; a Linear's features are its last
  // dimension, so they coincide only for a [N, C] output.
  if (isa<LinearOp>(producer) &&
      producer->getResult(0).getType().cast<RankedTensorType>().getRank() != 2)
    return describeLayer(producer) +
           " has a rank-3 output whose features are not dimension 1";
  if (!producer->getResult(0).hasOneUse())
    return describeLayer(producer) + " has other users";
  if (producer->getAttr("activation"))
    return describeLayer(producer) + " already applies an activation";
  return "";
}

Value createConstant(PatternRewriter &rewriter, Location loc,
                     RankedTensorType type, ArrayRef<float> values) {
  auto attr = DenseElementsAttr::get(type, values);
  return rewriter.create<arith::ConstantOp>(loc, attr);
}

/// W'[o, ...] = W[o, ...] · scale[o];  b'[o] = b[o] · scale[o] + shift[o].
struct FoldIntoProducer : OpRewritePattern<BatchNormOp> {
  FoldIntoProducer(MLIRContext *context, bool report)
      : OpRewritePattern(context, /*benefit=*/2), report(report) {}

  LogicalResult matchAndRewrite(BatchNormOp bn,
                                PatternRewriter &rewriter) const override {
    if (!whyKept(bn).empty() || !whyNotFoldable(bn).empty())
      return failure();
    Operation *producer = bn.input().getDefiningOp();
    Location loc = rewriter.getFusedLoc({producer->getLoc(), bn.getLoc()});
    Value bias = producer->getNumOperands() > 2 ? producer->getOperand(2) : Value();
    auto [w, b] = statisticsBound(bn) && allBound({producer->getOperand(1), bias})
                      ? foldConstants(rewriter, loc, bn, producer)
                      : createSymbolicFold(rewriter, loc, bn, producer->getOperand(1), bias);
    OperationState state(loc, producer->getName());
    state.addOperands({producer->getOperand(0), w, b});
    state.addAttributes(producer->getAttrs());
    state.addTypes(bn.getType());
    Operation *folded = rewriter.createOperation(state);
    if (report)
      bn.emitRemark() << describeLayer(bn) << " folded into " << describeLayer(producer);
    rewriter.replaceOp(bn, folded->getResults());
    rewriter.eraseOp(producer);
    return success();
  }

  static std::pair<Value, Value> foldConstants(PatternRewriter &rewriter, Location loc,
                                               BatchNormOp bn, Operation *producer) {
    ChannelAffine affine = computeAffine(bn);
    DenseElementsAttr weight = getBoundValue(producer->getOperand(1));
    auto weightType = weight.getType().cast<RankedTensorType>();
    int64_t channels = weightType.getDimSize(0);
    int64_t perChannel = weightType.getNumElements() / channels;

    SmallVector<float> newWeight;
    newWeight.reserve(weightType.getNumElements());
    int64_t i = 0;
    for (float w : weight.getValues<float>())
      newWeight.push_back(static_cast<float>(
          fold::weight(static_cast<double>(w), affine.scale[i++ / perChannel])));
    SmallVector<double> bias(channels, 0.0);
    if (producer->getNumOperands() > 2)
      bias = toDoubles(getBoundValue(producer->getOperand(2)));
    SmallVector<float> newBias;
    for (int64_t c = 0; c < channels; ++c)
      newBias.push_back(
          static_cast<float>(fold::bias(bias[c], affine.scale[c], affine.shift[c])));

    Value w = createConstant(rewriter, loc, weightType, newWeight);
    Value b = createConstant(
        rewriter, loc, RankedTensorType::get({channels}, rewriter.getF32Type()),
        newBias);
    return {w, b};
  }

  bool report;
};

struct ToScaleShift : OpRewritePattern<BatchNormOp> {
  ToScaleShift(MLIRContext *context, bool report)
      : OpRewritePattern(context, /*benefit=*/1), report(report) {}

  LogicalResult matchAndRewrite(BatchNormOp bn,
                                PatternRewriter &rewriter) const override {
    if (!whyKept(bn).empty())
      return failure();
    std::string reason = whyNotFoldable(bn);
    if (reason.empty())
      return failure(); // FoldIntoProducer's case
    auto [scaleValue, shiftValue] =
        statisticsBound(bn) ? constantAffine(rewriter, bn)
                            : createSymbolicFold(rewriter, bn.getLoc(), bn, Value(), Value());
    if (report)
      bn.emitRemark() << describeLayer(bn) << " became a per-channel scale-and-shift: " << reason;
    rewriter.replaceOpWithNewOp<ScaleShiftOp>(bn, bn.getType(), bn.input(),
                                              scaleValue, shiftValue,
                                              StringAttr());
    return success();
  }

  static std::pair<Value, Value> constantAffine(PatternRewriter &rewriter, BatchNormOp bn) {
    ChannelAffine affine = computeAffine(bn);
    auto channelType = RankedTensorType::get(
        {static_cast<int64_t>(affine.scale.size())}, rewriter.getF32Type());
    SmallVector<float> scale(affine.scale.begin(), affine.scale.end());
    SmallVector<float> shift(affine.shift.begin(), affine.shift.end());
    return {createConstant(rewriter, bn.getLoc(), channelType, scale),
            createConstant(rewriter, bn.getLoc(), channelType, shift)};
  }

  bool report;
};

struct FoldBatchNormPass : FoldBatchNormBase<FoldBatchNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldIntoProducer, ToScaleShift>(&getContext(), report);
    if (failed(applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    if (report)
      getOperation().walk([](BatchNormOp bn) {
        bn.emitRemark() << describeLayer(bn) << " kept: " << whyKept(bn);
      });
  }
};

} // namespace

std::unique_ptr<Pass> createFoldBatchNormPass() {
  return std::make_unique<FoldBatchNormPass>();
}

} // namespace kiln::nn

//===- NNTrainOps.cpp - verifiers of the training-step ops ----------------===//
//
// Shape checks of the ops in NNTrainOps.td. Where a result shape follows
// from the operands it is recomputed with the shared rules of
// ShapeInference.cpp (a gradient has the type of what it is the gradient
// of); where it does not (a strided convolution's or a pool's input), the
// forward rule is run backwards: the declared input shape must give the
// output gradient's shape.
//
//===----------------------------------------------------------------------===//
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"

using namespace mlir;

namespace kiln::nn {
namespace {

ShapeRef shapeOf(Value value) {
  return value.getType().cast<RankedTensorType>().getShape();
}

SmallVector<int64_t, 2> toInts(ArrayAttr array) {
  SmallVector<int64_t, 2> ints;
  for (Attribute element : array)
    ints.push_back(element.cast<IntegerAttr>().getInt());
  return ints;
}

/// Two dimensions agree when equal or when either is dynamic (the batch).
bool dimsAgree(int64_t a, int64_t b) {
  return a == b || a == kDynamic || b == kDynamic;
}

bool shapesAgree(ShapeRef a, ShapeRef b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip(a, b))
    if (!dimsAgree(x, y))
      return false;
  return true;
}

LogicalResult expectShape(Operation *op, StringRef what, ShapeRef actual,
                          ShapeRef expected) {
  if (actual == expected)
    return success();
  return op->emitOpError() << what << " must be " << formatShape(expected)
                           << ", got " << formatShape(actual);
}

/// [N, C], [N, C, L] or [N, C, H, W]: the channels, or failure.
FailureOr<int64_t> channelsOf(Operation *op, ShapeRef input) {
  if (input.size() < 2 || input.size() > 4) {
    op->emitOpError() << "expects an input of shape [N, C], [N, C, L] or "
                         "[N, C, H, W], got "
                      << formatShape(input);
    return failure();
  }
  return input[1];
}

LogicalResult expectPerChannel(Operation *op, StringRef what, Value value,
                               int64_t channels) {
  if (!value)
    return success();
  return expectShape(op, what, shapeOf(value), {channels});
}

/// PyTorch: "expected more than 1 value per channel when training".
LogicalResult checkValuesPerChannel(Operation *op, ShapeRef input) {
  int64_t perChannel = 1;
  for (size_t i = 2; i < input.size(); ++i)
    perChannel *= input[i];
  if (input[0] != kDynamic && input[0] * perChannel == 1)
    return op->emitOpError()
           << "expected more than 1 value per channel when training, got "
              "input shape "
           << formatShape(input);
  return success();
}

LogicalResult checkPositive(Operation *op, StringRef name, double value) {
  if (!(value > 0))
    return op->emitOpError() << name << " must be > 0, got "
                             << formatNumber(value);
  return success();
}

LogicalResult checkNonNegative(Operation *op, StringRef name, double value) {
  if (!(value >= 0))
    return op->emitOpError() << name << " must be >= 0, got "
                             << formatNumber(value);
  return success();
}

LogicalResult checkUnitHalfOpen(Operation *op, StringRef name, double value) {
  if (!(value >= 0 && value < 1))
    return op->emitOpError() << name << " must be in [0, 1), got "
                             << formatNumber(value);
  return success();
}

LogicalResult verifyLogitsAndLabels(Operation *op, Value logits, Value labels) {
  ShapeRef l = shapeOf(logits), y = shapeOf(labels);
  if (l.size() != 2)
    return op->emitOpError() << "expects logits of shape [N, C], got "
                             << formatShape(l);
  if (!dimsAgree(l[0], y[0]))
    return op->emitOpError() << "labels must have the logits' batch dimension: "
                                "logits " << formatShape(l) << ", labels "
                             << formatShape(y);
  return success();
}

/// `[*, last]` with the leading dimensions of `like`.
Shape withLast(ShapeRef like, int64_t last) {
  Shape shape(like.begin(), like.end());
  shape.back() = last;
  return shape;
}

} // namespace

LogicalResult CrossEntropyOp::verifyTrain() {
  return verifyLogitsAndLabels(*this, logits(), labels());
}

LogicalResult CrossEntropyGradOp::verifyTrain() {
  if (failed(verifyLogitsAndLabels(*this, logits(), labels())))
    return failure();
  if (logits_grad().getType() != logits().getType())
    return emitOpError() << "result must have the logits' type "
                         << logits().getType();
  return success();
}

LogicalResult BatchNormStatsOp::verifyTrain() {
  FailureOr<int64_t> channels = channelsOf(*this, shapeOf(input()));
  if (failed(channels) || failed(checkValuesPerChannel(*this, shapeOf(input()))))
    return failure();
  if (failed(expectPerChannel(*this, "mean", mean(), *channels)) ||
      failed(expectPerChannel(*this, "var", var(), *channels)))
    return failure();
  return success();
}

LogicalResult BatchNormNormalizeOp::verifyTrain() {
  FailureOr<int64_t> channels = channelsOf(*this, shapeOf(input()));
  if (failed(channels) || failed(checkPositive(*this, "eps", eps().convertToDouble())))
    return failure();
  if (!weight() != !bias())
    return emitOpError("needs both weight and bias (affine) or neither");
  for (auto [value, name] : {std::pair<Value, StringRef>{mean(), "mean"},
                             {var(), "var"}, {weight(), "weight"},
                             {bias(), "bias"}})
    if (failed(expectPerChannel(*this, name, value, *channels)))
      return failure();
  if (output().getType() != input().getType())
    return emitOpError() << "result must have the input's type " << input().getType();
  return success();
}

LogicalResult BatchNormGradOp::verifyTrain() {
  FailureOr<int64_t> channels = channelsOf(*this, shapeOf(input()));
  if (failed(channels) || failed(checkPositive(*this, "eps", eps().convertToDouble())))
    return failure();
  if (output_grad().getType() != input().getType() ||
      input_grad().getType() != input().getType())
    return emitOpError() << "output_grad and input_grad must have the input's type "
                         << input().getType();
  for (auto [value, name] : {std::pair<Value, StringRef>{mean(), "mean"},
                             {var(), "var"}, {weight(), "weight"},
                             {weight_grad(), "weight_grad"},
                             {bias_grad(), "bias_grad"}})
    if (failed(expectPerChannel(*this, name, value, *channels)))
      return failure();
  return success();
}

LogicalResult RunningStatsUpdateOp::verifyTrain() {
  FailureOr<int64_t> channels = channelsOf(*this, shapeOf(input()));
  if (failed(channels) || failed(checkValuesPerChannel(*this, shapeOf(input()))))
    return failure();
  if (momentum()) {
    double m = momentum()->convertToDouble();
    if (!(m >= 0 && m <= 1))
      return emitOpError() << "momentum must be in [0, 1], got " << formatNumber(m);
  }
  for (auto [value, name] :
       {std::pair<Value, StringRef>{mean(), "mean"}, {var(), "var"},
        {running_mean(), "running_mean"}, {running_var(), "running_var"},
        {new_running_mean(), "new_running_mean"},
        {new_running_var(), "new_running_var"}})
    if (failed(expectPerChannel(*this, name, value, *channels)))
      return failure();
  return success();
}

LogicalResult LinearGradInputOp::verifyTrain() {
  ShapeRef dy = shapeOf(output_grad()), w = shapeOf(weight());
  if (w.size() != 2 || dy.size() < 2 || !dimsAgree(dy.back(), w[0]))
    return emitOpError() << "expects output_grad [*, out] and weight [out, in], got "
                         << formatShape(dy) << " and " << formatShape(w);
  return expectShape(*this, "input_grad", shapeOf(input_grad()), withLast(dy, w[1]));
}

LogicalResult LinearGradWeightOp::verifyTrain() {
  ShapeRef dy = shapeOf(output_grad()), x = shapeOf(input());
  if (dy.size() < 2 || !shapesAgree(dy.drop_back(), x.drop_back()))
    return emitOpError() << "expects output_grad [*, out] and input [*, in] with "
                            "the same leading dimensions, got "
                         << formatShape(dy) << " and " << formatShape(x);
  return expectShape(*this, "weight_grad", shapeOf(weight_grad()),
                     {dy.back(), x.back()});
}

LogicalResult LinearGradBiasOp::verifyTrain() {
  ShapeRef dy = shapeOf(output_grad());
  if (dy.size() < 2)
    return emitOpError() << "expects output_grad [*, out], got " << formatShape(dy);
  return expectShape(*this, "bias_grad", shapeOf(bias_grad()), {dy.back()});
}

LogicalResult Conv2DGradInputOp::verifyTrain() {
  auto emitError = [&] { return emitOpError(); };
  ShapeRef x = shapeOf(input_grad());
  FailureOr<Shape> y = inferConv2DShape(emitError, x, shapeOf(weight()), llvm::None, window());
  if (failed(y))
    return failure();
  return expectShape(*this, "output_grad", shapeOf(output_grad()), *y);
}

LogicalResult Conv2DGradWeightOp::verifyTrain() {
  auto emitError = [&] { return emitOpError(); };
  FailureOr<Shape> y = inferConv2DShape(emitError, shapeOf(input()), shapeOf(weight_grad()),
                                        llvm::None, window());
  if (failed(y))
    return failure();
  return expectShape(*this, "output_grad", shapeOf(output_grad()), *y);
}

LogicalResult Conv2DGradBiasOp::verifyTrain() {
  ShapeRef dy = shapeOf(output_grad());
  if (dy.size() != 4)
    return emitOpError() << "expects output_grad [N, C, H, W], got " << formatShape(dy);
  return expectShape(*this, "bias_grad", shapeOf(bias_grad()), {dy[1]});
}

template <typename PoolGradOp>
static LogicalResult verifyPoolGrad(PoolGradOp op, StringRef forwardName) {
  auto emitError = [&] { return op.emitOpError(); };
  FailureOr<Shape> y = inferPool2DShape(emitError, forwardName, shapeOf(op.input_grad()),
                                        toInts(op.kernel_size()), op.window());
  if (failed(y))
    return failure();
  return expectShape(op, "output_grad", shapeOf(op.output_grad()), *y);
}

LogicalResult AvgPool2DGradOp::verifyTrain() {
  return verifyPoolGrad(*this, "avg_pool2d");
}

LogicalResult MaxPool2DGradOp::verifyTrain() {
  if (input().getType() != input_grad().getType())
    return emitOpError() << "result must have the input's type " << input().getType();
  return verifyPoolGrad(*this, "max_pool2d");
}

template <typename SoftmaxGradOp>
static LogicalResult verifySoftmaxGrad(SoftmaxGradOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return failure(failed(normalizeDim(emitError, op->getName().stripDialect(), "axis",
                                     shapeOf(op.output()), op.axisAttr().getInt(),
                                     /*allowNegative=*/false)));
}

LogicalResult SoftmaxGradOp::verifyTrain() { return verifySoftmaxGrad(*this); }
LogicalResult LogSoftmaxGradOp::verifyTrain() { return verifySoftmaxGrad(*this); }

LogicalResult ReshapeOp::verifyTrain() {
  ShapeRef in = shapeOf(input()), out = shapeOf(output());
  auto perSample = [](ShapeRef shape) -> int64_t {
    int64_t n = 1;
    for (int64_t dim : shape.drop_front())
      n = dim == kDynamic ? kDynamic : n * dim;
    return n;
  };
  if (in.empty() || out.empty() || in[0] != out[0] ||
      perSample(in) == kDynamic || perSample(in) != perSample(out))
    return emitOpError() << "cannot reshape " << formatShape(in) << " to "
                         << formatShape(out)
                         << " (same batch dimension and elements per sample)";
  return success();
}

LogicalResult DropoutMaskOp::verifyTrain() {
  if (mask().getType() != input().getType())
    return emitOpError() << "result must have the input's type " << input().getType();
  if (streamAttr().getInt() < 0 || seedAttr().getInt() < 0)
    return emitOpError("seed and stream must be >= 0");
  return checkUnitHalfOpen(*this, "p", p().convertToDouble());
}

LogicalResult SGDUpdateOp::verifyTrain() {
  Type type = param().getType();
  if (grad().getType() != type || new_param().getType() != type)
    return emitOpError() << "grad and new_param must have the parameter's type " << type;
  if (failed(checkPositive(*this, "lr", lr().convertToDouble())) ||
      failed(checkNonNegative(*this, "momentum", momentum().convertToDouble())) ||
      failed(checkNonNegative(*this, "weight_decay", weight_decay().convertToDouble())))
    return failure();
  double mu = momentum().convertToDouble(), tau = dampening().convertToDouble();
  if (!(tau >= 0 && tau <= 1))
    return emitOpError() << "dampening must be in [0, 1], got " << formatNumber(tau);
  if (nesterov() && (mu <= 0 || tau != 0))
    return emitOpError("nesterov needs momentum > 0 and dampening = 0");
  bool hasBuffer = bool(momentum_buffer());
  if (hasBuffer != (mu > 0) || bool(new_momentum_buffer()) != (mu > 0))
    return emitOpError("has a momentum_buffer operand and result exactly when "
                       "momentum > 0");
  if (hasBuffer && (momentum_buffer().getType() != type ||
                    new_momentum_buffer().getType() != type))
    return emitOpError() << "momentum_buffer must have the parameter's type " << type;
  return success();
}

template <typename AdamOp>
static LogicalResult verifyAdam(AdamOp op) {
  Type type = op.param().getType();
  for (Value value : {op.grad(), op.exp_avg(), op.exp_avg_sq(), op.new_param(),
                      op.new_exp_avg(), op.new_exp_avg_sq()})
    if (value.getType() != type)
      return op.emitOpError() << "gradient and state must have the parameter's type "
                              << type;
  if (failed(checkPositive(op, "lr", op.lr().convertToDouble())) ||
      failed(checkPositive(op, "eps", op.eps().convertToDouble())) ||
      failed(checkUnitHalfOpen(op, "beta1", op.beta1().convertToDouble())) ||
      failed(checkUnitHalfOpen(op, "beta2", op.beta2().convertToDouble())) ||
      failed(checkNonNegative(op, "weight_decay", op.weight_decay().convertToDouble())))
    return failure();
  return success();
}

LogicalResult AdamUpdateOp::verifyTrain() { return verifyAdam(*this); }
LogicalResult AdamWUpdateOp::verifyTrain() { return verifyAdam(*this); }

} // namespace kiln::nn

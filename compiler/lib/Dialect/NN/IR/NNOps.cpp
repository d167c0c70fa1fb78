//===- NNOps.cpp - verifiers of the nn dialect ----------------------------===//
//
// Each layer's verifier recomputes its result shape with the shared rules of
// ShapeInference.cpp and compares it with the declared result type.
//
//===----------------------------------------------------------------------===//
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"

#include "mlir/IR/Builders.h"

using namespace mlir;

namespace kiln::nn {

static ShapeRef shapeOf(Value value) {
  return value.getType().cast<RankedTensorType>().getShape();
}

static Optional<ShapeRef> optionalShapeOf(Value value) {
  if (!value)
    return llvm::None;
  return shapeOf(value);
}

static SmallVector<int64_t, 2> toInts(ArrayAttr array) {
  SmallVector<int64_t, 2> ints;
  for (Attribute element : array)
    ints.push_back(element.cast<IntegerAttr>().getInt());
  return ints;
}

/// Compares the declared result type with the inferred shape.
static LogicalResult checkResultShape(Operation *op,
                                      FailureOr<Shape> inferred) {
  if (failed(inferred))
    return failure();
  ShapeRef declared = shapeOf(op->getResult(0));
  if (declared != ArrayRef<int64_t>(*inferred))
    return op->emitOpError() << "result shape " << formatShape(declared)
                             << " does not match the inferred shape "
                             << formatShape(*inferred);
  return success();
}

LogicalResult verifyStateOp(Operation *op, StringRef name,
                            Optional<ElementsAttr> value) {
  if (name.empty())
    return op->emitOpError("needs a non-empty state_dict name");
  if (value && value->getType() != op->getResult(0).getType())
    return op->emitOpError() << "value of type " << value->getType()
                             << " does not match the result type "
                             << op->getResult(0).getType();
  return success();
}

template <typename StateOp>
static LogicalResult verifyStateOp(StateOp op) {
  return verifyStateOp(op, op.name(), op.value());
}

static LogicalResult verifyInferredShape(LinearOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return checkResultShape(
      op, inferLinearShape(emitError, shapeOf(op.input()), shapeOf(op.weight()),
                           optionalShapeOf(op.bias())));
}

WindowSpec windowOf(Operation *op) {
  auto ints = [&](StringRef name) {
    Shape values;
    if (auto array = op->getAttrOfType<ArrayAttr>(name))
      for (Attribute element : array)
        values.push_back(element.isa<IntegerAttr>() ? element.cast<IntegerAttr>().getInt() : -1);
    return values;
  };
  WindowSpec window;
  window.stride = ints("stride");
  window.padding = ints("padding");
  window.paddingEnd = ints("padding_end");
  window.dilation = ints("dilation");
  window.ceilMode = op->hasAttr("ceil_mode");
  return window;
}

WindowSpec Conv2DOp::window() { return windowOf(*this); }
WindowSpec AvgPool2DOp::window() { return windowOf(*this); }
WindowSpec MaxPool2DOp::window() { return windowOf(*this); }
WindowSpec Conv2DGradInputOp::window() { return windowOf(*this); }
WindowSpec Conv2DGradWeightOp::window() { return windowOf(*this); }
WindowSpec AvgPool2DGradOp::window() { return windowOf(*this); }
WindowSpec MaxPool2DGradOp::window() { return windowOf(*this); }

static LogicalResult verifyInferredShape(Conv2DOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return checkResultShape(
      op, inferConv2DShape(emitError, shapeOf(op.input()), shapeOf(op.weight()),
                           optionalShapeOf(op.bias()), op.window()));
}

/// Every state operand of a BatchNorm is one value per channel.
static LogicalResult verifyBatchNormState(BatchNormOp op,
                                          Optional<int64_t> &channels) {
  Value perChannel[] = {op.weight(), op.bias(), op.running_mean(),
                        op.running_var()};
  StringRef names[] = {"weight", "bias", "running_mean", "running_var"};
  for (auto [value, name] : llvm::zip(perChannel, names)) {
    if (!value)
      continue;
    ShapeRef shape = shapeOf(value);
    if (shape.size() != 1 || (channels && shape[0] != *channels))
      return op.emitOpError() << name << " must be ["
                              << (channels ? std::to_string(*channels) : "C")
                              << "], got " << formatShape(shape);
    channels = shape[0];
  }
  if (!op.weight() != !op.bias())
    return op.emitOpError("needs both weight and bias (affine) or neither");
  if (!op.running_mean() != !op.running_var() ||
      !op.running_mean() != !op.num_batches_tracked())
    return op.emitOpError("needs running_mean, running_var and "
                          "num_batches_tracked together, or none of them");
  return success();
}

static LogicalResult verifyInferredShape(BatchNormOp op) {
  if (!(op.eps().convertToDouble() > 0))
    return op.emitOpError() << "eps must be > 0, got "
                            << formatNumber(op.eps().convertToDouble());
  // No momentum: PyTorch's momentum=None, the cumulative average.
  if (op.momentum()) {
    double momentum = op.momentum()->convertToDouble();
    if (!(momentum >= 0 && momentum <= 1))
      return op.emitOpError() << "momentum must be in [0, 1], got " << formatNumber(momentum);
  }
  Optional<int64_t> channels;
  if (failed(verifyBatchNormState(op, channels)))
    return failure();
  auto emitError = [&] { return op.emitOpError(); };
  return checkResultShape(
      op, inferBatchNormShape(emitError, shapeOf(op.input()), channels));
}

static LogicalResult verifyInferredShape(DropoutOp op) {
  double p = op.p().convertToDouble();
  if (!(p >= 0 && p < 1))
    return op.emitOpError() << "p must be in [0, 1), got " << formatNumber(p);
  return checkResultShape(op, Shape(shapeOf(op.input()).begin(), shapeOf(op.input()).end()));
}

template <typename PoolOp>
static LogicalResult verifyPoolShape(PoolOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return checkResultShape(
      op, inferPool2DShape(emitError, op->getName().stripDialect(),
                           shapeOf(op.input()), toInts(op.kernel_size()),
                           op.window()));
}
static LogicalResult verifyInferredShape(AvgPool2DOp op) {
  return verifyPoolShape(op);
}
static LogicalResult verifyInferredShape(MaxPool2DOp op) {
  return verifyPoolShape(op);
}

template <typename SoftmaxOp>
static LogicalResult verifySoftmax(SoftmaxOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return failure(failed(normalizeDim(emitError, op->getName().stripDialect(), "axis",
                                     shapeOf(op.input()), op.axisAttr().getInt(),
                                     /*allowNegative=*/false)));
}
static LogicalResult verifyInferredShape(SoftmaxOp op) { return verifySoftmax(op); }
static LogicalResult verifyInferredShape(LogSoftmaxOp op) { return verifySoftmax(op); }

static LogicalResult verifyInferredShape(FlattenOp op) {
  auto emitError = [&] { return op.emitOpError(); };
  return checkResultShape(
      op, inferFlattenShape(emitError, shapeOf(op.input()),
                            op.start_dimAttr().getInt(),
                            op.end_dimAttr().getInt()));
}

static LogicalResult verifyInferredShape(ScaleShiftOp op) {
  ShapeRef input = shapeOf(op.input());
  if (input.size() < 2)
    return op.emitOpError() << "expects an input of shape [N, C, ...], got "
                            << formatShape(input);
  for (Value perChannel : {op.scale(), op.shift()}) {
    ShapeRef shape = shapeOf(perChannel);
    if (shape.size() != 1 || shape[0] != input[1])
      return op.emitOpError() << "scale and shift must be [" << input[1]
                              << "] for an input of shape "
                              << formatShape(input) << ", got "
                              << formatShape(shape);
  }
  return checkResultShape(op, Shape(input.begin(), input.end()));
}

static LogicalResult verifyFoldBatchNorm(FoldBatchNormOp op) {
  if (!(op.eps().convertToDouble() > 0))
    return op.emitOpError() << "eps must be > 0, got "
                            << formatNumber(op.eps().convertToDouble());
  int64_t channels = -1;
  Value perChannel[] = {op.bias(), op.running_mean(), op.running_var(),
                        op.gamma(), op.beta(), op.folded_bias()};
  StringRef names[] = {"bias", "running_mean", "running_var", "gamma", "beta",
                       "folded_bias"};
  if (op.weight()) {
    ShapeRef weight = shapeOf(op.weight());
    if (weight.empty())
      return op.emitOpError("weight must have the channels as dimension 0");
    channels = weight[0];
  }
  for (auto [value, name] : llvm::zip(perChannel, names)) {
    if (!value)
      continue;
    ShapeRef shape = shapeOf(value);
    if (shape.size() != 1 || (channels >= 0 && shape[0] != channels))
      return op.emitOpError() << name << " must be ["
                              << (channels >= 0 ? std::to_string(channels) : "C")
                              << "], got " << formatShape(shape);
    channels = shape[0];
  }
  if (!op.gamma() != !op.beta())
    return op.emitOpError("needs both gamma and beta (affine) or neither");
  Type expected = op.weight() ? op.weight().getType() : op.folded_bias().getType();
  if (op.folded_weight().getType() != expected)
    return op.emitOpError() << "folded_weight must be " << expected << ", got "
                            << op.folded_weight().getType();
  return success();
}

} // namespace kiln::nn

using namespace kiln::nn;

#include "kiln/Dialect/NN/IR/NNOpsEnums.cpp.inc"

#define GET_OP_CLASSES
#include "kiln/Dialect/NN/IR/NNOps.cpp.inc"

//===- ShapeInference.cpp - result shapes of nn layers --------------------===//
#include "kiln/Dialect/NN/IR/ShapeInference.h"

#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace mlir;

namespace kiln::nn {

std::string formatShape(ShapeRef shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << '[';
  llvm::interleaveComma(shape, os, [&](int64_t dim) {
    if (dim == kDynamic)
      os << 'N';
    else
      os << dim;
  });
  os << ']';
  return os.str();
}

std::string formatNumber(double value) {
  // The shortest %g form that reads back as the same double: 0.1, not
  // 0.10000000000000001; 1/255 keeps all its digits.
  char text[32];
  for (int precision = 6; precision <= 17; ++precision) {
    snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  return text;
}

static bool isPerChannel(ShapeRef shape, int64_t channels) {
  return shape.size() == 1 && shape[0] == channels;
}

FailureOr<Shape> inferLinearShape(EmitErrorFn emitError, ShapeRef input,
                                  ShapeRef weight, Optional<ShapeRef> bias) {
  if (weight.size() != 2)
    return LogicalResult(emitError() << "linear weight must be [out_features, in_features], got "
                       << formatShape(weight));
  int64_t outFeatures = weight[0], inFeatures = weight[1];
  if (bias && !isPerChannel(*bias, outFeatures))
    return LogicalResult(emitError() << "linear bias must be [" << outFeatures << "], got "
                       << formatShape(*bias));
  if (input.size() < 2)
    return LogicalResult(emitError() << "linear expects an input of shape [N, *, "
                       << inFeatures << "], got " << formatShape(input));
  if (input.back() != inFeatures)
    return LogicalResult(emitError() << "linear expects " << inFeatures
                       << " input features, but its input has shape "
                       << formatShape(input) << " with " << input.back()
                       << " features");
  Shape result(input.begin(), input.end());
  result.back() = outFeatures;
  return result;
}

static FailureOr<int64_t> windowedExtent(EmitErrorFn emitError,
                                         StringRef opName, StringRef dimName,
                                         int64_t size, int64_t kernel,
                                         int64_t stride, int64_t padding) {
  if (kernel <= 0 || stride <= 0 || padding < 0)
    return LogicalResult(emitError() << opName << " needs kernel_size and stride > 0 and "
                       << "padding >= 0, got kernel_size " << kernel
                       << ", stride " << stride << ", padding " << padding);
  int64_t padded = size + 2 * padding;
  if (padded < kernel)
    return LogicalResult(emitError() << opName << " output would be empty: input " << dimName
                       << " " << size << " (padded " << padded
                       << ") is smaller than kernel_size " << kernel);
  return (padded - kernel) / stride + 1;
}

static LogicalResult checkPair(EmitErrorFn emitError, StringRef opName,
                               StringRef attrName, ShapeRef values) {
  if (values.size() == 2)
    return success();
  return LogicalResult(emitError() << opName << " " << attrName
                     << " must have 2 values [h, w], got " << values.size());
}

FailureOr<Shape> inferConv2DShape(EmitErrorFn emitError, ShapeRef input,
                                  ShapeRef weight, Optional<ShapeRef> bias,
                                  ShapeRef stride, ShapeRef padding) {
  if (failed(checkPair(emitError, "conv2d", "stride", stride)) ||
      failed(checkPair(emitError, "conv2d", "padding", padding)))
    return failure();
  if (weight.size() != 4)
    return LogicalResult(emitError() << "conv2d weight must be [out_channels, in_channels, "
                          "kH, kW], got "
                       << formatShape(weight));
  if (bias && !isPerChannel(*bias, weight[0]))
    return LogicalResult(emitError() << "conv2d bias must be [" << weight[0] << "], got "
                       << formatShape(*bias));
  if (input.size() != 4)
    return LogicalResult(emitError() << "conv2d expects an input of shape [N, C, H, W], got "
                       << formatShape(input));
  if (input[1] != weight[1])
    return LogicalResult(emitError() << "conv2d expects " << weight[1]
                       << " input channels, but its input has shape "
                       << formatShape(input) << " with " << input[1]
                       << " channels");
  FailureOr<int64_t> height = windowedExtent(
      emitError, "conv2d", "height", input[2], weight[2], stride[0], padding[0]);
  if (failed(height))
    return failure();
  FailureOr<int64_t> width = windowedExtent(
      emitError, "conv2d", "width", input[3], weight[3], stride[1], padding[1]);
  if (failed(width))
    return failure();
  return Shape{input[0], weight[0], *height, *width};
}

FailureOr<Shape> inferBatchNormShape(EmitErrorFn emitError, ShapeRef input,
                                     Optional<int64_t> channels) {
  if (input.size() < 2 || input.size() > 4)
    return LogicalResult(emitError() << "batch_norm expects an input of shape [N, C], "
                          "[N, C, L] or [N, C, H, W], got "
                       << formatShape(input));
  if (channels && input[1] != *channels)
    return LogicalResult(emitError() << "batch_norm has " << *channels
                       << " channels, but its input has shape "
                       << formatShape(input) << " with " << input[1]
                       << " channels");
  return Shape(input.begin(), input.end());
}

FailureOr<Shape> inferPool2DShape(EmitErrorFn emitError, StringRef opName,
                                  ShapeRef input, ShapeRef kernelSize,
                                  ShapeRef stride) {
  if (failed(checkPair(emitError, opName, "kernel_size", kernelSize)) ||
      failed(checkPair(emitError, opName, "stride", stride)))
    return failure();
  if (input.size() != 4)
    return LogicalResult(emitError() << opName << " expects an input of shape [N, C, H, W], got "
                       << formatShape(input));
  FailureOr<int64_t> height = windowedExtent(
      emitError, opName, "height", input[2], kernelSize[0], stride[0], 0);
  if (failed(height))
    return failure();
  FailureOr<int64_t> width = windowedExtent(
      emitError, opName, "width", input[3], kernelSize[1], stride[1], 0);
  if (failed(width))
    return failure();
  return Shape{input[0], input[1], *height, *width};
}

FailureOr<Shape> inferFlattenShape(EmitErrorFn emitError, ShapeRef input,
                                   int64_t startDim, int64_t endDim) {
  int64_t rank = input.size();
  // PyTorch counts negative dims from the end: -1 is the last.
  int64_t start = startDim < 0 ? startDim + rank : startDim;
  int64_t end = endDim < 0 ? endDim + rank : endDim;
  if (start < 0 || start >= rank || end < 0 || end >= rank || start > end)
    return LogicalResult(emitError() << "flatten dims start_dim=" << startDim
                       << ", end_dim=" << endDim
                       << " are out of range for an input of shape "
                       << formatShape(input));
  Shape result(input.begin(), input.begin() + start);
  int64_t merged = 1;
  for (int64_t dim : input.slice(start, end - start + 1)) {
    if (dim == kDynamic || merged == kDynamic) {
      merged = kDynamic;
      continue;
    }
    if (llvm::MulOverflow(merged, dim, merged))
      return LogicalResult(emitError() << "flatten of " << formatShape(input)
                         << " overflows 64-bit sizes");
  }
  result.push_back(merged);
  result.append(input.begin() + end + 1, input.end());
  return result;
}

FailureOr<Shape> inferAddShape(EmitErrorFn emitError, ShapeRef lhs,
                               ShapeRef rhs) {
  if (lhs != rhs)
    return LogicalResult(emitError() << "'+' needs operands of the same shape, got "
                       << formatShape(lhs) << " and " << formatShape(rhs));
  return Shape(lhs.begin(), lhs.end());
}

} // namespace kiln::nn

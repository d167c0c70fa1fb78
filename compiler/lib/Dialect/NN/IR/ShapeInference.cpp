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

int64_t windowOutputSize(int64_t size, int64_t kernel, int64_t stride,
                         int64_t padBegin, int64_t padEnd, int64_t dilation,
                         bool ceilMode) {
  int64_t span = size + padBegin + padEnd - dilation * (kernel - 1) - 1;
  if (ceilMode)
    span += stride - 1;
  // Floor division: the span is negative when the kernel is larger than the
  // padded input.
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  // PyTorch: "ensure that the last pooling starts inside the image".
  if (ceilMode && out > 0 && (out - 1) * stride >= size + padBegin)
    --out;
  return out;
}

// Window attributes past 2^31 are no model's (Sema refuses them in the DSL);
// refusing them in the IR too keeps the output-size arithmetic far from
// 64-bit overflow.
constexpr int64_t kMaxWindowValue = int64_t(1) << 31;

/// The output extent along one dimension of the window, or an error.
static FailureOr<int64_t> windowedExtent(EmitErrorFn emitError, StringRef opName,
                                         StringRef dimName, int64_t size,
                                         int64_t kernel, const WindowSpec &window,
                                         int d) {
  int64_t stride = window.stride[d], padBegin = window.padBegin(d),
          padEnd = window.padEnd(d), dilation = window.dilationOf(d);
  if (kernel <= 0 || stride <= 0 || padBegin < 0 || padEnd < 0) {
    InFlightDiagnostic diag = emitError();
    diag << opName << " needs kernel_size and stride > 0 and "
         << "padding >= 0, got kernel_size " << kernel << ", stride " << stride
         << ", padding " << padBegin;
    if (padEnd != padBegin)
      diag << ", padding_end " << padEnd;
    return LogicalResult(diag);
  }
  if (dilation <= 0)
    return LogicalResult(emitError() << opName << " needs dilation > 0, got "
                                     << dilation);
  for (int64_t value : {kernel, stride, padBegin, padEnd, dilation})
    if (value > kMaxWindowValue)
      return LogicalResult(emitError() << opName << " " << dimName
                                       << " window attribute " << value
                                       << " is too large (at most 2^31)");
  if (size == kDynamic)
    return LogicalResult(emitError() << opName << " needs a static input "
                                     << dimName);
  int64_t out = windowOutputSize(size, kernel, stride, padBegin, padEnd,
                                 dilation, window.ceilMode);
  if (out < 1) {
    InFlightDiagnostic diag = emitError();
    diag << opName << " output would be empty: input " << dimName << " "
         << size << " (padded " << size + padBegin + padEnd
         << ") is smaller than ";
    if (dilation == 1)
      diag << "kernel_size " << kernel;
    else
      diag << "the dilated kernel " << dilation * (kernel - 1) + 1
           << " (kernel_size " << kernel << ", dilation " << dilation << ")";
    return LogicalResult(diag);
  }
  return out;
}

static LogicalResult checkPair(EmitErrorFn emitError, StringRef opName,
                               StringRef attrName, ShapeRef values) {
  if (values.size() == 2)
    return success();
  return LogicalResult(emitError() << opName << " " << attrName
                     << " must have 2 values [h, w], got " << values.size());
}

/// The window's attributes are pairs; padding, padding_end and dilation may
/// be absent (empty).
static LogicalResult checkWindowPairs(EmitErrorFn emitError, StringRef opName,
                                      const WindowSpec &window) {
  if (failed(checkPair(emitError, opName, "stride", window.stride)))
    return failure();
  std::pair<StringRef, ShapeRef> optional[] = {{"padding", window.padding},
                                               {"padding_end", window.paddingEnd},
                                               {"dilation", window.dilation}};
  for (auto [name, values] : optional)
    if (!values.empty() && failed(checkPair(emitError, opName, name, values)))
      return failure();
  return success();
}

/// [H, W] of the window's output on `input` ([N, C, H, W]).
static FailureOr<std::pair<int64_t, int64_t>>
windowedShape(EmitErrorFn emitError, StringRef opName, ShapeRef input,
              int64_t kernelH, int64_t kernelW, const WindowSpec &window) {
  FailureOr<int64_t> height =
      windowedExtent(emitError, opName, "height", input[2], kernelH, window, 0);
  if (failed(height))
    return failure();
  FailureOr<int64_t> width =
      windowedExtent(emitError, opName, "width", input[3], kernelW, window, 1);
  if (failed(width))
    return failure();
  return std::make_pair(*height, *width);
}

FailureOr<Shape> inferConv2DShape(EmitErrorFn emitError, ShapeRef input,
                                  ShapeRef weight, Optional<ShapeRef> bias,
                                  const WindowSpec &window) {
  if (failed(checkWindowPairs(emitError, "conv2d", window)))
    return failure();
  if (window.ceilMode)
    return LogicalResult(emitError() << "conv2d has no ceil_mode");
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
  auto extents = windowedShape(emitError, "conv2d", input, weight[2], weight[3], window);
  if (failed(extents))
    return failure();
  return Shape{input[0], weight[0], extents->first, extents->second};
}

FailureOr<Shape> inferConv2DShape(EmitErrorFn emitError, ShapeRef input,
                                  ShapeRef weight, Optional<ShapeRef> bias,
                                  ShapeRef stride, ShapeRef padding) {
  WindowSpec window;
  window.stride.assign(stride.begin(), stride.end());
  window.padding.assign(padding.begin(), padding.end());
  if (failed(checkPair(emitError, "conv2d", "stride", stride)) ||
      failed(checkPair(emitError, "conv2d", "padding", padding)))
    return failure();
  return inferConv2DShape(emitError, input, weight, bias, window);
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
                                  const WindowSpec &window) {
  if (failed(checkPair(emitError, opName, "kernel_size", kernelSize)) ||
      failed(checkWindowPairs(emitError, opName, window)))
    return failure();
  if (input.size() != 4)
    return LogicalResult(emitError() << opName << " expects an input of shape [N, C, H, W], got "
                       << formatShape(input));
  auto extents =
      windowedShape(emitError, opName, input, kernelSize[0], kernelSize[1], window);
  if (failed(extents))
    return failure();
  return Shape{input[0], input[1], extents->first, extents->second};
}

FailureOr<Shape> inferPool2DShape(EmitErrorFn emitError, StringRef opName,
                                  ShapeRef input, ShapeRef kernelSize,
                                  ShapeRef stride) {
  WindowSpec window;
  window.stride.assign(stride.begin(), stride.end());
  return inferPool2DShape(emitError, opName, input, kernelSize, window);
}

FailureOr<int64_t> normalizeDim(EmitErrorFn emitError, StringRef opName,
                                StringRef attrName, ShapeRef input, int64_t dim,
                                bool allowNegative) {
  int64_t rank = input.size();
  if (rank == 0)
    return LogicalResult(emitError() << opName << " expects an input with at "
                                        "least one dimension, got []");
  // PyTorch counts a negative dim from the end: -1 is the last.
  int64_t normalized = allowNegative && dim < 0 ? dim + rank : dim;
  if (normalized < 0 || normalized >= rank)
    return LogicalResult(emitError() << opName << " " << attrName << " " << dim
                                     << " is out of range for an input of shape "
                                     << formatShape(input) << " (expected in ["
                                     << (allowNegative ? -rank : 0) << ", "
                                     << rank - 1 << "])");
  return normalized;
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

//===- ShapeInference.h - result shapes of nn layers ------------*- C++ -*-===//
//
// The shape rules of every nn layer, in one place. The op verifiers check a
// result type against them, and the importer computes result types with them,
// so a shape error reads the same from `kilnc` (on DSL source) and from
// `kiln-opt` (on IR). Each function returns the result shape, or emits one
// error through `emitError` and returns failure.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DIALECT_NN_IR_SHAPEINFERENCE_H
#define KILN_DIALECT_NN_IR_SHAPEINFERENCE_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/Optional.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace kiln::nn {

using Shape = llvm::SmallVector<int64_t, 4>;
using ShapeRef = llvm::ArrayRef<int64_t>;
using EmitErrorFn = llvm::function_ref<mlir::InFlightDiagnostic()>;

/// The batch dimension of an activation may be dynamic.
constexpr int64_t kDynamic = mlir::ShapedType::kDynamicSize;

/// "[N, 1, 28, 28]": dynamic dimensions print as N, the batch.
std::string formatShape(ShapeRef shape);

/// "0.001", "1e-05": numbers as a user writes them (the shortest %g form
/// that reads back exactly).
std::string formatNumber(double value);

mlir::FailureOr<Shape> inferLinearShape(EmitErrorFn emitError, ShapeRef input,
                                        ShapeRef weight,
                                        llvm::Optional<ShapeRef> bias);

/// Where a 2-D window (conv2d's kernel, a pool's) falls on the [H, W] of an
/// NCHW input, each field `[h, w]`: the attributes of nn.conv2d and the
/// pools. `padding` is the begin (top, left) padding; an empty `paddingEnd`
/// means the same as `padding` (symmetric), an empty `padding` none, an
/// empty `dilation` 1. `ceilMode` rounds the output size up, as PyTorch's
/// and ONNX's pools do.
struct WindowSpec {
  Shape stride, padding, paddingEnd, dilation;
  bool ceilMode = false;

  /// The value of a field for dimension `d` (0: h, 1: w), defaults applied.
  int64_t padBegin(int d) const { return padding.empty() ? 0 : padding[d]; }
  int64_t padEnd(int d) const {
    return paddingEnd.empty() ? padBegin(d) : paddingEnd[d];
  }
  int64_t dilationOf(int d) const { return dilation.empty() ? 1 : dilation[d]; }
};

/// The output extent of a window along one dimension, PyTorch's
/// pooling_output_shape and ONNX's rule:
///   floor((size + padBegin + padEnd − dilation·(kernel − 1) − 1 (+ stride − 1
///   with ceilMode)) / stride) + 1,
/// and with ceilMode one less when the last window would start past the
/// input and its begin padding ((out − 1)·stride >= size + padBegin).
/// At most 0 when not even one window fits.
int64_t windowOutputSize(int64_t size, int64_t kernel, int64_t stride,
                         int64_t padBegin, int64_t padEnd, int64_t dilation,
                         bool ceilMode);

mlir::FailureOr<Shape> inferConv2DShape(EmitErrorFn emitError, ShapeRef input,
                                        ShapeRef weight,
                                        llvm::Optional<ShapeRef> bias,
                                        const WindowSpec &window);
/// Symmetric padding, no dilation.
mlir::FailureOr<Shape> inferConv2DShape(EmitErrorFn emitError, ShapeRef input,
                                        ShapeRef weight,
                                        llvm::Optional<ShapeRef> bias,
                                        ShapeRef stride, ShapeRef padding);

/// `channels` is the layer's num_features, or None where the op has no state
/// to tell it (affine=false and track_running_stats=false).
mlir::FailureOr<Shape> inferBatchNormShape(EmitErrorFn emitError,
                                           ShapeRef input,
                                           llvm::Optional<int64_t> channels);

mlir::FailureOr<Shape> inferPool2DShape(EmitErrorFn emitError,
                                        llvm::StringRef opName, ShapeRef input,
                                        ShapeRef kernelSize,
                                        const WindowSpec &window);
/// No padding, no dilation, floor mode.
mlir::FailureOr<Shape> inferPool2DShape(EmitErrorFn emitError,
                                        llvm::StringRef opName, ShapeRef input,
                                        ShapeRef kernelSize, ShapeRef stride);

/// softmax and log_softmax over dimension `dim` of the input: the
/// dimension, non-negative. With `allowNegative` (the DSL, PyTorch's rule) a
/// negative `dim` counts from the end; the ops' `axis` is non-negative.
/// `attrName` is how the error names it ("dim", "axis").
mlir::FailureOr<int64_t> normalizeDim(EmitErrorFn emitError,
                                      llvm::StringRef opName,
                                      llvm::StringRef attrName, ShapeRef input,
                                      int64_t dim, bool allowNegative);

mlir::FailureOr<Shape> inferFlattenShape(EmitErrorFn emitError, ShapeRef input,
                                         int64_t startDim, int64_t endDim);

/// Element-wise ops of two operands: no broadcasting, shapes must agree.
mlir::FailureOr<Shape> inferAddShape(EmitErrorFn emitError, ShapeRef lhs,
                                     ShapeRef rhs);

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_IR_SHAPEINFERENCE_H

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
                                        ShapeRef kernelSize, ShapeRef stride);

mlir::FailureOr<Shape> inferFlattenShape(EmitErrorFn emitError, ShapeRef input,
                                         int64_t startDim, int64_t endDim);

/// Element-wise ops of two operands: no broadcasting, shapes must agree.
mlir::FailureOr<Shape> inferAddShape(EmitErrorFn emitError, ShapeRef lhs,
                                     ShapeRef rhs);

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_IR_SHAPEINFERENCE_H

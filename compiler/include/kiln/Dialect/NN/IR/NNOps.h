//===- NNOps.h - operations of the nn dialect -------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_IR_NNOPS_H
#define KILN_DIALECT_NN_IR_NNOPS_H

#include "kiln/Dialect/NN/IR/NNDialect.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/Dialect/NN/IR/NNOpsEnums.h.inc"

#define GET_OP_CLASSES
#include "kiln/Dialect/NN/IR/NNOps.h.inc"

namespace kiln::nn {

/// The window attributes (`stride`, `padding`, `padding_end`, `dilation`,
/// `ceil_mode`) of a windowed op (nn.conv2d, the pools and their
/// gradients), as they are: absent ones empty (WindowSpec's defaults),
/// pairs not checked.
WindowSpec windowOf(mlir::Operation *op);

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_IR_NNOPS_H

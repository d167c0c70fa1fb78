//===- NNOps.h - operations of the nn dialect -------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_IR_NNOPS_H
#define KILN_DIALECT_NN_IR_NNOPS_H

#include "kiln/Dialect/NN/IR/NNDialect.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/Dialect/NN/IR/NNOpsEnums.h.inc"

#define GET_OP_CLASSES
#include "kiln/Dialect/NN/IR/NNOps.h.inc"

#endif // KILN_DIALECT_NN_IR_NNOPS_H

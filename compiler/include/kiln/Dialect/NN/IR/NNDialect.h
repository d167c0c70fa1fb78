//===- NNDialect.h - the nn dialect -----------------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_IR_NNDIALECT_H
#define KILN_DIALECT_NN_IR_NNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "kiln/Dialect/NN/IR/NNOpsDialect.h.inc"

#endif // KILN_DIALECT_NN_IR_NNDIALECT_H

//===- Passes.h - passes over the nn dialect --------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_TRANSFORMS_PASSES_H
#define KILN_DIALECT_NN_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace kiln::nn {

std::unique_ptr<mlir::Pass> createFoldBatchNormPass();
std::unique_ptr<mlir::Pass> createFuseActivationsPass();

#define GEN_PASS_REGISTRATION
#include "kiln/Dialect/NN/Transforms/Passes.h.inc"

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_TRANSFORMS_PASSES_H

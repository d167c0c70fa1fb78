//===- Utils.h - questions passes ask of nn IR ------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_IR_UTILS_H
#define KILN_DIALECT_NN_IR_UTILS_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"

#include <string>

namespace kiln::nn {

/// The bound value of a parameter, buffer or constant; null if `value` is
/// not produced by one, or is unbound.
mlir::DenseElementsAttr getBoundValue(mlir::Value value);

/// The layer name (state_dict prefix such as "fc1" or "layers.0") carried
/// by an op's location, or "" for a functional op.
std::string layerNameOf(mlir::Operation *op);

/// "'fc1' (linear)" or "linear": how a diagnostic names an op.
std::string describeLayer(mlir::Operation *op);

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_IR_UTILS_H

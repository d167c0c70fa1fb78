//===- Summary.h - what `kilnc check` prints --------------------*- C++ -*-===//
#ifndef KILN_DRIVER_SUMMARY_H
#define KILN_DRIVER_SUMMARY_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln {

/// One row per layer op: name, op, output shape, parameters, FLOPs/sample;
/// then totals (trainable parameters as PyTorch counts them, buffers, FLOPs).
/// Counts are checked: one past int64 is an error at its layer, and nothing
/// is printed.
mlir::LogicalResult printSummary(mlir::ModuleOp module, llvm::raw_ostream &os);

/// The state_dict in order: `<key> <parameter|buffer> <f32|i64> [dims]`,
/// then `parameters <count>` (trainable elements, as model.parameters()).
/// A parameter count past int64 is an error at the tensor.
mlir::LogicalResult printStateDict(mlir::ModuleOp module, llvm::raw_ostream &os);

/// The forward graph for Graphviz: one node per layer with its output shape.
void printDot(mlir::ModuleOp module, llvm::raw_ostream &os);

} // namespace kiln

#endif // KILN_DRIVER_SUMMARY_H

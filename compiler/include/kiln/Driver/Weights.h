//===- Weights.h - binding a checkpoint to a model's parameters -*- C++ -*-===//
#ifndef KILN_DRIVER_WEIGHTS_H
#define KILN_DRIVER_WEIGHTS_H

#include "mlir/IR/BuiltinOps.h"

namespace kiln {

/// Reads the safetensors file at `path` and sets every nn.param / nn.buffer
/// `value` from the tensor of the same state_dict key. Every parameter must
/// be present with its shape; a key the model does not have is an error, or
/// a warning with `allowExtraKeys`. Errors name the file and the tensor and
/// are all reported; on failure nothing is bound.
/// Values are checked too: NaN or Inf in any float tensor, or a negative
/// BatchNorm running variance, is an error naming the file, the tensor and
/// the first bad element (a warning with `allowNonfinite`).
mlir::LogicalResult bindWeights(mlir::ModuleOp module, llvm::StringRef path,
                                bool allowExtraKeys, bool allowNonfinite = false);

} // namespace kiln

#endif // KILN_DRIVER_WEIGHTS_H

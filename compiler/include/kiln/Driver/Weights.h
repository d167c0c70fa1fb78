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
mlir::LogicalResult bindWeights(mlir::ModuleOp module, llvm::StringRef path,
                                bool allowExtraKeys);

} // namespace kiln

#endif // KILN_DRIVER_WEIGHTS_H

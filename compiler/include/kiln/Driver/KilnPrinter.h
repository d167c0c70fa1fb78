//===- KilnPrinter.h - an nn module as a Kiln DSL model ---------*- C++ -*-===//
//
// `kilnc emit --emit=kiln`: an imported model (ONNX) printed as DSL source
// that reads, edits and trains like a hand-written model, with its
// initializers written beside it (--weights-out) under the printed model's
// state_dict keys.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_KILNPRINTER_H
#define KILN_DRIVER_KILNPRINTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace kiln {

/// Prints `module` (as imported: before BatchNorm folding) as a DSL model.
/// Layers whose state_dict keys are `name.weight`, ... keep them; runs of
/// layers keyed `name.0.*`, `name.1.*`, ... become `name = sequential {...}`
/// with the stateless layers between them, as PyTorch's nn.Sequential
/// numbers them, so the printed model's state_dict is the original's. State
/// keyed otherwise (an exporter's `onnx::Conv_52`) gets a layer named after
/// the key, made an identifier. Ops the DSL cannot spell (asymmetric
/// padding, a fused activation) are errors at the op.
mlir::LogicalResult printKilnModel(mlir::ModuleOp module, llvm::raw_ostream &os);

/// Writes every state tensor's bound value (an ONNX model's initializers)
/// to the safetensors file `path`, under the keys printKilnModel gives
/// them. Errors (a state without a value, an unwritable path) are reported
/// at the module.
mlir::LogicalResult writeKilnWeights(mlir::ModuleOp module, const std::string &path);

} // namespace kiln

#endif // KILN_DRIVER_KILNPRINTER_H

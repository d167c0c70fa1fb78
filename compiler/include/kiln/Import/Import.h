//===- Import.h - AST to nn dialect -----------------------------*- C++ -*-===//
#ifndef KILN_IMPORT_IMPORT_H
#define KILN_IMPORT_IMPORT_H

#include "kiln/Frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln {

/// Builds `module attributes {kiln.model = "..."} { func @forward ... }` from
/// a checked model. Parameters come first, in state_dict order; each layer
/// call becomes nn ops located at the call (a NameLoc with the layer's
/// state_dict prefix around the file:line:col). Shape errors are reported
/// at the call with a note at the layer's declaration; all independent ones
/// are reported. Returns null on error.
mlir::OwningOpRef<mlir::ModuleOp> importModel(const ast::Model &model,
                                              FrontendDiagnostics &diags);

/// The attribute names the importer puts on the module.
constexpr llvm::StringLiteral kModelNameAttr = "kiln.model";
constexpr llvm::StringLiteral kTrainConfigAttr = "kiln.train";
constexpr llvm::StringLiteral kForwardFunc = "forward";

} // namespace kiln

#endif // KILN_IMPORT_IMPORT_H

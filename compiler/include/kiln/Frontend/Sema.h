//===- Sema.h - semantic checks of a parsed model ---------------*- C++ -*-===//
//
// Resolves names and constructor arguments (PyTorch's parameter names and
// defaults) and checks values. Shapes are checked later, by the importer,
// with the nn dialect's shape rules.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_SEMA_H
#define KILN_FRONTEND_SEMA_H

#include "kiln/Frontend/AST.h"

#include "mlir/Support/LogicalResult.h"

namespace kiln {

/// Fills LayerDecl::attrs and Model::trainConfig; reports every error found.
mlir::LogicalResult checkModel(ast::Model &model, FrontendDiagnostics &diags);

/// Whether `name` is a functional op usable in the forward section without
/// a declaration (relu, sigmoid, tanh, flatten, softmax, log_softmax).
bool isFunctional(llvm::StringRef name);

} // namespace kiln

#endif // KILN_FRONTEND_SEMA_H

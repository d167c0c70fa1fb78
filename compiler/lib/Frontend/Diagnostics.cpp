//===- Diagnostics.cpp - frontend errors through MLIR's engine ------------===//
#include "kiln/Frontend/Diagnostics.h"

#include "mlir/IR/BuiltinAttributes.h"

namespace kiln {

FrontendDiagnostics::FrontendDiagnostics(mlir::MLIRContext *context,
                                         llvm::StringRef filename)
    : context(context), filename(mlir::StringAttr::get(context, filename)) {}

mlir::Location FrontendDiagnostics::location(SourceLoc loc) const {
  return mlir::FileLineColLoc::get(filename, loc.line, loc.column);
}

mlir::InFlightDiagnostic FrontendDiagnostics::error(SourceLoc loc) {
  ++errors;
  return mlir::emitError(location(loc));
}

mlir::InFlightDiagnostic FrontendDiagnostics::warning(SourceLoc loc) {
  return mlir::emitWarning(location(loc));
}

} // namespace kiln

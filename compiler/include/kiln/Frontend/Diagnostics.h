//===- Diagnostics.h - frontend errors through MLIR's engine ----*- C++ -*-===//
//
// The frontend reports through MLIR's diagnostic engine, so DSL errors print
// like the rest of the compiler's (`file:line:col: error: ...`, the source
// line and a caret) and `.kiln` files can be tested with -verify-diagnostics.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_DIAGNOSTICS_H
#define KILN_FRONTEND_DIAGNOSTICS_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"

namespace kiln {

/// A position in a source file: 1-based line and byte column.
struct SourceLoc {
  unsigned line = 0;
  unsigned column = 0;
};

class FrontendDiagnostics {
public:
  /// After this many errors the frontend stops: a binary file fed to kilnc
  /// would otherwise print one error per byte.
  static constexpr unsigned kMaxErrors = 20;

  FrontendDiagnostics(mlir::MLIRContext *context, llvm::StringRef filename);

  mlir::Location location(SourceLoc loc) const;
  mlir::InFlightDiagnostic error(SourceLoc loc);
  mlir::InFlightDiagnostic warning(SourceLoc loc);

  unsigned errorCount() const { return errors; }
  bool tooManyErrors() const { return errors >= kMaxErrors; }
  mlir::MLIRContext *getContext() const { return context; }

private:
  mlir::MLIRContext *context;
  mlir::StringAttr filename;
  unsigned errors = 0;
};

} // namespace kiln

#endif // KILN_FRONTEND_DIAGNOSTICS_H

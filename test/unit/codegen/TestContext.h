//===- TestContext.h - an MLIR context for the code generation tests -*- C++ -*-===//
#ifndef KILN_TEST_UNIT_CODEGEN_TESTCONTEXT_H
#define KILN_TEST_UNIT_CODEGEN_TESTCONTEXT_H

#include "kiln/Driver/Driver.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>
#include <string>

namespace kiln::test {

/// An MLIR context with Kiln's dialects that collects its diagnostics.
struct Context {
  mlir::MLIRContext context;
  std::string diagnostics;
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;

  Context() {
    mlir::DialectRegistry registry;
    kiln::registerKilnDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    handler = std::make_unique<mlir::ScopedDiagnosticHandler>(&context, [&](mlir::Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return mlir::success();
    });
  }
};

} // namespace kiln::test

#endif // KILN_TEST_UNIT_CODEGEN_TESTCONTEXT_H

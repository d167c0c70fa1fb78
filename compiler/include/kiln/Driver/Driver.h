//===- Driver.h - Kiln's pipelines, assembled in one place ------*- C++ -*-===//
#ifndef KILN_DRIVER_DRIVER_H
#define KILN_DRIVER_DRIVER_H

#include "kiln/Frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>

namespace kiln {

/// Registers every dialect a Kiln module may hold.
void registerKilnDialects(mlir::DialectRegistry &registry);

/// Registers every nn pass (for kiln-opt).
void registerKilnPasses();

/// Source files larger than this are refused before lexing.
constexpr uint64_t kMaxSourceBytes = 64ull << 20;

/// Reads `path` ("-" for stdin) into `sourceMgr`, so diagnostics can quote
/// its lines. Reports an error naming the file on failure.
mlir::LogicalResult readSource(llvm::StringRef path, llvm::SourceMgr &sourceMgr,
                               mlir::MLIRContext *context);

/// Parses and checks the main buffer of `sourceMgr`. Null on error (reported).
std::unique_ptr<ast::Model> parseAndCheck(llvm::SourceMgr &sourceMgr,
                                          mlir::MLIRContext *context);

/// Parse, check and import to the nn dialect, then verify. Null on error.
mlir::OwningOpRef<mlir::ModuleOp> loadModel(llvm::SourceMgr &sourceMgr,
                                            mlir::MLIRContext *context);

} // namespace kiln

#endif // KILN_DRIVER_DRIVER_H

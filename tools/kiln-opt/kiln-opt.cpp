//===- kiln-opt.cpp - the mlir-opt of Kiln --------------------------------===//
//
// Parses nn-dialect IR, runs passes and prints the result; with
// -verify-diagnostics it checks expected-error annotations (lit tests).
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Driver.h"

#include "mlir/IR/Dialect.h"
#include "mlir/Support/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"

static void printVersion(llvm::raw_ostream &os) {
  os << "kiln-opt (Kiln) " KILN_VERSION "\n  built on LLVM/MLIR " LLVM_VERSION_STRING "\n";
}

int main(int argc, char **argv) {
  mlir::registerTransformsPasses(); // canonicalize, cse, ...
  kiln::registerKilnPasses();
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  llvm::cl::SetVersionPrinter(printVersion);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "Kiln optimizer driver (nn dialect)\n", registry,
      /*preloadDialectsInContext=*/false));
}

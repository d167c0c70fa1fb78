//===- ONNXFuzzer.cpp - libFuzzer target for the ONNX importer ------------===//
//
// Feeds each input to kiln::importONNXModel as the bytes of a model file, as
// `kilnc check model.onnx` does (protobuf parsing, the tensors' claims,
// onnx::checker, shape inference, the import itself). Besides what the
// sanitizers catch, it aborts when
//   1. the import fails without reporting an error (errors as values);
//   2. the import succeeds but reported an error, or its module does not
//      verify;
//   3. a diagnostic says "internal error".
// The model's path lies in a directory that does not exist, so external
// data never reads a real file.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Driver.h"
#include "kiln/Import/ONNXImport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    kiln::registerKilnDialects(registry);
    auto *ctx = new mlir::MLIRContext(registry);
    ctx->loadAllAvailableDialects();
    return ctx;
  }();
  unsigned errors = 0;
  bool internal = false;
  std::string messages;
  mlir::ScopedDiagnosticHandler handler(context, [&](mlir::Diagnostic &diag) {
    if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
      ++errors;
    std::string text = diag.str();
    // Kiln's own internal errors begin so (a tensor may be named anything).
    internal |= llvm::StringRef(text).startswith("internal error");
    if (messages.size() < 4096)
      messages += text + "\n";
    return mlir::success();
  });
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::importONNXModel(bytes, "/nonexistent-kiln-fuzz-dir/fuzz.onnx", context);
  bool verified = module && succeeded(mlir::verify(*module));
  if ((!module && errors == 0) || (module && errors) || (module && !verified) || internal) {
    llvm::errs() << "ONNX fuzzer property violated: module=" << (module ? "yes" : "no")
                 << " errors=" << errors << " verified=" << verified << "\n"
                 << messages;
    std::abort();
  }
  return 0;
}

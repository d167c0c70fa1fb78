//===- Driver.h - Kiln's pipelines, assembled in one place ------*- C++ -*-===//
#ifndef KILN_DRIVER_DRIVER_H
#define KILN_DRIVER_DRIVER_H

#include "kiln/Frontend/AST.h"

#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>

namespace kiln {

/// Registers every dialect a Kiln module may hold.
void registerKilnDialects(mlir::DialectRegistry &registry);

/// Registers every nn pass (for kiln-opt).
void registerKilnPasses();

/// Prints diagnostics at a part of a file that has no lines (an ONNX
/// node: NameLoc("node 'Gemm_3' (Gemm)", "model.onnx":0:0)) as
/// `model.onnx: node 'Gemm_3' (Gemm): error: ...`, notes alike; the others
/// go to the handler registered before it.
class PartOfFileDiagnosticHandler : public mlir::ScopedDiagnosticHandler {
public:
  PartOfFileDiagnosticHandler(mlir::MLIRContext *context, llvm::raw_ostream &os);
};

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

/// Whether every parameter and buffer has a value already (an ONNX model's
/// initializers, or a model without any): it needs no --weights.
bool hasAllStateBound(mlir::ModuleOp module);

/// How `kilnc build` prepares a model for inference code generation.
struct InferenceOptions {
  std::string weightsPath;     // safetensors; required unless externalWeights
  bool externalWeights = false; // weights loaded at run time: nothing to bind
  bool allowExtraKeys = false; // unknown tensors are warnings, not errors
  bool allowNonfinite = false; // NaN/Inf weights, negative variances: warnings
  bool fold = true;            // nn-fold-batchnorm + nn-fuse-activations
  bool report = false;         // a remark per BatchNorm: what became of it
};

/// The inference pipeline on the nn dialect: bind the weights, then fold
/// BatchNorm and fuse activations. Errors are reported; the module is left
/// unusable on failure.
mlir::LogicalResult prepareForInference(mlir::ModuleOp module,
                                        const InferenceOptions &options);

/// The training pipeline on the nn dialect: nn-autodiff adds @train_step
/// (parameters are its arguments: no weights are bound). Errors are
/// reported; the module is left unusable on failure.
mlir::LogicalResult prepareForTraining(mlir::ModuleOp module,
                                       const nn::AutodiffOptions &options);

} // namespace kiln

#endif // KILN_DRIVER_DRIVER_H

//===- Driver.cpp - Kiln's pipelines, assembled in one place --------------===//
#include "kiln/Driver/Driver.h"

#include "kiln/Dialect/NN/IR/NNDialect.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/Frontend/Parser.h"
#include "kiln/Frontend/Sema.h"
#include "kiln/Import/Import.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "kiln/Driver/Weights.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"

namespace kiln {

void registerKilnDialects(mlir::DialectRegistry &registry) {
  registry.insert<nn::NNDialect, mlir::StandardOpsDialect,
                  mlir::arith::ArithmeticDialect>();
}

void registerKilnPasses() { nn::registerNNPasses(); }

mlir::LogicalResult readSource(llvm::StringRef path, llvm::SourceMgr &sourceMgr,
                               mlir::MLIRContext *context) {
  auto location = mlir::FileLineColLoc::get(context, path, 0, 0);
  auto file = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/false,
                                                 /*RequiresNullTerminator=*/false);
  if (std::error_code error = file.getError())
    return mlir::emitError(location)
           << "cannot read '" << path << "': " << error.message();
  if ((*file)->getBufferSize() > kMaxSourceBytes)
    return mlir::emitError(location)
           << "'" << path << "' is " << (*file)->getBufferSize()
           << " bytes; model files are limited to " << kMaxSourceBytes << " bytes";
  // Keep the name the user gave, so diagnostics say what they typed.
  auto named = llvm::MemoryBuffer::getMemBufferCopy((*file)->getBuffer(), path);
  sourceMgr.AddNewSourceBuffer(std::move(named), llvm::SMLoc());
  return mlir::success();
}

std::unique_ptr<ast::Model> parseAndCheck(llvm::SourceMgr &sourceMgr,
                                          mlir::MLIRContext *context) {
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  FrontendDiagnostics diags(context, buffer->getBufferIdentifier());
  std::unique_ptr<ast::Model> model = parseModel(buffer->getBuffer(), diags);
  if (!model || failed(checkModel(*model, diags)))
    return nullptr;
  return model;
}

mlir::OwningOpRef<mlir::ModuleOp> loadModel(llvm::SourceMgr &sourceMgr,
                                            mlir::MLIRContext *context) {
  std::unique_ptr<ast::Model> model = parseAndCheck(sourceMgr, context);
  if (!model)
    return nullptr;
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  FrontendDiagnostics diags(context, buffer->getBufferIdentifier());
  mlir::OwningOpRef<mlir::ModuleOp> module = importModel(*model, diags);
  if (!module)
    return nullptr;
  // The importer checks every shape itself; a verifier failure here is a
  // bug in Kiln, reported as such rather than passed on.
  if (failed(mlir::verify(*module))) {
    mlir::emitError(module->getLoc())
        << "internal error: the imported module does not verify";
    return nullptr;
  }
  return module;
}

mlir::LogicalResult prepareForInference(mlir::ModuleOp module,
                                        const InferenceOptions &options) {
  if (!options.externalWeights &&
      failed(bindWeights(module, options.weightsPath, options.allowExtraKeys,
                         options.allowNonfinite)))
    return mlir::failure();
  if (!options.fold)
    return mlir::success();
  mlir::PassManager pm(module.getContext());
  std::unique_ptr<mlir::Pass> fold = nn::createFoldBatchNormPass();
  if (options.report && failed(fold->initializeOptions("report=true")))
    return mlir::emitError(module.getLoc()) << "internal error: bad pass option";
  pm.addNestedPass<mlir::FuncOp>(std::move(fold));
  pm.addNestedPass<mlir::FuncOp>(nn::createFuseActivationsPass());
  return pm.run(module);
}

} // namespace kiln

//===- Passes.h - passes over the nn dialect --------------------*- C++ -*-===//
#ifndef KILN_DIALECT_NN_TRANSFORMS_PASSES_H
#define KILN_DIALECT_NN_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace kiln::nn {

/// Names nn-autodiff gives what it builds (Passes.td: Autodiff).
constexpr llvm::StringLiteral kTrainStepFunc = "train_step";
constexpr llvm::StringLiteral kStateKeyAttr = "nn.state_key";
constexpr llvm::StringLiteral kBatchAttr = "nn.batch";
constexpr llvm::StringLiteral kMetricAttr = "nn.metric";

/// nn-autodiff's options (the command line over the train section): an
/// empty optimizer or a negative number keeps the train section's.
struct AutodiffOptions {
  std::string optimizer;
  double lr = -1, momentum = -1, weightDecay = -1;
  int64_t seed = -1;
};

/// The seed of a training run (dropout's masks; without a checkpoint, the
/// initial state): `override` where >= 0 (--seed), else the train
/// section's `seed` (the module's kiln.train), else 0.
int64_t trainingSeed(mlir::ModuleOp module, int64_t override);
std::unique_ptr<mlir::Pass> createAutodiffPass();
std::unique_ptr<mlir::Pass> createAutodiffPass(const AutodiffOptions &options);
std::unique_ptr<mlir::Pass> createFoldBatchNormPass();
std::unique_ptr<mlir::Pass> createFuseActivationsPass();

#define GEN_PASS_REGISTRATION
#include "kiln/Dialect/NN/Transforms/Passes.h.inc"

} // namespace kiln::nn

#endif // KILN_DIALECT_NN_TRANSFORMS_PASSES_H

//===- FuseActivations.cpp - activations into their producing layer -------===//
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace kiln::nn {
namespace {

#define GEN_PASS_CLASSES
#include "kiln/Dialect/NN/Transforms/Passes.h.inc"

/// relu(linear(x)) -> linear(x) {activation = "relu"}, and likewise for
/// sigmoid and tanh after linear, conv2d and scale_shift.
template <typename ActivationOp>
struct FuseIntoProducer : OpRewritePattern<ActivationOp> {
  FuseIntoProducer(MLIRContext *context, StringRef activation)
      : OpRewritePattern<ActivationOp>(context), activation(activation) {}

  LogicalResult matchAndRewrite(ActivationOp op,
                                PatternRewriter &rewriter) const override {
    Operation *producer = op.input().getDefiningOp();
    if (!producer || !isa<LinearOp, Conv2DOp, ScaleShiftOp>(producer) ||
        !producer->getResult(0).hasOneUse() || producer->getAttr("activation"))
      return failure();
    rewriter.updateRootInPlace(producer, [&] {
      producer->setAttr("activation", rewriter.getStringAttr(activation));
      producer->setLoc(rewriter.getFusedLoc({producer->getLoc(), op.getLoc()}));
    });
    rewriter.replaceOp(op, producer->getResults());
    return success();
  }

  std::string activation;
};

struct FuseActivationsPass : FuseActivationsBase<FuseActivationsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseIntoProducer<ReluOp>>(&getContext(), "relu");
    patterns.add<FuseIntoProducer<SigmoidOp>>(&getContext(), "sigmoid");
    patterns.add<FuseIntoProducer<TanhOp>>(&getContext(), "tanh");
    if (failed(applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

std::unique_ptr<Pass> createFuseActivationsPass() {
  return std::make_unique<FuseActivationsPass>();
}

} // namespace kiln::nn

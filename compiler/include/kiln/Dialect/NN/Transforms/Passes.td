//===- Passes.td - passes over the nn dialect --------------*- tablegen -*-===//
#ifndef KILN_DIALECT_NN_TRANSFORMS_PASSES_TD
#define KILN_DIALECT_NN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def FoldBatchNorm : Pass<"nn-fold-batchnorm", "mlir::FuncOp"> {
  let summary = "Fold eval-mode BatchNorm into the Linear or Conv2d before it";
  let description = [{
    For inference. Per output channel, with the BatchNorm's statistics and
    the layer's weights bound to values, computed in double precision:

      W' = W · γ / sqrt(var + eps),   b' = (b − mean) · γ / sqrt(var + eps) + β

    (γ = 1 and β = 0 without `affine`; b = 0 for a layer without bias).
    The layer gets new constant weight and bias, located at both the layer
    and the BatchNorm, and the BatchNorm disappears. Without values (weights
    loaded at run time, `kilnc build --weights=external`) the new weight and
    bias are an `nn.fold_batch_norm` of the old ones, the same arithmetic run
    when the weights are loaded.

    A BatchNorm whose input does not come from a Linear or Conv2d (the model
    input, an activation, a pool, a residual add), or whose producer has
    other users, becomes a per-channel `nn.scale_shift`. A BatchNorm without
    running statistics (`track_running_stats=false`) normalizes with batch
    statistics even in eval mode, as PyTorch does, and is kept, as is one in
    training mode. With `report`, every BatchNorm
    gets a remark saying what became of it.
  }];
  let constructor = "kiln::nn::createFoldBatchNormPass()";
  let dependentDialects = ["mlir::arith::ArithmeticDialect"];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per BatchNorm saying what became of it">
  ];
}

def FuseActivations : Pass<"nn-fuse-activations", "mlir::FuncOp"> {
  let summary = "Merge relu, sigmoid and tanh into the layer that produces their input";
  let description = [{
    An element-wise activation whose input is the only use of a Linear,
    Conv2d or scale-and-shift without an activation of its own becomes that
    layer's `activation` attribute, so code generation applies it in the
    layer's store rather than in a pass of its own over memory.
  }];
  let constructor = "kiln::nn::createFuseActivationsPass()";
}

#endif // KILN_DIALECT_NN_TRANSFORMS_PASSES_TD

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

def Autodiff : Pass<"nn-autodiff", "mlir::ModuleOp"> {
  let summary = "Build the training step @train_step from @forward and kiln.train";
  let description = [{
    For training. From `func @forward` and the module's `kiln.train`
    dictionary (the model's train section: `loss`, `optimizer` and its
    hyper-parameters, `seed`), adds `func @train_step`:

      (input [N, ...] f32, labels [N] i64,
       every parameter and buffer in state_dict order,
       the optimizer state of every parameter that gets a gradient
         (`<key>.momentum_buffer` for SGD with momentum; `<key>.exp_avg`,
          `<key>.exp_avg_sq` for Adam and AdamW), `step` (i64))
      -> (loss f32, correct i64, the new value of every state argument, in
          the same order)

    Each state argument and result carries its `nn.state_key` (the
    state_dict key, or the derived optimizer-state name); the batch
    arguments carry `nn.batch` ("input", "labels"), loss and count
    `nn.metric`. The body: the step count incremented (nn.increment, t from
    1), the forward in train mode (BatchNorm expanded into
    nn.batch_norm_stats + nn.batch_norm_normalize, and
    nn.running_stats_update where it tracks running statistics; dropout as
    nn.dropout_mask + nn.mul), nn.cross_entropy, the reverse-mode backward
    with one explicit gradient op per forward op (gradients of a value with
    several uses summed with nn.add), and one optimizer update op per
    parameter. A parameter that nothing in forward uses gets no gradient,
    no optimizer state and no update, as in PyTorch (its grad is None).
    `@forward` is kept as it is (eval mode).

    Options override the train section (kilnc's command line); a negative
    number or an empty string means "from the train section".
  }];
  let constructor = "kiln::nn::createAutodiffPass()";
  let options = [
    Option<"optimizer", "optimizer", "std::string", /*default=*/"\"\"",
           "sgd, adam or adamw instead of the train section's (another "
           "optimizer than the section's starts from PyTorch's defaults)">,
    Option<"lr", "lr", "double", /*default=*/"-1", "Learning rate">,
    Option<"momentum", "momentum", "double", /*default=*/"-1",
           "SGD's momentum">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"-1",
           "Weight decay (L2 for sgd and adam, decoupled for adamw)">,
    Option<"seed", "seed", "int64_t", /*default=*/"-1",
           "The seed of dropout's random stream">
  ];
}

#endif // KILN_DIALECT_NN_TRANSFORMS_PASSES_TD

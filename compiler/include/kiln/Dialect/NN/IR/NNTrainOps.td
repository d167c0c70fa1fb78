//===- NNTrainOps.td - the ops of the training step -------*- tablegen -*-===//
//
// What nn-autodiff builds `@train_step` from: the loss, train-mode
// BatchNorm as explicit statistics / normalization / running-statistics
// ops, one op per gradient, dropout's mask, and the optimizer updates.
// Every formula below is PyTorch 1.13's (the reference of the fixtures in
// test/fixtures/train); code generation implements exactly what is written
// here. Shapes: `N` is the batch (may be dynamic), `C` the channels (dim 1)
// or classes. All f32 unless said otherwise; the optimizer's and the
// running statistics' scalar arithmetic (bias corrections, momentum,
// n/(n−1)) is in double, rounded to f32 where it meets a tensor, as
// PyTorch's Python-float scalars are.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DIALECT_NN_IR_NNTRAINOPS_TD
#define KILN_DIALECT_NN_IR_NNTRAINOPS_TD

include "kiln/Dialect/NN/IR/NNBase.td"

def NN_Labels : 1DTensorOf<[I64]>;
def NN_F32Scalar : 0DTensorOf<[F32]>;
def NN_I64Scalar : 0DTensorOf<[I64]>;

// Training-step ops compute values and touch no state (a new state value is
// a result; the entry point's caller stores it back in place). Each verifies
// its shapes in `verifyTrain` (NNTrainOps.cpp).
class NN_TrainOp<string mnemonic, list<Trait> traits = []>
    : NN_Op<mnemonic, !listconcat(traits, [NoSideEffect])> {
  let verifier = [{ return verifyTrain(); }];
  let extraClassDeclaration = [{ ::mlir::LogicalResult verifyTrain(); }];
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def NN_CrossEntropyOp : NN_TrainOp<"cross_entropy"> {
  let summary = "mean cross-entropy of logits against class labels, and the correct count";
  let description = [{
    `logits` is `[N, C]`, `labels` `[N]` (class indices in [0, C)).
    `torch.nn.functional.cross_entropy(logits, labels)` with reduction
    `mean`: log-softmax + NLL,

      loss = (1/N) Σ_i (m_i + log Σ_c exp(logits[i, c] − m_i) − logits[i, labels[i]]),
      m_i = max_c logits[i, c]

    (the max is subtracted so that logits of ±1e4 neither overflow nor lose
    the answer). `correct` counts the rows whose argmax is the label, the
    argmax being the FIRST maximum on ties (torch.argmax). A NaN logit
    makes its row's loss NaN. A label outside [0, C) is the caller's
    check (the runtime's, as PyTorch's "Target out of bounds"); the op's
    value is then undefined.

    ```mlir
    %loss, %correct = nn.cross_entropy %logits, %labels : (tensor<?x10xf32>, tensor<?xi64>) -> (tensor<f32>, tensor<i64>)
    ```
  }];
  let arguments = (ins NN_Tensor:$logits, NN_Labels:$labels);
  let results = (outs NN_F32Scalar:$loss, NN_I64Scalar:$correct);
  let assemblyFormat = "$logits `,` $labels attr-dict `:` functional-type(operands, results)";
}

def NN_CrossEntropyGradOp : NN_TrainOp<"cross_entropy_grad"> {
  let summary = "d(mean cross-entropy)/d logits: (softmax − onehot) / N";
  let description = [{
    The gradient of nn.cross_entropy's `loss` (seeded with 1, as
    `loss.backward()`): `dlogits[i, c] = (softmax(logits[i])[c] − [c ==
    labels[i]]) / N`, with softmax computed as exp(logits − m_i) / Σ
    (stable for ±1e4). Same type as `logits`.

    ```mlir
    %dlogits = nn.cross_entropy_grad %logits, %labels : (tensor<?x10xf32>, tensor<?xi64>) -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$logits, NN_Labels:$labels);
  let results = (outs NN_Tensor:$logits_grad);
  let assemblyFormat = "$logits `,` $labels attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Train-mode BatchNorm
//===----------------------------------------------------------------------===//

def NN_BatchNormStatsOp : NN_TrainOp<"batch_norm_stats"> {
  let summary = "per-channel batch mean and biased variance (train-mode BatchNorm)";
  let description = [{
    For an input `[N, C]`, `[N, C, L]` or `[N, C, H, W]`, per channel c over
    its n = N (·L, ·H·W) values: `mean[c] = Σ x / n`, `var[c] = Σ (x −
    mean[c])² / n` (BIASED, the variance train-mode BatchNorm normalizes
    with). The value is that of the two-pass formula; a lowering may use
    another form only if it keeps 1e-4 parity for channel means of 1e4.

    n = 1 is PyTorch's error "expected more than 1 value per channel when
    training": the verifier rejects a static n of 1 (BatchNorm1d with a
    static batch of 1; BatchNorm2d with one image has n = H·W and is
    fine). With a dynamic batch and nothing else per channel (BatchNorm1d
    on `[?, C]`), a batch of 1 must be refused by the caller (the runtime)
    before the step runs.

    ```mlir
    %mean, %var = nn.batch_norm_stats %x : (tensor<?x6x4x4xf32>) -> (tensor<6xf32>, tensor<6xf32>)
    ```
  }];
  let arguments = (ins NN_Tensor:$input);
  let results = (outs NN_Tensor:$mean, NN_Tensor:$var);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def NN_BatchNormNormalizeOp
    : NN_TrainOp<"batch_norm_normalize", [AttrSizedOperandSegments]> {
  let summary = "y = (x − mean[c]) · invstd[c] · weight[c] + bias[c]";
  let description = [{
    Train-mode BatchNorm's output from the batch statistics of
    nn.batch_norm_stats: `invstd[c] = 1 / sqrt(var[c] + eps)`, `y = (x −
    mean[c]) · invstd[c]`, times `weight[c]` plus `bias[c]` when affine
    (both or neither). Same type as `input`.

    ```mlir
    %y = nn.batch_norm_normalize %x, %mean, %var weight %g bias %b {eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_Tensor:$mean, NN_Tensor:$var,
                       Optional<NN_Tensor>:$weight, Optional<NN_Tensor>:$bias,
                       F64Attr:$eps);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $mean `,` $var (`weight` $weight^)? (`bias` $bias^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def NN_BatchNormGradOp : NN_TrainOp<"batch_norm_grad"> {
  let summary = "train-mode BatchNorm's backward, closed form";
  let description = [{
    With the forward's batch statistics (`mean`, biased `var`),
    `invstd = 1 / sqrt(var + eps)`, `x̂ = (x − mean) · invstd`, γ = `weight`
    (1 without it), and means and sums per channel over its n values:

      input_grad  = γ · invstd · (dy − mean(dy) − x̂ · mean(dy · x̂))
      weight_grad = Σ dy · x̂        ([C])
      bias_grad   = Σ dy            ([C])

    (`torch.ops.aten.native_batch_norm_backward` in training mode).
    `weight_grad` and `bias_grad` are results even without affine, when
    nothing uses them.

    ```mlir
    %dx, %dg, %db = nn.batch_norm_grad %dy, %x, %mean, %var weight %g {eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>)
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$input,
                       NN_Tensor:$mean, NN_Tensor:$var,
                       Optional<NN_Tensor>:$weight, F64Attr:$eps);
  let results = (outs NN_Tensor:$input_grad, NN_Tensor:$weight_grad,
                      NN_Tensor:$bias_grad);
  let assemblyFormat = [{
    $output_grad `,` $input `,` $mean `,` $var (`weight` $weight^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def NN_RunningStatsUpdateOp : NN_TrainOp<"running_stats_update"> {
  let summary = "BatchNorm's running statistics after one training step";
  let description = [{
    `input` is the BatchNorm's input (only its shape is read: n, the values
    per channel, is N (·L, ·H·W) at run time); `mean` and `var` are the
    batch statistics of nn.batch_norm_stats (biased). As PyTorch:

      num_batches_tracked' = num_batches_tracked + 1
      m = momentum, or 1 / num_batches_tracked' without `momentum`
          (momentum=None: the cumulative average), in double
      running_mean' = (1 − m) · running_mean + m · mean
      running_var'  = (1 − m) · running_var  + m · var · n / (n − 1)

    (the unbiased variance; n > 1 as nn.batch_norm_stats requires).

    ```mlir
    %rm2, %rv2, %n2 = nn.running_stats_update %x, %mean, %var, %rm, %rv, %n {momentum = 1.0e-01 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<i64>) -> (tensor<16xf32>, tensor<16xf32>, tensor<i64>)
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_Tensor:$mean, NN_Tensor:$var,
                       NN_Tensor:$running_mean, NN_Tensor:$running_var,
                       NN_I64Scalar:$num_batches_tracked,
                       OptionalAttr<F64Attr>:$momentum);
  let results = (outs NN_Tensor:$new_running_mean, NN_Tensor:$new_running_var,
                      NN_I64Scalar:$new_num_batches_tracked);
  let assemblyFormat = [{
    $input `,` $mean `,` $var `,` $running_mean `,` $running_var `,`
    $num_batches_tracked attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Gradients of the layers
//===----------------------------------------------------------------------===//

def NN_LinearGradInputOp : NN_TrainOp<"linear_grad_input"> {
  let summary = "dX = dY · W (the input gradient of nn.linear)";
  let description = [{
    `output_grad` is `[*, out]`, `weight` `[out, in]`; the result is
    `[*, in]` (the leading dimensions of `output_grad`).

    ```mlir
    %dx = nn.linear_grad_input %dy, %w : (tensor<?x10xf32>, tensor<10x128xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$weight);
  let results = (outs NN_Tensor:$input_grad);
  let assemblyFormat = "$output_grad `,` $weight attr-dict `:` functional-type(operands, results)";
}

def NN_LinearGradWeightOp : NN_TrainOp<"linear_grad_weight"> {
  let summary = "dW = dYᵀ · X (the weight gradient of nn.linear)";
  let description = [{
    `output_grad` `[*, out]` and `input` `[*, in]` with the same leading
    dimensions, which are all summed over (a `[N, C, L]` input to a linear
    layer sums over N and C): `dW[o, i] = Σ_rows dY[row, o] · X[row, i]`,
    `[out, in]`.

    ```mlir
    %dw = nn.linear_grad_weight %dy, %x : (tensor<?x10xf32>, tensor<?x128xf32>) -> tensor<10x128xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$input);
  let results = (outs NN_Tensor:$weight_grad);
  let assemblyFormat = "$output_grad `,` $input attr-dict `:` functional-type(operands, results)";
}

def NN_LinearGradBiasOp : NN_TrainOp<"linear_grad_bias"> {
  let summary = "db = Σ dY over every dimension but the last";
  let description = [{
    ```mlir
    %db = nn.linear_grad_bias %dy : (tensor<?x10xf32>) -> tensor<10xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad);
  let results = (outs NN_Tensor:$bias_grad);
  let assemblyFormat = "$output_grad attr-dict `:` functional-type(operands, results)";
}

// conv2d's gradients take the forward's window (stride, padding,
// padding_end, dilation; the last two optional as on nn.conv2d).
class NN_Conv2DGradOp<string mnemonic> : NN_TrainOp<mnemonic> {
  let extraClassDeclaration = [{
    ::mlir::LogicalResult verifyTrain();
    /// The forward's window (WindowSpec's accessors apply the defaults).
    ::kiln::nn::WindowSpec window();
  }];
}

def NN_Conv2DGradInputOp : NN_Conv2DGradOp<"conv2d_grad_input"> {
  let summary = "the input gradient of nn.conv2d (a transposed convolution)";
  let description = [{
    `output_grad` `[N, O, OH, OW]`, `weight` `[O, I, KH, KW]`, the forward's
    `stride`, `padding`, `padding_end` and `dilation`; the result is the
    forward input's type `[N, I, H, W]` (it cannot be inferred: with a
    stride several H give one OH). `dX[n, i, h, w] = Σ_{o, kh, kw} dY[n, o,
    oh, ow] · W[o, i, kh, kw]` over `oh·sh − ph + kh·dh = h`, `ow·sw − pw +
    kw·dw = w` (ph, pw the begin padding; the end padding only decides OH
    and OW); input rows and columns no window reads (the last ones, when
    (H + pads − dilated K) is not a multiple of the stride) get 0.

    ```mlir
    %dx = nn.conv2d_grad_input %dy, %w {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<4x2x3x3xf32>) -> tensor<?x2x10x10xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$weight,
                       I64ArrayAttr:$stride, I64ArrayAttr:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       OptionalAttr<I64ArrayAttr>:$dilation);
  let results = (outs NN_Tensor:$input_grad);
  let assemblyFormat = "$output_grad `,` $weight attr-dict `:` functional-type(operands, results)";
}

def NN_Conv2DGradWeightOp : NN_Conv2DGradOp<"conv2d_grad_weight"> {
  let summary = "the weight gradient of nn.conv2d";
  let description = [{
    `dW[o, i, kh, kw] = Σ_{n, oh, ow} dY[n, o, oh, ow] · Xpad[n, i, oh·sh +
    kh·dh − ph, ow·sw + kw·dw − pw]` with Xpad the input, zero outside it
    (ph, pw the begin padding). The result is the weight's type `[O, I, KH,
    KW]`.

    ```mlir
    %dw = nn.conv2d_grad_weight %dy, %x {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<?x2x10x10xf32>) -> tensor<4x2x3x3xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$input,
                       I64ArrayAttr:$stride, I64ArrayAttr:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       OptionalAttr<I64ArrayAttr>:$dilation);
  let results = (outs NN_Tensor:$weight_grad);
  let assemblyFormat = "$output_grad `,` $input attr-dict `:` functional-type(operands, results)";
}

def NN_Conv2DGradBiasOp : NN_TrainOp<"conv2d_grad_bias"> {
  let summary = "db[o] = Σ_{n, h, w} dY[n, o, h, w]";
  let description = [{
    ```mlir
    %db = nn.conv2d_grad_bias %dy : (tensor<?x4x5x5xf32>) -> tensor<4xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad);
  let results = (outs NN_Tensor:$bias_grad);
  let assemblyFormat = "$output_grad attr-dict `:` functional-type(operands, results)";
}

// relu, sigmoid, tanh: the gradient from the forward OUTPUT y.
class NN_ActivationGradOp<string mnemonic, string formula>
    : NN_TrainOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = "input gradient of an activation: " # formula;
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$output);
  let results = (outs NN_Tensor:$input_grad);
  let assemblyFormat = "$output_grad `,` $output attr-dict `:` type($input_grad)";
  let verifier = ?;
  let extraClassDeclaration = "";
}

def NN_ReluGradOp : NN_ActivationGradOp<"relu_grad", "y <= 0 ? 0 : dy"> {
  let description = [{
    PyTorch's `threshold_backward(dy, y, 0)` on the forward output y =
    relu(x): 0 where y <= 0 (so 0 at exactly x = 0, a select, not a
    product: a NaN or infinite dy there still gives 0), dy elsewhere; where
    y is NaN (a NaN input, which relu propagates) `y <= 0` is false and dy
    passes.

    ```mlir
    %dx = nn.relu_grad %dy, %y : tensor<?x128xf32>
    ```
  }];
}

def NN_SigmoidGradOp : NN_ActivationGradOp<"sigmoid_grad", "dy · (1 − y) · y"> {
  let description = [{
    PyTorch's `sigmoid_backward(dy, y)` on the forward output: `dy · (1 −
    y) · y`.
  }];
}

def NN_TanhGradOp : NN_ActivationGradOp<"tanh_grad", "dy · (1 − y²)"> {
  let description = [{
    PyTorch's `tanh_backward(dy, y)` on the forward output: `dy · (1 − y·y)`.
  }];
}

// The pools' gradients take the forward's window attributes, as the
// forward op spells them.
class NN_Pool2DGradOp<string mnemonic> : NN_TrainOp<mnemonic> {
  let results = (outs NN_Tensor:$input_grad);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let extraClassDeclaration = [{
    ::mlir::LogicalResult verifyTrain();
    /// The forward's window (WindowSpec's accessors apply the defaults).
    ::kiln::nn::WindowSpec window();
  }];
}

def NN_AvgPool2DGradOp : NN_Pool2DGradOp<"avg_pool2d_grad"> {
  let summary = "input gradient of nn.avg_pool2d";
  let description = [{
    `dX[n, c, h, w] = Σ over the windows (oh, ow) that contain (h, w) of
    dY[n, c, oh, ow] / divisor(oh, ow)` with the forward's `kernel_size`,
    `stride`, `padding`, `padding_end`, `ceil_mode` and
    `count_include_pad`, and nn.avg_pool2d's divisor (KH · KW without
    padding); rows and columns no window covers get 0. The result is the
    forward input's type (it cannot be inferred from dY).

    ```mlir
    %dx = nn.avg_pool2d_grad %dy {kernel_size = [2, 1], stride = [2, 1]} : (tensor<?x6x2x2xf32>) -> tensor<?x6x4x2xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, I64ArrayAttr:$kernel_size,
                       I64ArrayAttr:$stride,
                       OptionalAttr<I64ArrayAttr>:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       UnitAttr:$ceil_mode, UnitAttr:$count_include_pad);
}

def NN_MaxPool2DGradOp : NN_Pool2DGradOp<"max_pool2d_grad"> {
  let summary = "input gradient of nn.max_pool2d: to ONE element per window";
  let description = [{
    Each window's dY goes to exactly one element of the forward `input`:
    the one PyTorch's `max_pool2d_with_indices` returns as the index,
    scanning the window's in-bounds taps (padded taps never win; `dilation`
    apart) in row-major order (kh outer, kw inner), starting from the first
    in-bounds tap and taking a tap when `v > max || isnan(v)`. So on ties
    the FIRST maximum wins, a window of −Inf sends its gradient to its first
    in-bounds tap, and a window with NaNs to its last NaN. A window with no
    in-bounds tap sends nothing. Windows that overlap (stride < kernel)
    accumulate into the elements they share. This rule must be the
    lowering's (not Halide's propagate_adjoints, which sends a tie's
    gradient to both operands).

    ```mlir
    %dx = nn.max_pool2d_grad %dy, %x {kernel_size = [3, 3], stride = [2, 2]} : (tensor<?x4x4x4xf32>, tensor<?x4x10x10xf32>) -> tensor<?x4x10x10xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$input,
                       I64ArrayAttr:$kernel_size, I64ArrayAttr:$stride,
                       OptionalAttr<I64ArrayAttr>:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       OptionalAttr<I64ArrayAttr>:$dilation, UnitAttr:$ceil_mode);
}

// softmax, log_softmax: the gradient from the forward OUTPUT y, along the
// forward's axis.
class NN_SoftmaxFamilyGradOp<string mnemonic, string formula>
    : NN_TrainOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = "input gradient of nn." # !subst("_grad", "", mnemonic) # ": " # formula;
  let arguments = (ins NN_Tensor:$output_grad, NN_Tensor:$output, I64Attr:$axis);
  let results = (outs NN_Tensor:$input_grad);
  let assemblyFormat = "$output_grad `,` $output attr-dict `:` type($input_grad)";
}

def NN_SoftmaxGradOp : NN_SoftmaxFamilyGradOp<"softmax_grad", "y · (dy − Σ_axis dy · y)"> {
  let description = [{
    PyTorch's `_softmax_backward_data(dy, y, axis)` on the forward output
    y = softmax(x): `dx = y · (dy − Σ_axis (dy · y))`, the sum along
    `axis` (broadcast back over it).

    ```mlir
    %dx = nn.softmax_grad %dy, %y {axis = 1 : i64} : tensor<?x10xf32>
    ```
  }];
}

def NN_LogSoftmaxGradOp : NN_SoftmaxFamilyGradOp<"log_softmax_grad", "dy − exp(y) · Σ_axis dy"> {
  let description = [{
    PyTorch's `_log_softmax_backward_data(dy, y, axis)` on the forward
    output y = log_softmax(x): `dx = dy − exp(y) · Σ_axis dy`.

    ```mlir
    %dx = nn.log_softmax_grad %dy, %y {axis = 1 : i64} : tensor<?x10xf32>
    ```
  }];
}

def NN_ReshapeOp : NN_TrainOp<"reshape"> {
  let summary = "the same elements in another shape, row-major (flatten's gradient)";
  let description = [{
    The batch dimension stays dimension 0 (equal, or both dynamic); the
    other dimensions are static with the same product. nn-autodiff uses it
    for the gradient of nn.flatten (the gradient reshaped back to the
    input's shape).

    ```mlir
    %dx = nn.reshape %dy : (tensor<?x784xf32>) -> tensor<?x1x28x28xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def NN_MulOp : NN_TrainOp<"mul", [Commutative, SameOperandsAndResultType]> {
  let summary = "element-wise product of two tensors of one shape";
  let description = [{
    Train-mode dropout is `x · mask` and its gradient `dy · mask`, with the
    mask of nn.dropout_mask.
  }];
  let arguments = (ins NN_Tensor:$lhs, NN_Tensor:$rhs);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($output)";
  let verifier = ?;
  let extraClassDeclaration = "";
}

def NN_DropoutMaskOp : NN_TrainOp<"dropout_mask"> {
  let summary = "train-mode dropout's scaled keep mask, from a counter-based stream";
  let description = [{
    A tensor of `input`'s type (only its shape is read) whose elements are
    0 (dropped) or 1 / (1 − p) (kept). For the element at row-major index
    k of the whole tensor, u = philox4x32_10(key = (seed mod 2^32, seed >>
    32), counter = (k mod 2^32, k >> 32, stream, step mod 2^32)), the
    first 32-bit word's top 24 bits · 2^−24 ∈ [0, 1); the element is kept
    when u >= p. `stream` numbers the dropout layers of the model (0, 1,
    ... in forward order), `step` is the training step (nn.increment's
    result, from 1), so a seed gives the same masks on every thread count
    and target, and each step and layer its own. p = 0 keeps everything.
    PyTorch's masks are not reproduced (parity fixtures have no dropout).

    ```mlir
    %mask = nn.dropout_mask %x, %step {p = 5.0e-01 : f64, seed = 0 : i64, stream = 0 : i64} : (tensor<?x128xf32>, tensor<i64>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_I64Scalar:$step, F64Attr:$p,
                       I64Attr:$seed, I64Attr:$stream);
  let results = (outs NN_Tensor:$mask);
  let assemblyFormat = "$input `,` $step attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Optimizer updates (element-wise; lr etc. as attributes, state as tensors)
//===----------------------------------------------------------------------===//

def NN_IncrementOp : NN_TrainOp<"increment", [SameOperandsAndResultType]> {
  let summary = "an i64 counter plus one (the optimizer's step count)";
  let arguments = (ins NN_I64Scalar:$input);
  let results = (outs NN_I64Scalar:$output);
  let assemblyFormat = "$input attr-dict `:` type($output)";
  let verifier = ?;
  let extraClassDeclaration = "";
}

def NN_SGDUpdateOp : NN_TrainOp<"sgd_update"> {
  let summary = "one torch.optim.SGD step of one parameter";
  let description = [{
    `step` is the step count after this step's increment (1 on the first
    step). As `torch.optim.SGD` (foreach=False, maximize=False):

      g = grad + weight_decay · param                  (when weight_decay ≠ 0)
      with momentum μ > 0 (then `momentum_buffer` is an operand and a result):
        b' = g on the first step (step == 1: the buffer operand is ignored,
             no dampening), else μ · b + (1 − dampening) · g
        g  = g + μ · b' with nesterov, else b'
      param' = param − lr · g

    Without momentum there is no buffer. nesterov needs μ > 0 and
    dampening = 0 (PyTorch's rule).

    ```mlir
    %p2, %b2 = nn.sgd_update %p, %g momentum_buffer %b step %t {dampening = 0.0 : f64, lr = 1.0e-02 : f64, momentum = 9.0e-01 : f64, nesterov = false, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>)
    ```
  }];
  let arguments = (ins NN_Tensor:$param, NN_Tensor:$grad,
                       Optional<NN_Tensor>:$momentum_buffer, NN_I64Scalar:$step,
                       F64Attr:$lr, F64Attr:$momentum, F64Attr:$dampening,
                       F64Attr:$weight_decay, BoolAttr:$nesterov);
  let results = (outs NN_Tensor:$new_param,
                      Optional<NN_Tensor>:$new_momentum_buffer);
  let assemblyFormat = [{
    $param `,` $grad (`momentum_buffer` $momentum_buffer^)? `step` $step
    attr-dict `:` functional-type(operands, results)
  }];
}

class NN_AdamFamilyUpdateOp<string mnemonic, string formulas>
    : NN_TrainOp<mnemonic> {
  let description = [{
    `step` = t, the step count after this step's increment (from 1).
    Per element, with the bias corrections computed in double from t:
  }] # formulas # [{

      m' = β₁ · exp_avg + (1 − β₁) · g
      v' = β₂ · exp_avg_sq + (1 − β₂) · g · g
      bc1 = 1 − β₁ᵗ,  bc2 = 1 − β₂ᵗ  (double)
      param' = param − (lr / bc1) · m' / (sqrt(v') / sqrt(bc2) + eps)

    (the denominator exactly as torch.optim's non-capturable path:
    `(exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)`, then
    `param.addcdiv_(exp_avg, denom, value=-lr/bc1)`; amsgrad and maximize
    are not supported).
  }];
  let arguments = (ins NN_Tensor:$param, NN_Tensor:$grad, NN_Tensor:$exp_avg,
                       NN_Tensor:$exp_avg_sq, NN_I64Scalar:$step,
                       F64Attr:$lr, F64Attr:$beta1, F64Attr:$beta2,
                       F64Attr:$eps, F64Attr:$weight_decay);
  let results = (outs NN_Tensor:$new_param, NN_Tensor:$new_exp_avg,
                      NN_Tensor:$new_exp_avg_sq);
  let assemblyFormat = [{
    $param `,` $grad `,` $exp_avg `,` $exp_avg_sq `step` $step
    attr-dict `:` functional-type(operands, results)
  }];
}

def NN_AdamUpdateOp : NN_AdamFamilyUpdateOp<"adam_update", [{
      g = grad + weight_decay · param     (L2: when weight_decay ≠ 0)
  }]> {
  let summary = "one torch.optim.Adam step of one parameter";
}

def NN_AdamWUpdateOp : NN_AdamFamilyUpdateOp<"adamw_update", [{
      param ← param · (1 − lr · weight_decay)   (decoupled, first), g = grad
  }]> {
  let summary = "one torch.optim.AdamW step of one parameter (decoupled weight decay)";
}

#endif // KILN_DIALECT_NN_IR_NNTRAINOPS_TD

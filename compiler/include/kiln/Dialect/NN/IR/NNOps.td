//===- NNOps.td - operations of the nn dialect ------------*- tablegen -*-===//
//
// One op per layer kind of Kiln's DSL, named and attributed like torch.nn.
// Every layer op checks its result type against the shape the shared shape
// functions (ShapeInference.h) compute, the same functions the importer uses,
// so `kilnc` and `kiln-opt` report shape errors in the same words.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DIALECT_NN_IR_NNOPS_TD
#define KILN_DIALECT_NN_IR_NNOPS_TD

include "kiln/Dialect/NN/IR/NNBase.td"

//===----------------------------------------------------------------------===//
// Parameters and buffers
//===----------------------------------------------------------------------===//

// Not NoSideEffect on purpose: a declared module's state belongs to the
// model's state_dict even when the forward pass does not read it, as in
// PyTorch, so dead-code elimination must not drop it.
class NN_StateOp<string mnemonic> : NN_Op<mnemonic> {
  let arguments = (ins StrAttr:$name, OptionalAttr<ElementsAttr>:$value);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let verifier = [{ return ::kiln::nn::verifyStateOp(*this); }];
}

def NN_ParamOp : NN_StateOp<"param"> {
  let summary = "a trainable parameter, named by its state_dict key";
  let description = [{
    A learnable tensor of the model (PyTorch's `nn.Parameter`): weights and
    biases, BatchNorm's γ (`weight`) and β (`bias`). Unbound until weights are
    loaded; a bound parameter has a `value` of its own type.

    ```mlir
    %w = nn.param "fc1.weight" : tensor<128x784xf32>
    ```
  }];
}

def NN_BufferOp : NN_StateOp<"buffer"> {
  let summary = "a non-trainable buffer, named by its state_dict key";
  let description = [{
    State that is saved with the model but not trained by gradients:
    BatchNorm's `running_mean`, `running_var` and `num_batches_tracked`.

    ```mlir
    %n = nn.buffer "bn1.num_batches_tracked" : tensor<i64>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Layers with parameters
//===----------------------------------------------------------------------===//

def NN_LinearOp : NN_LayerOp<"linear"> {
  let summary = "y = x·Wᵀ + b over the last dimension (torch.nn.Linear)";
  let description = [{
    `weight` is `[out_features, in_features]`, `bias` (optional) is
    `[out_features]`. The input is `[*, in_features]` with at least two
    dimensions, the first being the batch. `activation`, set by
    nn-fuse-activations, applies relu, sigmoid or tanh to the result.

    ```mlir
    %y = nn.linear %x, %w, %b : (tensor<?x784xf32>, tensor<128x784xf32>, tensor<128xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_Tensor:$weight,
                       Optional<NN_Tensor>:$bias,
                       OptionalAttr<NN_ActivationAttr>:$activation);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
}

def NN_Conv2DOp : NN_LayerOp<"conv2d"> {
  let summary = "2-D convolution over NCHW input (torch.nn.Conv2d)";
  let description = [{
    `weight` is `[out_channels, in_channels, kH, kW]`, `bias` (optional)
    `[out_channels]`; `stride` and `padding` are `[h, w]` (zero padding).
    `padding` pads the top and left; `padding_end` (optional, `[bottom,
    right]`) the bottom and right, the same as `padding` when absent (ONNX's
    asymmetric `pads`). `dilation` (optional, `[h, w]`, 1 when absent)
    spaces the kernel's taps. Per output dimension

      out = (in + pad_begin + pad_end − dilation·(k − 1) − 1) / stride + 1

    (floor), at least 1:

      y[n, o, i, j] = b[o] + Σ_{c, ky, kx} w[o, c, ky, kx] ·
                      x[n, c, i·sH + ky·dH − padH, j·sW + kx·dW − padW]

    with x zero outside the input. `activation` as for nn.linear.

    ```mlir
    %y = nn.conv2d %x, %w, %b {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x28x28xf32>, tensor<6x1x5x5xf32>, tensor<6xf32>) -> tensor<?x6x24x24xf32>
    %z = nn.conv2d %x, %w {dilation = [2, 2], padding = [1, 0], padding_end = [2, 1], stride = [1, 1]} : (tensor<?x1x28x28xf32>, tensor<6x1x5x5xf32>) -> tensor<?x6x23x21xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_Tensor:$weight,
                       Optional<NN_Tensor>:$bias,
                       I64ArrayAttr:$stride, I64ArrayAttr:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       OptionalAttr<I64ArrayAttr>:$dilation,
                       OptionalAttr<NN_ActivationAttr>:$activation);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  // Symmetric padding, no dilation: the op as it was before padding_end
  // and dilation (the importers that do not set them build it so).
  let builders = [
    OpBuilder<(ins "::mlir::Type":$output, "::mlir::Value":$input,
                   "::mlir::Value":$weight, "::mlir::Value":$bias,
                   "::mlir::ArrayAttr":$stride, "::mlir::ArrayAttr":$padding,
                   "::mlir::StringAttr":$activation), [{
      build($_builder, $_state, output, input, weight, bias, stride, padding,
            ::mlir::ArrayAttr(), ::mlir::ArrayAttr(), activation);
    }]>
  ];
  let extraClassDeclaration = [{
    /// The window attributes (WindowSpec's accessors apply the defaults).
    ::kiln::nn::WindowSpec window();
  }];
}

def NN_BatchNormOp : NN_LayerOp<"batch_norm", [AttrSizedOperandSegments]> {
  let summary = "batch normalization over dimension 1 (torch.nn.BatchNorm1d/2d)";
  let description = [{
    `y = (x − mean) / sqrt(var + eps) · weight + bias`, per channel (dim 1) of
    a `[N, C]`, `[N, C, L]` or `[N, C, H, W]` input.

    The state is explicit: `weight`/`bias` are present when `affine`;
    `running_mean`, `running_var` and `num_batches_tracked` when
    `track_running_stats`. In eval mode (no `training` attribute) the op
    normalizes with the running statistics, or with the batch statistics when
    there are none (PyTorch does the same). In training mode it normalizes with
    the batch statistics (biased variance), and the training step updates the
    running statistics with `momentum` and the unbiased variance, as PyTorch
    does. Without `momentum` (PyTorch's `momentum=None`) the running
    statistics are the cumulative average (momentum 1 / num_batches_tracked
    after its increment); eval mode reads them the same either way.
    nn-autodiff expands a BatchNorm into the ops of NNTrainOps.td.

    ```mlir
    %y = nn.batch_norm %x weight %g bias %b running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-05 : f64, momentum = 1.0e-01 : f64} : (...) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input,
                       Optional<NN_Tensor>:$weight,
                       Optional<NN_Tensor>:$bias,
                       Optional<NN_Tensor>:$running_mean,
                       Optional<NN_Tensor>:$running_var,
                       Optional<0DTensorOf<[I64]>>:$num_batches_tracked,
                       F64Attr:$eps, OptionalAttr<F64Attr>:$momentum,
                       UnitAttr:$training);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = [{
    $input (`weight` $weight^)? (`bias` $bias^)?
    (`running_mean` $running_mean^)? (`running_var` $running_var^)?
    (`num_batches_tracked` $num_batches_tracked^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    bool isAffine() { return weight() != nullptr; }
    bool tracksRunningStats() { return running_mean() != nullptr; }
  }];
}

def NN_ScaleShiftOp : NN_LayerOp<"scale_shift"> {
  let summary = "y = x · scale[c] + shift[c] over dimension 1";
  let description = [{
    What an eval-mode BatchNorm becomes when there is no Linear or Conv2d
    before it to fold into (on the input, after an activation, a pool or a
    residual add): `scale = γ / sqrt(var + eps)`, `shift = β − mean · scale`.
    `activation` as for nn.linear.

    ```mlir
    %y = nn.scale_shift %x, %scale, %shift : (tensor<?x6x12x12xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<?x6x12x12xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, NN_Tensor:$scale, NN_Tensor:$shift,
                       OptionalAttr<NN_ActivationAttr>:$activation);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = [{
    $input `,` $scale `,` $shift attr-dict `:` functional-type(operands, results)
  }];
}

def NN_FoldBatchNormOp : NN_Op<"fold_batch_norm",
                                [NoSideEffect, AttrSizedOperandSegments]> {
  let summary = "a layer's weight and bias with an eval-mode BatchNorm folded in";
  let description = [{
    What nn-fold-batchnorm leaves when the values are not known at compile
    time (`kilnc build --weights=external`): the folded parameters as a
    computation on the original ones, which code generation runs once when
    the weights are loaded. Per output channel c, in double precision,

      scale = γ / sqrt(var + eps),   shift = β − mean · scale
      weight'[c, ...] = weight[c, ...] · scale[c]
      bias'[c] = bias[c] · scale[c] + shift[c]

    with γ = 1 and β = 0 without `gamma`/`beta` (affine=false) and bias = 0
    without `bias`. Without `weight` the results are `scale` and `shift`
    themselves (the operands of an nn.scale_shift).

    ```mlir
    %w2, %b2 = nn.fold_batch_norm weight %w bias %b running_mean %m running_var %v gamma %g beta %bt {eps = 1.0e-05 : f64} : (tensor<128x784xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128xf32>) -> (tensor<128x784xf32>, tensor<128xf32>)
    ```
  }];
  let arguments = (ins Optional<NN_Tensor>:$weight, Optional<NN_Tensor>:$bias,
                       NN_Tensor:$running_mean, NN_Tensor:$running_var,
                       Optional<NN_Tensor>:$gamma, Optional<NN_Tensor>:$beta,
                       F64Attr:$eps);
  let results = (outs NN_Tensor:$folded_weight, NN_Tensor:$folded_bias);
  let assemblyFormat = [{
    (`weight` $weight^)? (`bias` $bias^)? `running_mean` $running_mean
    `running_var` $running_var (`gamma` $gamma^)? (`beta` $beta^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let verifier = [{ return ::kiln::nn::verifyFoldBatchNorm(*this); }];
}

//===----------------------------------------------------------------------===//
// Element-wise activations
//===----------------------------------------------------------------------===//

def NN_ReluOp : NN_ElementwiseOp<"relu", "max(x, 0) (torch.nn.ReLU)">;
def NN_SigmoidOp : NN_ElementwiseOp<"sigmoid", "1 / (1 + exp(−x)) (torch.nn.Sigmoid)">;
def NN_TanhOp : NN_ElementwiseOp<"tanh", "tanh(x) (torch.nn.Tanh)">;

def NN_AddOp : NN_LayerOp<"add", [Commutative, SameOperandsAndResultType]> {
  let summary = "element-wise sum of two tensors of one shape (residual connections)";
  let arguments = (ins NN_Tensor:$lhs, NN_Tensor:$rhs);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($output)";
  let verifier = ?;
}

def NN_DropoutOp : NN_LayerOp<"dropout"> {
  let summary = "zeroes elements with probability p in training (torch.nn.Dropout)";
  let description = [{
    The identity in eval mode. In training mode each element is zeroed with
    probability `p` and the others scaled by `1 / (1 − p)`.
  }];
  let arguments = (ins NN_Tensor:$input, F64Attr:$p, UnitAttr:$training);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Softmax
//===----------------------------------------------------------------------===//

// softmax, log_softmax: over one dimension, the result of the input's type.
class NN_SoftmaxFamilyOp<string mnemonic, string what>
    : NN_LayerOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = what # " over dimension `axis`";
  let arguments = (ins NN_Tensor:$input, I64Attr:$axis);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def NN_SoftmaxOp : NN_SoftmaxFamilyOp<"softmax", "softmax (torch.nn.Softmax)"> {
  let description = [{
    Along dimension `axis` (in [0, rank), non-negative: the importer counts
    PyTorch's negative dims from the end), as PyTorch's CPU kernel:

      m = max_axis x,   y = exp(x − m) / Σ_axis exp(x − m)

    The max is subtracted, so no finite input overflows. A NaN anywhere
    along the axis makes that whole slice NaN (the max is NaN); so does
    +Inf (inf − inf) and a slice that is all −Inf; a −Inf element among
    finite ones gives 0.

    ```mlir
    %y = nn.softmax %x {axis = 1 : i64} : tensor<?x10xf32>
    ```
  }];
}

def NN_LogSoftmaxOp : NN_SoftmaxFamilyOp<"log_softmax", "log-softmax (torch.nn.LogSoftmax)"> {
  let description = [{
    Along dimension `axis` (as nn.softmax), as PyTorch's CPU kernel:

      m = max_axis x,   y = x − m − log Σ_axis exp(x − m)

    with nn.softmax's rules for NaN and the infinities (a −Inf element among
    finite ones gives −Inf). x − m is an f32 subtraction: FLT_MAX and
    −FLT_MAX on one slice give −Inf, as in PyTorch.

    ```mlir
    %y = nn.log_softmax %x {axis = 1 : i64} : tensor<?x10xf32>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Pooling and reshaping
//===----------------------------------------------------------------------===//

class NN_Pool2DOp<string mnemonic, string what> : NN_LayerOp<mnemonic> {
  let summary = what # " over kernel_size windows of NCHW input";
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  // No padding, no dilation, floor mode: the op without its options.
  let builders = [
    OpBuilder<(ins "::mlir::Type":$output, "::mlir::Value":$input,
                   "::mlir::ArrayAttr":$kernel_size, "::mlir::ArrayAttr":$stride), [{
      $_state.addOperands(input);
      $_state.addAttribute(kernel_sizeAttrName($_state.name), kernel_size);
      $_state.addAttribute(strideAttrName($_state.name), stride);
      $_state.addTypes(output);
    }]>
  ];
  let extraClassDeclaration = [{
    /// The window attributes (WindowSpec's accessors apply the defaults).
    ::kiln::nn::WindowSpec window();
  }];
}

def NN_AvgPool2DOp : NN_Pool2DOp<"avg_pool2d", "mean (torch.nn.AvgPool2d)"> {
  let description = [{
    Windows of `kernel_size` every `stride` (`[h, w]` each). `padding`
    (optional, `[top, left]`, 0 when absent) and `padding_end` (optional,
    `[bottom, right]`, as `padding` when absent) pad with zeros;
    `ceil_mode` rounds the output size up, PyTorch's rule (the last window
    must start inside the input or its begin padding; see ShapeInference.h).
    Per output element, as PyTorch's CPU kernel, with hs = oh·sH − padH,
    he = min(hs + kH, H + padH_end) (ws, we likewise):

      y = Σ of the window's in-bounds elements / divisor
      divisor = (he − hs)·(we − ws)           with `count_include_pad`
                (the window clipped to the padded extent)
              = the number of in-bounds elements   without

    Without padding both divisors agree (a ceil_mode window that overhangs
    the input counts its in-bounds elements either way), so an op without
    these attributes is the plain kH·kW mean. A window with no in-bounds
    element gives 0. NaN and the infinities propagate through the sum.

    ```mlir
    %y = nn.avg_pool2d %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x12x12xf32>
    %z = nn.avg_pool2d %x {ceil_mode, count_include_pad, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x13x13xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, I64ArrayAttr:$kernel_size,
                       I64ArrayAttr:$stride,
                       OptionalAttr<I64ArrayAttr>:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       UnitAttr:$ceil_mode, UnitAttr:$count_include_pad);
}

def NN_MaxPool2DOp : NN_Pool2DOp<"max_pool2d", "maximum (torch.nn.MaxPool2d)"> {
  let description = [{
    Windows of `kernel_size` every `stride`, their taps `dilation` apart
    (optional, 1 when absent); `padding`, `padding_end` and `ceil_mode` as
    for nn.avg_pool2d. Padding is −Inf: padded taps never win. As
    torch.max_pool2d, a NaN in the window wins (the result is NaN); a window
    with no in-bounds tap gives −Inf.

    ```mlir
    %y = nn.max_pool2d %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x12x12xf32>
    %z = nn.max_pool2d %x {ceil_mode, dilation = [2, 2], kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x12x12xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, I64ArrayAttr:$kernel_size,
                       I64ArrayAttr:$stride,
                       OptionalAttr<I64ArrayAttr>:$padding,
                       OptionalAttr<I64ArrayAttr>:$padding_end,
                       OptionalAttr<I64ArrayAttr>:$dilation, UnitAttr:$ceil_mode);
}

def NN_FlattenOp : NN_LayerOp<"flatten"> {
  let summary = "merges dimensions start_dim..end_dim into one (torch.nn.Flatten)";
  let description = [{
    ```mlir
    %y = nn.flatten %x {end_dim = -1 : i64, start_dim = 1 : i64} : (tensor<?x1x28x28xf32>) -> tensor<?x784xf32>
    ```
  }];
  let arguments = (ins NN_Tensor:$input, I64Attr:$start_dim, I64Attr:$end_dim);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

include "kiln/Dialect/NN/IR/NNTrainOps.td"

#endif // KILN_DIALECT_NN_IR_NNOPS_TD

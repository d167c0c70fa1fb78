// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// The verifiers of the training-step ops (NNTrainOps.td).

func @cross_entropy_labels_batch(%l: tensor<8x10xf32>, %y: tensor<7xi64>) {
  // expected-error@+1 {{labels must have the logits' batch dimension: logits [8, 10], labels [7]}}
  %loss, %c = nn.cross_entropy %l, %y : (tensor<8x10xf32>, tensor<7xi64>) -> (tensor<f32>, tensor<i64>)
  return
}

// -----

func @cross_entropy_logits_rank(%l: tensor<?x10x2xf32>, %y: tensor<?xi64>) {
  // expected-error@+1 {{expects logits of shape [N, C], got [N, 10, 2]}}
  %d = nn.cross_entropy_grad %l, %y : (tensor<?x10x2xf32>, tensor<?xi64>) -> tensor<?x10x2xf32>
  return
}

// -----

func @batch_norm1d_static_batch_of_one(%x: tensor<1x16xf32>) {
  // expected-error@+1 {{expected more than 1 value per channel when training, got input shape [1, 16]}}
  %m, %v = nn.batch_norm_stats %x : (tensor<1x16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

// COM: BatchNorm2d with one image has n = H·W values per channel: fine.
func @batch_norm2d_one_image_is_fine(%x: tensor<1x4x2x2xf32>) {
  %m, %v = nn.batch_norm_stats %x : (tensor<1x4x2x2xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func @batch_norm_stats_channels(%x: tensor<?x16xf32>) {
  // expected-error@+1 {{var must be [16], got [8]}}
  %m, %v = nn.batch_norm_stats %x : (tensor<?x16xf32>) -> (tensor<16xf32>, tensor<8xf32>)
  return
}

// -----

func @normalize_affine_needs_both(%x: tensor<?x16xf32>, %m: tensor<16xf32>, %v: tensor<16xf32>) {
  // expected-error@+1 {{needs both weight and bias (affine) or neither}}
  %y = nn.batch_norm_normalize %x, %m, %v weight %m {eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return
}

// -----

func @running_stats_momentum_range(%x: tensor<?x16xf32>, %m: tensor<16xf32>, %n: tensor<i64>) {
  // expected-error@+1 {{momentum must be in [0, 1], got 1.5}}
  %a, %b, %c = nn.running_stats_update %x, %m, %m, %m, %m, %n {momentum = 1.5 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<i64>) -> (tensor<16xf32>, tensor<16xf32>, tensor<i64>)
  return
}

// -----

func @linear_grad_input_shape(%dy: tensor<?x10xf32>, %w: tensor<10x128xf32>) {
  // expected-error@+1 {{input_grad must be [N, 128], got [N, 64]}}
  %dx = nn.linear_grad_input %dy, %w : (tensor<?x10xf32>, tensor<10x128xf32>) -> tensor<?x64xf32>
  return
}

// -----

func @linear_grad_weight_shape(%dy: tensor<?x10xf32>, %x: tensor<?x128xf32>) {
  // expected-error@+1 {{weight_grad must be [10, 128], got [128, 10]}}
  %dw = nn.linear_grad_weight %dy, %x : (tensor<?x10xf32>, tensor<?x128xf32>) -> tensor<128x10xf32>
  return
}

// -----

func @conv2d_grad_input_shape(%dy: tensor<?x4x5x5xf32>, %w: tensor<4x2x3x3xf32>) {
  // COM: a 10x10 input with stride 2 and padding 1 gives 5x5, not 4x4.
  // expected-error@+1 {{output_grad must be [N, 4, 4, 4], got [N, 4, 5, 5]}}
  %dx = nn.conv2d_grad_input %dy, %w {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<4x2x3x3xf32>) -> tensor<?x2x8x8xf32>
  return
}

// -----

func @max_pool_grad_shape(%dy: tensor<?x4x4x4xf32>, %x: tensor<?x4x10x10xf32>) {
  // expected-error@+1 {{output_grad must be [N, 4, 5, 5], got [N, 4, 4, 4]}}
  %dx = nn.max_pool2d_grad %dy, %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x4x4x4xf32>, tensor<?x4x10x10xf32>) -> tensor<?x4x10x10xf32>
  return
}

// -----

func @reshape_elements(%x: tensor<?x64xf32>) {
  // expected-error@+1 {{cannot reshape [N, 64] to [N, 4, 4, 2] (same batch dimension and elements per sample)}}
  %y = nn.reshape %x : (tensor<?x64xf32>) -> tensor<?x4x4x2xf32>
  return
}

// -----

func @dropout_mask_p(%x: tensor<?x64xf32>, %t: tensor<i64>) {
  // expected-error@+1 {{p must be in [0, 1), got 1}}
  %m = nn.dropout_mask %x, %t {p = 1.0 : f64, seed = 0 : i64, stream = 0 : i64} : (tensor<?x64xf32>, tensor<i64>) -> tensor<?x64xf32>
  return
}

// -----

func @sgd_buffer_without_momentum(%p: tensor<10xf32>, %t: tensor<i64>) {
  // expected-error@+1 {{has a momentum_buffer operand and result exactly when momentum > 0}}
  %p2, %b2 = nn.sgd_update %p, %p momentum_buffer %p step %t {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.0 : f64, nesterov = false, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>)
  return
}

// -----

func @sgd_nesterov_dampening(%p: tensor<10xf32>, %t: tensor<i64>) {
  // expected-error@+1 {{nesterov needs momentum > 0 and dampening = 0}}
  %p2, %b2 = nn.sgd_update %p, %p momentum_buffer %p step %t {dampening = 0.5 : f64, lr = 0.1 : f64, momentum = 0.9 : f64, nesterov = true, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>)
  return
}

// -----

func @adam_beta_range(%p: tensor<10xf32>, %t: tensor<i64>) {
  // expected-error@+1 {{beta2 must be in [0, 1), got 1}}
  %a, %b, %c = nn.adam_update %p, %p, %p, %p step %t {beta1 = 0.9 : f64, beta2 = 1.0 : f64, eps = 1.0e-08 : f64, lr = 1.0e-03 : f64, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>)
  return
}

// -----

func @adamw_state_type(%p: tensor<10xf32>, %v: tensor<5xf32>, %t: tensor<i64>) {
  // expected-error@+1 {{gradient and state must have the parameter's type 'tensor<10xf32>'}}
  %a, %b, %c = nn.adamw_update %p, %p, %p, %v step %t {beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, lr = 1.0e-03 : f64, weight_decay = 0.01 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<5xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>)
  return
}

// -----

func @conv2d_grad_input_dilation_shape(%dy: tensor<?x4x6x6xf32>, %w: tensor<4x2x3x3xf32>) {
  // COM: dilation 2 spans 5: an 8x8 input gives 4x4, not 6x6.
  // expected-error@+1 {{output_grad must be [N, 4, 4, 4], got [N, 4, 6, 6]}}
  %dx = nn.conv2d_grad_input %dy, %w {dilation = [2, 2], padding = [0, 0], stride = [1, 1]} : (tensor<?x4x6x6xf32>, tensor<4x2x3x3xf32>) -> tensor<?x2x8x8xf32>
  return
}

// -----

func @avg_pool_grad_ceil_mode_shape(%dy: tensor<?x4x2x2xf32>) {
  // expected-error@+1 {{output_grad must be [N, 4, 3, 3], got [N, 4, 2, 2]}}
  %dx = nn.avg_pool2d_grad %dy {ceil_mode, kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x4x2x2xf32>) -> tensor<?x4x5x5xf32>
  return
}

// -----

func @softmax_grad_axis(%dy: tensor<?x10xf32>, %y: tensor<?x10xf32>) {
  // expected-error@+1 {{softmax_grad axis 2 is out of range for an input of shape [N, 10] (expected in [0, 1])}}
  %dx = nn.softmax_grad %dy, %y {axis = 2 : i64} : tensor<?x10xf32>
  return
}

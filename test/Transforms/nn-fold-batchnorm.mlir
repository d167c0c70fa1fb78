// RUN: kiln-opt %s -split-input-file -nn-fold-batchnorm | FileCheck %s
// RUN: kiln-opt %s -split-input-file -pass-pipeline='builtin.func(nn-fold-batchnorm{report=true})' -verify-diagnostics -o /dev/null

// The BatchNorm in most cases below: eps = 1, var = [3, 0], so
// sqrt(var + eps) = [2, 1]; gamma = [2, 3], beta = [0.5, -1], mean = [1, 2]:
//   scale = gamma / sqrt(var + eps) = [1, 3]
//   shift = beta - mean * scale     = [-0.5, -7]
// and the layer before it: W = [[1, 2], [3, 4]], b = [1, -1], so
//   W' = W * scale[o] = [[1, 2], [9, 12]],  b' = b * scale + shift = [0.5, -10].

// CHECK-LABEL: func @fold_bn_into_linear_with_bias
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 2.000000e+00], [9.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[5.000000e-01, -1.000000e+01]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = nn.linear %arg0, %[[W]], %[[B]]
// CHECK-NOT: nn.batch_norm
// CHECK: return %[[Y]]
func @fold_bn_into_linear_with_bias(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc1.weight" {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %b = nn.param "fc1.bias" {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %g = nn.param "bn1.weight" {value = dense<[2.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %be = nn.param "bn1.bias" {value = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn1.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn1.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn1.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.linear %x, %w, %b : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32> loc("fc1"("model.kiln":3:3))
  // expected-remark@+1 {{folded into 'fc1' (linear)}}
  %y = nn.batch_norm %h weight %g bias %be running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// COM: Without a bias, b' is the BatchNorm's shift alone.
// CHECK-LABEL: func @fold_bn_into_linear_without_bias
// CHECK-DAG: arith.constant dense<{{\[}}[1.000000e+00, 2.000000e+00], [9.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[-5.000000e-01, -7.000000e+00]> : tensor<2xf32>
// CHECK: nn.linear %arg0, %{{.*}}, %[[B]]
// CHECK-NOT: nn.batch_norm
func @fold_bn_into_linear_without_bias(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc1.weight" {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %g = nn.param "bn1.weight" {value = dense<[2.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %be = nn.param "bn1.bias" {value = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn1.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn1.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn1.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.linear %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  // expected-remark@+1 {{folded into linear}}
  %y = nn.batch_norm %h weight %g bias %be running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.5 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// COM: affine=false: gamma = 1, beta = 0, so scale = [0.5, 1], shift = [-0.5, -2].
// CHECK-LABEL: func @fold_bn_without_affine
// CHECK-DAG: arith.constant dense<{{\[}}[5.000000e-01, 1.000000e+00], [3.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CHECK-DAG: arith.constant dense<[0.000000e+00, -3.000000e+00]> : tensor<2xf32>
// CHECK-NOT: nn.batch_norm
func @fold_bn_without_affine(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc1.weight" {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %b = nn.param "fc1.bias" {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn1.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn1.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn1.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.linear %x, %w, %b : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  // expected-remark@+1 {{folded into linear}}
  %y = nn.batch_norm %h running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @fold_bn2d_into_conv
// CHECK-DAG: arith.constant dense<{{\[}}{{\[}}{{\[}}[1.000000e+00, 2.000000e+00]]], {{\[}}{{\[}}[9.000000e+00, 1.200000e+01]]]]> : tensor<2x1x1x2xf32>
// CHECK-DAG: arith.constant dense<[5.000000e-01, -1.000000e+01]> : tensor<2xf32>
// CHECK: nn.conv2d {{.*}} {padding = [0, 0], stride = [1, 1]}
// CHECK-NOT: nn.batch_norm
func @fold_bn2d_into_conv(%x: tensor<?x1x4x4xf32>) -> tensor<?x2x4x3xf32> {
  %w = nn.param "conv.weight" {value = dense<[[[[1.0, 2.0]]], [[[3.0, 4.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32>
  %b = nn.param "conv.bias" {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %g = nn.param "bn.weight" {value = dense<[2.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %be = nn.param "bn.bias" {value = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.conv2d %x, %w, %b {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<?x2x4x3xf32>
  // expected-remark@+1 {{folded into conv2d}}
  %y = nn.batch_norm %h weight %g bias %be running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2x4x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2x4x3xf32>
  return %y : tensor<?x2x4x3xf32>
}

// -----

// COM: the folded conv keeps its window: dilation and asymmetric padding.
// CHECK-LABEL: func @fold_bn2d_into_dilated_conv_keeps_its_window
// CHECK: nn.conv2d {{.*}} {dilation = [2, 1], padding = [1, 0], padding_end = [0, 1], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<2x1x2x2xf32>, tensor<2xf32>) -> tensor<?x2x3x4xf32>
// CHECK-NOT: nn.batch_norm
func @fold_bn2d_into_dilated_conv_keeps_its_window(%x: tensor<?x1x4x4xf32>) -> tensor<?x2x3x4xf32> {
  %w = nn.param "conv.weight" {value = dense<[[[[1.0, 2.0], [3.0, 4.0]]], [[[5.0, 6.0], [7.0, 8.0]]]]> : tensor<2x1x2x2xf32>} : tensor<2x1x2x2xf32>
  %b = nn.param "conv.bias" {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %g = nn.param "bn.weight" {value = dense<[2.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %be = nn.param "bn.bias" {value = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.conv2d %x, %w, %b {dilation = [2, 1], padding = [1, 0], padding_end = [0, 1], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<2x1x2x2xf32>, tensor<2xf32>) -> tensor<?x2x3x4xf32>
  // expected-remark@+1 {{folded into conv2d}}
  %y = nn.batch_norm %h weight %g bias %be running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2x3x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2x3x4xf32>
  return %y : tensor<?x2x3x4xf32>
}

// -----

// CHECK-LABEL: func @bn_on_model_input_becomes_scale_shift
// CHECK-DAG: %[[S:.*]] = arith.constant dense<[1.000000e+00, 3.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[T:.*]] = arith.constant dense<[-5.000000e-01, -7.000000e+00]> : tensor<2xf32>
// CHECK: nn.scale_shift %arg0, %[[S]], %[[T]]
// CHECK-NOT: nn.batch_norm
func @bn_on_model_input_becomes_scale_shift(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %g = nn.param "bn.weight" {value = dense<[2.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %be = nn.param "bn.bias" {value = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  // expected-remark@+1 {{became a per-channel scale-and-shift: its input is the model's input}}
  %y = nn.batch_norm %x weight %g bias %be running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @bn_after_activation_becomes_scale_shift
// CHECK: %[[R:.*]] = nn.relu
// CHECK: nn.scale_shift %[[R]]
// CHECK-NOT: nn.batch_norm
func @bn_after_activation_becomes_scale_shift(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %r = nn.relu %x : tensor<?x2xf32>
  // expected-remark@+1 {{became a per-channel scale-and-shift: its input comes from relu, not from a linear or conv2d}}
  %y = nn.batch_norm %r running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @bn2d_after_pool_becomes_scale_shift
// CHECK: %[[P:.*]] = nn.avg_pool2d
// CHECK: nn.scale_shift %[[P]]
// CHECK-NOT: nn.batch_norm
func @bn2d_after_pool_becomes_scale_shift(%x: tensor<?x2x4x4xf32>) -> tensor<?x2x2x2xf32> {
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %p = nn.avg_pool2d %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x2x4x4xf32>) -> tensor<?x2x2x2xf32>
  // expected-remark@+1 {{became a per-channel scale-and-shift: its input comes from avg_pool2d, not from a linear or conv2d}}
  %y = nn.batch_norm %p running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2x2x2xf32>
  return %y : tensor<?x2x2x2xf32>
}

// -----

// CHECK-LABEL: func @bn_after_residual_add_becomes_scale_shift
// CHECK: %[[A:.*]] = nn.add
// CHECK: nn.scale_shift %[[A]]
func @bn_after_residual_add_becomes_scale_shift(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %a = nn.add %x, %x : tensor<?x2xf32>
  // expected-remark@+1 {{became a per-channel scale-and-shift: its input comes from add, not from a linear or conv2d}}
  %y = nn.batch_norm %a running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// COM: The linear's output is also returned: folding would change that use.
// CHECK-LABEL: func @bn_whose_producer_has_other_users_is_not_folded
// CHECK: %[[H:.*]] = nn.linear %arg0, %{{.*}}, %{{.*}} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>)
// CHECK: %[[Y:.*]] = nn.scale_shift %[[H]]
// CHECK: return %[[H]], %[[Y]]
func @bn_whose_producer_has_other_users_is_not_folded(%x: tensor<?x2xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
  %w = nn.param "fc1.weight" {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %b = nn.param "fc1.bias" {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %m = nn.buffer "bn1.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn1.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn1.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.linear %x, %w, %b : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32> loc("fc1"("model.kiln":3:3))
  // expected-remark@+1 {{became a per-channel scale-and-shift: 'fc1' (linear) has other users}}
  %y = nn.batch_norm %h running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %h, %y : tensor<?x2xf32>, tensor<?x2xf32>
}

// -----

// COM: BatchNorm1d on [N, C, L] normalizes dim 1, not the linear's features.
// CHECK-LABEL: func @bn1d_after_rank3_linear_becomes_scale_shift
// CHECK: nn.linear
// CHECK: nn.scale_shift
func @bn1d_after_rank3_linear_becomes_scale_shift(%x: tensor<?x2x3xf32>) -> tensor<?x2x2xf32> {
  %w = nn.param "fc.weight" {value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>} : tensor<2x3xf32>
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  %h = nn.linear %x, %w : (tensor<?x2x3xf32>, tensor<2x3xf32>) -> tensor<?x2x2xf32>
  // expected-remark@+1 {{became a per-channel scale-and-shift: linear has a rank-3 output whose features are not dimension 1}}
  %y = nn.batch_norm %h running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2x2xf32>
  return %y : tensor<?x2x2xf32>
}

// -----

// CHECK-LABEL: func @bn_without_running_stats_is_kept
// CHECK: nn.batch_norm
func @bn_without_running_stats_is_kept(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc1.weight" {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %h = nn.linear %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  // expected-remark@+1 {{kept: track_running_stats=false: it normalizes with batch statistics in eval mode too, as PyTorch does}}
  %y = nn.batch_norm %h {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @bn_in_training_mode_is_kept
// CHECK: nn.batch_norm {{.*}}training
func @bn_in_training_mode_is_kept(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %m = nn.buffer "bn.running_mean" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %v = nn.buffer "bn.running_var" {value = dense<[3.0, 0.0]> : tensor<2xf32>} : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" {value = dense<7> : tensor<i64>} : tensor<i64>
  // expected-remark@+1 {{kept: it is in training mode}}
  %y = nn.batch_norm %x running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64, training} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// Unbound values (weights loaded at run time): the same rewrites, with the
// new weight and bias computed by nn.fold_batch_norm.
// CHECK-LABEL: func @unbound_bn_becomes_symbolic_scale_shift
// CHECK: %[[S:.*]], %[[T:.*]] = nn.fold_batch_norm running_mean %{{.*}} running_var %{{.*}} {eps = 1.000000e+00 : f64} : (tensor<2xf32>, tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)
// CHECK: nn.scale_shift %{{.*}}, %[[S]], %[[T]]
// CHECK-NOT: nn.batch_norm
func @unbound_bn_becomes_symbolic_scale_shift(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %m = nn.buffer "bn.running_mean" : tensor<2xf32>
  %v = nn.buffer "bn.running_var" : tensor<2xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  // expected-remark@+1 {{became a per-channel scale-and-shift: its input is the model's input}}
  %y = nn.batch_norm %x running_mean %m running_var %v num_batches_tracked %n {eps = 1.0 : f64, momentum = 0.1 : f64} : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<i64>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @unbound_bn_folds_symbolically_into_linear
// CHECK: %[[W:.*]], %[[B:.*]] = nn.fold_batch_norm weight %[[W0:.*]] bias %[[B0:.*]] running_mean %[[M:.*]] running_var %[[V:.*]] gamma %[[G:.*]] beta %[[BT:.*]] {eps = 1.000000e-05 : f64}
// CHECK-SAME: -> (tensor<3x2xf32>, tensor<3xf32>)
// CHECK: nn.linear %{{.*}}, %[[W]], %[[B]]
// CHECK-NOT: nn.batch_norm
func @unbound_bn_folds_symbolically_into_linear(%x: tensor<?x2xf32>) -> tensor<?x3xf32> {
  %w = nn.param "fc.weight" : tensor<3x2xf32>
  %b = nn.param "fc.bias" : tensor<3xf32>
  %g = nn.param "bn.weight" : tensor<3xf32>
  %bt = nn.param "bn.bias" : tensor<3xf32>
  %m = nn.buffer "bn.running_mean" : tensor<3xf32>
  %v = nn.buffer "bn.running_var" : tensor<3xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  %h = nn.linear %x, %w, %b : (tensor<?x2xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  // expected-remark@+1 {{folded into linear}}
  %y = nn.batch_norm %h weight %g bias %bt running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<i64>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}

// -----

// A conv2d without bias, affine=false.
// CHECK-LABEL: func @unbound_bn_folds_symbolically_into_conv
// CHECK: %[[W:.*]], %[[B:.*]] = nn.fold_batch_norm weight %{{.*}} running_mean %{{.*}} running_var %{{.*}} {eps = 1.000000e-03 : f64} : (tensor<4x1x3x3xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x1x3x3xf32>, tensor<4xf32>)
// CHECK: nn.conv2d %{{.*}}, %[[W]], %[[B]]
// CHECK-NOT: nn.batch_norm
func @unbound_bn_folds_symbolically_into_conv(%x: tensor<?x1x5x5xf32>) -> tensor<?x4x3x3xf32> {
  %w = nn.param "conv.weight" : tensor<4x1x3x3xf32>
  %m = nn.buffer "bn.running_mean" : tensor<4xf32>
  %v = nn.buffer "bn.running_var" : tensor<4xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  %h = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x5x5xf32>, tensor<4x1x3x3xf32>) -> tensor<?x4x3x3xf32>
  // expected-remark@+1 {{folded into conv2d}}
  %y = nn.batch_norm %h running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-03 : f64, momentum = 0.1 : f64} : (tensor<?x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<i64>) -> tensor<?x4x3x3xf32>
  return %y : tensor<?x4x3x3xf32>
}

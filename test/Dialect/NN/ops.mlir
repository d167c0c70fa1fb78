// RUN: kiln-opt %s | FileCheck %s
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt --mlir-print-op-generic %s | kiln-opt | FileCheck %s

// Every op of the nn dialect parses, verifies and prints back in its custom
// form; the second and third RUN lines check the round trip.

// CHECK-LABEL: func @linear_with_and_without_bias
func @linear_with_and_without_bias(%x: tensor<?x784xf32>) -> tensor<?x10xf32> {
  // CHECK: %[[W:.*]] = nn.param "fc1.weight" : tensor<128x784xf32>
  %w = nn.param "fc1.weight" : tensor<128x784xf32>
  %b = nn.param "fc1.bias" : tensor<128xf32>
  %w2 = nn.param "fc2.weight" : tensor<10x128xf32>
  // CHECK: nn.linear %{{.*}}, %[[W]], %{{.*}} : (tensor<?x784xf32>, tensor<128x784xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %h = nn.linear %x, %w, %b : (tensor<?x784xf32>, tensor<128x784xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // CHECK: nn.linear %{{.*}}, %{{.*}} : (tensor<?x128xf32>, tensor<10x128xf32>) -> tensor<?x10xf32>
  %y = nn.linear %h, %w2 : (tensor<?x128xf32>, tensor<10x128xf32>) -> tensor<?x10xf32>
  return %y : tensor<?x10xf32>
}

// CHECK-LABEL: func @linear_on_three_dims
func @linear_on_three_dims(%x: tensor<?x5x16xf32>) -> tensor<?x5x4xf32> {
  %w = nn.param "fc.weight" : tensor<4x16xf32>
  // CHECK: -> tensor<?x5x4xf32>
  %y = nn.linear %x, %w : (tensor<?x5x16xf32>, tensor<4x16xf32>) -> tensor<?x5x4xf32>
  return %y : tensor<?x5x4xf32>
}

// CHECK-LABEL: func @conv_pool_flatten
func @conv_pool_flatten(%x: tensor<?x1x28x28xf32>) -> tensor<?x864xf32> {
  %w = nn.param "conv.weight" : tensor<6x1x5x5xf32>
  %b = nn.param "conv.bias" : tensor<6xf32>
  // CHECK: nn.conv2d %{{.*}}, %{{.*}}, %{{.*}} {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x28x28xf32>, tensor<6x1x5x5xf32>, tensor<6xf32>) -> tensor<?x6x24x24xf32>
  %c = nn.conv2d %x, %w, %b {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x28x28xf32>, tensor<6x1x5x5xf32>, tensor<6xf32>) -> tensor<?x6x24x24xf32>
  // CHECK: nn.avg_pool2d %{{.*}} {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x12x12xf32>
  %p = nn.avg_pool2d %c {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x24x24xf32>) -> tensor<?x6x12x12xf32>
  // CHECK: nn.max_pool2d
  %m = nn.max_pool2d %p {kernel_size = [1, 1], stride = [1, 1]} : (tensor<?x6x12x12xf32>) -> tensor<?x6x12x12xf32>
  // CHECK: nn.flatten %{{.*}} {end_dim = -1 : i64, start_dim = 1 : i64} : (tensor<?x6x12x12xf32>) -> tensor<?x864xf32>
  %f = nn.flatten %m {end_dim = -1 : i64, start_dim = 1 : i64} : (tensor<?x6x12x12xf32>) -> tensor<?x864xf32>
  return %f : tensor<?x864xf32>
}

// CHECK-LABEL: func @conv_stride_padding
func @conv_stride_padding(%x: tensor<2x3x7x9xf32>) -> tensor<2x8x4x5xf32> {
  %w = nn.param "conv.weight" : tensor<8x3x3x3xf32>
  // COM: (7 + 2*1 - 3) / 2 + 1 = 4, (9 + 2*1 - 3) / 2 + 1 = 5
  // CHECK: -> tensor<2x8x4x5xf32>
  %c = nn.conv2d %x, %w {padding = [1, 1], stride = [2, 2]} : (tensor<2x3x7x9xf32>, tensor<8x3x3x3xf32>) -> tensor<2x8x4x5xf32>
  return %c : tensor<2x8x4x5xf32>
}

// CHECK-LABEL: func @conv_dilation_asymmetric_padding
func @conv_dilation_asymmetric_padding(%x: tensor<2x3x10x9xf32>) -> tensor<2x4x9x4xf32> {
  %w = nn.param "conv.weight" : tensor<4x3x3x3xf32>
  // COM: (10 + 1 + 2 - 2*2 - 1) / 1 + 1 = 9, (9 + 0 + 1 - 1*2 - 1) / 2 + 1 = 4
  // CHECK: nn.conv2d %{{.*}}, %{{.*}} {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<2x3x10x9xf32>, tensor<4x3x3x3xf32>) -> tensor<2x4x9x4xf32>
  %c = nn.conv2d %x, %w {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<2x3x10x9xf32>, tensor<4x3x3x3xf32>) -> tensor<2x4x9x4xf32>
  return %c : tensor<2x4x9x4xf32>
}

// CHECK-LABEL: func @pools_with_padding_and_ceil_mode
func @pools_with_padding_and_ceil_mode(%x: tensor<?x2x7x7xf32>, %y: tensor<?x1x5x5xf32>) -> (tensor<?x2x4x4xf32>, tensor<?x2x4x4xf32>, tensor<?x2x4x4xf32>, tensor<?x1x2x2xf32>) {
  // COM: ceil((7 + 2 - 3) / 2) + 1 = 4
  // CHECK: nn.avg_pool2d %{{.*}} {ceil_mode, count_include_pad, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x7x7xf32>) -> tensor<?x2x4x4xf32>
  %a = nn.avg_pool2d %x {ceil_mode, count_include_pad, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x7x7xf32>) -> tensor<?x2x4x4xf32>
  // COM: a 2x2 kernel dilated by 2 spans 3: ceil((7 + 2 - 3) / 2) + 1 = 4
  // CHECK: nn.max_pool2d %{{.*}} {ceil_mode, dilation = [2, 2], kernel_size = [2, 2], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x7x7xf32>) -> tensor<?x2x4x4xf32>
  %m = nn.max_pool2d %x {ceil_mode, dilation = [2, 2], kernel_size = [2, 2], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x7x7xf32>) -> tensor<?x2x4x4xf32>
  // COM: end padding only: (7 + 0 + 1 - 2) / 2 + 1 = 4
  // CHECK: nn.max_pool2d %{{.*}} {kernel_size = [2, 2], padding = [0, 0], padding_end = [1, 1], stride = [2, 2]}
  %e = nn.max_pool2d %x {kernel_size = [2, 2], padding = [0, 0], padding_end = [1, 1], stride = [2, 2]} : (tensor<?x2x7x7xf32>) -> tensor<?x2x4x4xf32>
  // COM: PyTorch's rule: ceil((5 + 2 - 3) / 3) + 1 = 3 windows, but the last
  // COM: would start at 6 >= 5 + 1, past the input and its begin padding: 2.
  // CHECK: nn.max_pool2d %{{.*}} {ceil_mode, kernel_size = [3, 3], padding = [1, 1], stride = [3, 3]} : (tensor<?x1x5x5xf32>) -> tensor<?x1x2x2xf32>
  %c = nn.max_pool2d %y {ceil_mode, kernel_size = [3, 3], padding = [1, 1], stride = [3, 3]} : (tensor<?x1x5x5xf32>) -> tensor<?x1x2x2xf32>
  return %a, %m, %e, %c : tensor<?x2x4x4xf32>, tensor<?x2x4x4xf32>, tensor<?x2x4x4xf32>, tensor<?x1x2x2xf32>
}

// CHECK-LABEL: func @softmax_and_log_softmax
func @softmax_and_log_softmax(%x: tensor<?x10xf32>, %y: tensor<?x3x4x5xf32>) -> (tensor<?x10xf32>, tensor<?x3x4x5xf32>, tensor<?x10xf32>) {
  // CHECK: nn.softmax %{{.*}} {axis = 1 : i64} : tensor<?x10xf32>
  %s = nn.softmax %x {axis = 1 : i64} : tensor<?x10xf32>
  // CHECK: nn.log_softmax %{{.*}} {axis = 1 : i64} : tensor<?x3x4x5xf32>
  %l = nn.log_softmax %y {axis = 1 : i64} : tensor<?x3x4x5xf32>
  // COM: over the batch dimension
  // CHECK: nn.softmax %{{.*}} {axis = 0 : i64} : tensor<?x10xf32>
  %b = nn.softmax %x {axis = 0 : i64} : tensor<?x10xf32>
  return %s, %l, %b : tensor<?x10xf32>, tensor<?x3x4x5xf32>, tensor<?x10xf32>
}

// CHECK-LABEL: func @batch_norm_full_state
func @batch_norm_full_state(%x: tensor<?x128xf32>) -> tensor<?x128xf32> {
  %g = nn.param "bn.weight" : tensor<128xf32>
  %b = nn.param "bn.bias" : tensor<128xf32>
  %m = nn.buffer "bn.running_mean" : tensor<128xf32>
  %v = nn.buffer "bn.running_var" : tensor<128xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  // CHECK: nn.batch_norm %{{.*}} weight %{{.*}} bias %{{.*}} running_mean %{{.*}} running_var %{{.*}} num_batches_tracked %{{.*}} {eps = 1.000000e-05 : f64, momentum = 1.000000e-01 : f64}
  %y = nn.batch_norm %x weight %g bias %b running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<i64>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// CHECK-LABEL: func @batch_norm_training_without_affine
func @batch_norm_training_without_affine(%x: tensor<?x6x4x4xf32>) -> tensor<?x6x4x4xf32> {
  %m = nn.buffer "bn.running_mean" : tensor<6xf32>
  %v = nn.buffer "bn.running_var" : tensor<6xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  // CHECK: nn.batch_norm %{{.*}} running_mean %{{.*}} running_var %{{.*}} num_batches_tracked %{{.*}} {eps = 1.000000e-03 : f64, momentum = 0.000000e+00 : f64, training}
  %y = nn.batch_norm %x running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-03 : f64, momentum = 0.0 : f64, training} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<i64>) -> tensor<?x6x4x4xf32>
  return %y : tensor<?x6x4x4xf32>
}

// CHECK-LABEL: func @batch_norm_without_state
func @batch_norm_without_state(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
  // COM: affine=false and track_running_stats=false: batch statistics always.
  // CHECK: nn.batch_norm %{{.*}} {eps
  %y = nn.batch_norm %x {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}

// CHECK-LABEL: func @activations_dropout_add
func @activations_dropout_add(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // CHECK: nn.relu %{{.*}} : tensor<?x8xf32>
  %r = nn.relu %x : tensor<?x8xf32>
  // CHECK: nn.sigmoid
  %s = nn.sigmoid %r : tensor<?x8xf32>
  // CHECK: nn.tanh
  %t = nn.tanh %s : tensor<?x8xf32>
  // CHECK: nn.dropout %{{.*}} {p = 5.000000e-01 : f64} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %d = nn.dropout %t {p = 0.5 : f64} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK: nn.add %{{.*}}, %{{.*}} : tensor<?x8xf32>
  %a = nn.add %d, %x : tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// CHECK-LABEL: func @bound_parameter
func @bound_parameter() -> tensor<2xf32> {
  // CHECK: nn.param "fc.bias" {value = dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>} : tensor<2xf32>
  %b = nn.param "fc.bias" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  return %b : tensor<2xf32>
}

// CHECK-LABEL: func @fold_batch_norm
func @fold_batch_norm(%w: tensor<4x3xf32>, %b: tensor<4xf32>, %m: tensor<4xf32>, %v: tensor<4xf32>, %g: tensor<4xf32>, %bt: tensor<4xf32>) -> (tensor<4x3xf32>, tensor<4xf32>) {
  // CHECK: nn.fold_batch_norm weight %{{.*}} bias %{{.*}} running_mean %{{.*}} running_var %{{.*}} gamma %{{.*}} beta %{{.*}} {eps = 1.000000e-05 : f64} : (tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x3xf32>, tensor<4xf32>)
  %w2, %b2 = nn.fold_batch_norm weight %w bias %b running_mean %m running_var %v gamma %g beta %bt {eps = 1.0e-05 : f64} : (tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x3xf32>, tensor<4xf32>)
  // CHECK: nn.fold_batch_norm running_mean %{{.*}} running_var %{{.*}} {eps = 1.000000e-03 : f64} : (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  %s, %t = nn.fold_batch_norm running_mean %m running_var %v {eps = 1.0e-03 : f64} : (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return %w2, %b2 : tensor<4x3xf32>, tensor<4xf32>
}

// RUN: kiln-opt %s | FileCheck %s
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt --mlir-print-op-generic %s | kiln-opt | FileCheck %s

// Every op of the training step (NNTrainOps.td) parses, verifies and prints
// back in its custom form.

// CHECK-LABEL: func @loss
func @loss(%logits: tensor<?x10xf32>, %labels: tensor<?xi64>) -> (tensor<f32>, tensor<i64>, tensor<?x10xf32>) {
  // CHECK: %[[L:.*]], %[[C:.*]] = nn.cross_entropy %{{.*}}, %{{.*}} : (tensor<?x10xf32>, tensor<?xi64>) -> (tensor<f32>, tensor<i64>)
  %loss, %correct = nn.cross_entropy %logits, %labels : (tensor<?x10xf32>, tensor<?xi64>) -> (tensor<f32>, tensor<i64>)
  // CHECK: nn.cross_entropy_grad %{{.*}}, %{{.*}} : (tensor<?x10xf32>, tensor<?xi64>) -> tensor<?x10xf32>
  %d = nn.cross_entropy_grad %logits, %labels : (tensor<?x10xf32>, tensor<?xi64>) -> tensor<?x10xf32>
  return %loss, %correct, %d : tensor<f32>, tensor<i64>, tensor<?x10xf32>
}

// CHECK-LABEL: func @batch_norm_train
func @batch_norm_train(%x: tensor<?x6x4x4xf32>, %g: tensor<6xf32>, %b: tensor<6xf32>, %rm: tensor<6xf32>, %rv: tensor<6xf32>, %n: tensor<i64>, %dy: tensor<?x6x4x4xf32>) {
  // CHECK: nn.batch_norm_stats %{{.*}} : (tensor<?x6x4x4xf32>) -> (tensor<6xf32>, tensor<6xf32>)
  %mean, %var = nn.batch_norm_stats %x : (tensor<?x6x4x4xf32>) -> (tensor<6xf32>, tensor<6xf32>)
  // CHECK: nn.batch_norm_normalize %{{.*}}, %{{.*}}, %{{.*}} weight %{{.*}} bias %{{.*}} {eps = 1.000000e-05 : f64}
  %y = nn.batch_norm_normalize %x, %mean, %var weight %g bias %b {eps = 1.0e-05 : f64} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  // CHECK: nn.batch_norm_normalize %{{.*}}, %{{.*}}, %{{.*}} {eps = 1.000000e-03 : f64} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  %y2 = nn.batch_norm_normalize %x, %mean, %var {eps = 1.0e-03 : f64} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  // CHECK: nn.running_stats_update {{.*}} {momentum = 1.000000e-01 : f64}
  %rm2, %rv2, %n2 = nn.running_stats_update %x, %mean, %var, %rm, %rv, %n {momentum = 0.1 : f64} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<i64>) -> (tensor<6xf32>, tensor<6xf32>, tensor<i64>)
  // COM: momentum=None, the cumulative average: no attribute.
  // CHECK: nn.running_stats_update {{.*}} : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<i64>)
  %rm3, %rv3, %n3 = nn.running_stats_update %x, %mean, %var, %rm, %rv, %n : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<i64>) -> (tensor<6xf32>, tensor<6xf32>, tensor<i64>)
  // CHECK: nn.batch_norm_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} weight %{{.*}} {eps = 1.000000e-05 : f64}
  %dx, %dg, %db = nn.batch_norm_grad %dy, %x, %mean, %var weight %g {eps = 1.0e-05 : f64} : (tensor<?x6x4x4xf32>, tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>)
  // CHECK: nn.batch_norm_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {eps
  %dx2, %dg2, %db2 = nn.batch_norm_grad %dy, %x, %mean, %var {eps = 1.0e-05 : f64} : (tensor<?x6x4x4xf32>, tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>) -> (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>)
  return
}

// CHECK-LABEL: func @layer_grads
func @layer_grads(%dy: tensor<?x10xf32>, %w: tensor<10x128xf32>, %x: tensor<?x128xf32>,
                  %dyc: tensor<?x4x5x5xf32>, %wc: tensor<4x2x3x3xf32>, %xc: tensor<?x2x10x10xf32>) {
  // CHECK: nn.linear_grad_input %{{.*}}, %{{.*}} : (tensor<?x10xf32>, tensor<10x128xf32>) -> tensor<?x128xf32>
  %dx = nn.linear_grad_input %dy, %w : (tensor<?x10xf32>, tensor<10x128xf32>) -> tensor<?x128xf32>
  // CHECK: nn.linear_grad_weight %{{.*}}, %{{.*}} : (tensor<?x10xf32>, tensor<?x128xf32>) -> tensor<10x128xf32>
  %dw = nn.linear_grad_weight %dy, %x : (tensor<?x10xf32>, tensor<?x128xf32>) -> tensor<10x128xf32>
  // CHECK: nn.linear_grad_bias %{{.*}} : (tensor<?x10xf32>) -> tensor<10xf32>
  %db = nn.linear_grad_bias %dy : (tensor<?x10xf32>) -> tensor<10xf32>
  // CHECK: nn.conv2d_grad_input %{{.*}}, %{{.*}} {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<4x2x3x3xf32>) -> tensor<?x2x10x10xf32>
  %dxc = nn.conv2d_grad_input %dyc, %wc {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<4x2x3x3xf32>) -> tensor<?x2x10x10xf32>
  // CHECK: nn.conv2d_grad_weight %{{.*}}, %{{.*}} {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<?x2x10x10xf32>) -> tensor<4x2x3x3xf32>
  %dwc = nn.conv2d_grad_weight %dyc, %xc {padding = [1, 1], stride = [2, 2]} : (tensor<?x4x5x5xf32>, tensor<?x2x10x10xf32>) -> tensor<4x2x3x3xf32>
  // CHECK: nn.conv2d_grad_bias %{{.*}} : (tensor<?x4x5x5xf32>) -> tensor<4xf32>
  %dbc = nn.conv2d_grad_bias %dyc : (tensor<?x4x5x5xf32>) -> tensor<4xf32>
  return
}

// CHECK-LABEL: func @elementwise_and_pool_grads
func @elementwise_and_pool_grads(%dy: tensor<?x4x4x4xf32>, %y: tensor<?x4x4x4xf32>, %x: tensor<?x4x10x10xf32>, %d2: tensor<?x6x2x2xf32>, %flat: tensor<?x64xf32>, %step: tensor<i64>) {
  // CHECK: nn.relu_grad %{{.*}}, %{{.*}} : tensor<?x4x4x4xf32>
  %a = nn.relu_grad %dy, %y : tensor<?x4x4x4xf32>
  // CHECK: nn.sigmoid_grad %{{.*}}, %{{.*}} : tensor<?x4x4x4xf32>
  %b = nn.sigmoid_grad %dy, %y : tensor<?x4x4x4xf32>
  // CHECK: nn.tanh_grad %{{.*}}, %{{.*}} : tensor<?x4x4x4xf32>
  %c = nn.tanh_grad %dy, %y : tensor<?x4x4x4xf32>
  // CHECK: nn.max_pool2d_grad %{{.*}}, %{{.*}} {kernel_size = [3, 3], stride = [2, 2]} : (tensor<?x4x4x4xf32>, tensor<?x4x10x10xf32>) -> tensor<?x4x10x10xf32>
  %m = nn.max_pool2d_grad %dy, %x {kernel_size = [3, 3], stride = [2, 2]} : (tensor<?x4x4x4xf32>, tensor<?x4x10x10xf32>) -> tensor<?x4x10x10xf32>
  // CHECK: nn.avg_pool2d_grad %{{.*}} {kernel_size = [2, 1], stride = [2, 1]} : (tensor<?x6x2x2xf32>) -> tensor<?x6x4x2xf32>
  %p = nn.avg_pool2d_grad %d2 {kernel_size = [2, 1], stride = [2, 1]} : (tensor<?x6x2x2xf32>) -> tensor<?x6x4x2xf32>
  // CHECK: nn.reshape %{{.*}} : (tensor<?x64xf32>) -> tensor<?x4x4x4xf32>
  %r = nn.reshape %flat : (tensor<?x64xf32>) -> tensor<?x4x4x4xf32>
  // CHECK: nn.dropout_mask %{{.*}}, %{{.*}} {p = 5.000000e-01 : f64, seed = 7 : i64, stream = 0 : i64}
  %mask = nn.dropout_mask %dy, %step {p = 0.5 : f64, seed = 7 : i64, stream = 0 : i64} : (tensor<?x4x4x4xf32>, tensor<i64>) -> tensor<?x4x4x4xf32>
  // CHECK: nn.mul %{{.*}}, %{{.*}} : tensor<?x4x4x4xf32>
  %dm = nn.mul %dy, %mask : tensor<?x4x4x4xf32>
  return
}

// CHECK-LABEL: func @optimizers
func @optimizers(%p: tensor<10xf32>, %g: tensor<10xf32>, %b: tensor<10xf32>, %v: tensor<10xf32>, %t: tensor<i64>) {
  // CHECK: nn.increment %{{.*}} : tensor<i64>
  %t1 = nn.increment %t : tensor<i64>
  // CHECK: nn.sgd_update %{{.*}}, %{{.*}} step %{{.*}} {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> tensor<10xf32>
  %p1 = nn.sgd_update %p, %g step %t1 {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.0 : f64, nesterov = false, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> tensor<10xf32>
  // CHECK: nn.sgd_update %{{.*}}, %{{.*}} momentum_buffer %{{.*}} step %{{.*}} {{.*}}nesterov = true{{.*}} -> (tensor<10xf32>, tensor<10xf32>)
  %p2, %b2 = nn.sgd_update %p, %g momentum_buffer %b step %t1 {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.9 : f64, nesterov = true, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>)
  // CHECK: nn.adam_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} step %{{.*}} {beta1
  %p3, %m3, %v3 = nn.adam_update %p, %g, %b, %v step %t1 {beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, lr = 1.0e-03 : f64, weight_decay = 0.0 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>)
  // CHECK: nn.adamw_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} step %{{.*}} {beta1
  %p4, %m4, %v4 = nn.adamw_update %p, %g, %b, %v step %t1 {beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, lr = 1.0e-03 : f64, weight_decay = 1.0e-02 : f64} : (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<10xf32>, tensor<i64>) -> (tensor<10xf32>, tensor<10xf32>, tensor<10xf32>)
  return
}

// CHECK-LABEL: func @windows_with_padding_dilation_ceil_mode
func @windows_with_padding_dilation_ceil_mode(%dy: tensor<?x4x9x4xf32>, %w: tensor<4x3x3x3xf32>, %x: tensor<?x3x10x9xf32>, %dp: tensor<?x2x4x4xf32>, %xp: tensor<?x2x7x7xf32>) {
  // CHECK: nn.conv2d_grad_input %{{.*}}, %{{.*}} {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<?x4x9x4xf32>, tensor<4x3x3x3xf32>) -> tensor<?x3x10x9xf32>
  %dx = nn.conv2d_grad_input %dy, %w {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<?x4x9x4xf32>, tensor<4x3x3x3xf32>) -> tensor<?x3x10x9xf32>
  // CHECK: nn.conv2d_grad_weight %{{.*}}, %{{.*}} {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<?x4x9x4xf32>, tensor<?x3x10x9xf32>) -> tensor<4x3x3x3xf32>
  %dw = nn.conv2d_grad_weight %dy, %x {dilation = [2, 1], padding = [1, 0], padding_end = [2, 1], stride = [1, 2]} : (tensor<?x4x9x4xf32>, tensor<?x3x10x9xf32>) -> tensor<4x3x3x3xf32>
  // CHECK: nn.avg_pool2d_grad %{{.*}} {ceil_mode, count_include_pad, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x4x4xf32>) -> tensor<?x2x7x7xf32>
  %da = nn.avg_pool2d_grad %dp {ceil_mode, count_include_pad, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x4x4xf32>) -> tensor<?x2x7x7xf32>
  // CHECK: nn.max_pool2d_grad %{{.*}}, %{{.*}} {ceil_mode, dilation = [2, 2], kernel_size = [2, 2], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x4x4xf32>, tensor<?x2x7x7xf32>) -> tensor<?x2x7x7xf32>
  %dm = nn.max_pool2d_grad %dp, %xp {ceil_mode, dilation = [2, 2], kernel_size = [2, 2], padding = [1, 1], stride = [2, 2]} : (tensor<?x2x4x4xf32>, tensor<?x2x7x7xf32>) -> tensor<?x2x7x7xf32>
  return
}

// CHECK-LABEL: func @softmax_gradients
func @softmax_gradients(%dy: tensor<?x10xf32>, %y: tensor<?x10xf32>) -> (tensor<?x10xf32>, tensor<?x10xf32>) {
  // CHECK: nn.softmax_grad %{{.*}}, %{{.*}} {axis = 1 : i64} : tensor<?x10xf32>
  %a = nn.softmax_grad %dy, %y {axis = 1 : i64} : tensor<?x10xf32>
  // CHECK: nn.log_softmax_grad %{{.*}}, %{{.*}} {axis = 0 : i64} : tensor<?x10xf32>
  %b = nn.log_softmax_grad %dy, %y {axis = 0 : i64} : tensor<?x10xf32>
  return %a, %b : tensor<?x10xf32>, tensor<?x10xf32>
}

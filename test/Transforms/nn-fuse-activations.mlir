// RUN: kiln-opt %s -split-input-file -nn-fuse-activations | FileCheck %s

// CHECK-LABEL: func @fuse_relu_into_linear
// CHECK: %[[Y:.*]] = nn.linear %arg0, %{{.*}} {activation = "relu"}
// CHECK-NOT: nn.relu
// CHECK: return %[[Y]]
func @fuse_relu_into_linear(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc.weight" : tensor<2x2xf32>
  %h = nn.linear %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %y = nn.relu %h : tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// CHECK-LABEL: func @fuse_sigmoid_into_conv
// CHECK: nn.conv2d {{.*}}activation = "sigmoid"
// CHECK-NOT: nn.sigmoid
func @fuse_sigmoid_into_conv(%x: tensor<?x1x4x4xf32>) -> tensor<?x2x2x2xf32> {
  %w = nn.param "conv.weight" : tensor<2x1x3x3xf32>
  %h = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<?x2x2x2xf32>
  %y = nn.sigmoid %h : tensor<?x2x2x2xf32>
  return %y : tensor<?x2x2x2xf32>
}

// -----

// CHECK-LABEL: func @fuse_tanh_into_scale_shift
// CHECK: nn.scale_shift {{.*}} {activation = "tanh"}
// CHECK-NOT: nn.tanh
func @fuse_tanh_into_scale_shift(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %s = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %h = nn.scale_shift %x, %s, %s : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %y = nn.tanh %h : tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// COM: The linear's raw output is used elsewhere: it must stay unactivated.
// CHECK-LABEL: func @no_fusion_when_producer_has_other_users
// CHECK: %[[H:.*]] = nn.linear
// CHECK-NOT: activation
// CHECK: %[[Y:.*]] = nn.relu %[[H]]
// CHECK: return %[[H]], %[[Y]]
func @no_fusion_when_producer_has_other_users(%x: tensor<?x2xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
  %w = nn.param "fc.weight" : tensor<2x2xf32>
  %h = nn.linear %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %y = nn.relu %h : tensor<?x2xf32>
  return %h, %y : tensor<?x2xf32>, tensor<?x2xf32>
}

// -----

// COM: A second activation stays a separate op: a layer applies only one.
// CHECK-LABEL: func @only_one_activation_per_layer
// CHECK: nn.linear {{.*}}activation = "relu"
// CHECK: nn.sigmoid
func @only_one_activation_per_layer(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = nn.param "fc.weight" : tensor<2x2xf32>
  %h = nn.linear %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %r = nn.relu %h : tensor<?x2xf32>
  %y = nn.sigmoid %r : tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// COM: Activations after a pool or an add have no layer to fuse into.
// CHECK-LABEL: func @no_fusion_after_pool
// CHECK: nn.avg_pool2d
// CHECK: nn.relu
func @no_fusion_after_pool(%x: tensor<?x2x4x4xf32>) -> tensor<?x2x2x2xf32> {
  %p = nn.avg_pool2d %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x2x4x4xf32>) -> tensor<?x2x2x2xf32>
  %y = nn.relu %p : tensor<?x2x2x2xf32>
  return %y : tensor<?x2x2x2xf32>
}

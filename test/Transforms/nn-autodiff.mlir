// RUN: kiln-opt %s -split-input-file -nn-autodiff -verify-diagnostics | FileCheck %s

// nn-autodiff on IR (kiln-opt): the train section comes from kiln.train.

// CHECK-LABEL: func @forward
// CHECK: func @train_step(%{{.*}}: tensor<?x3xf32> {nn.batch = "input"}, %{{.*}}: tensor<?xi64> {nn.batch = "labels"}, %[[W:.*]]: tensor<2x3xf32> {nn.state_key = "fc.weight"}, %[[B:.*]]: tensor<2xf32> {nn.state_key = "fc.bias"}, %[[T:.*]]: tensor<i64> {nn.state_key = "step"})
// CHECK: %[[T1:.*]] = nn.increment %[[T]]
// CHECK: nn.sgd_update %[[W]], %{{.*}} step %[[T1]] {dampening = 0.000000e+00 : f64, lr = 2.500000e-01 : f64
module attributes {kiln.train = {loss = "cross_entropy", optimizer = {name = "sgd", lr = 0.25 : f64}}} {
  func @forward(%x: tensor<?x3xf32>) -> tensor<?x2xf32> {
    %w = nn.param "fc.weight" : tensor<2x3xf32>
    %b = nn.param "fc.bias" : tensor<2xf32>
    %y = nn.linear %x, %w, %b : (tensor<?x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
  }
}

// -----

// expected-error@+1 {{nn-autodiff: unknown loss 'mse' in kiln.train; expected cross_entropy}}
module attributes {kiln.train = {loss = "mse", optimizer = {name = "sgd", lr = 0.25 : f64}}} {
  func @forward(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
    return %x : tensor<?x3xf32>
  }
}

// -----

// expected-error@+1 {{nn-autodiff needs the module's 'kiln.train' attribute: the model has no train section}}
module {
  func @forward(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
    return %x : tensor<?x3xf32>
  }
}

// -----

module attributes {kiln.train = {loss = "cross_entropy", optimizer = {name = "adam"}}} {
  func @forward(%x: tensor<?x3xf32>) -> tensor<?x2xf32> {
    %w = nn.param "fc.weight" : tensor<2x3xf32>
    // expected-error@+1 {{nn-autodiff runs on the imported forward, before the inference passes; found linear with a fused activation}}
    %y = nn.linear %x, %w {activation = "relu"} : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
  }
}

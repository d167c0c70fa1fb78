// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// Every verifier of the nn dialect rejects what it must, with the message
// kilnc users see for the same mistake in DSL source.

func @linear_feature_mismatch(%x: tensor<?x400xf32>) {
  %w = nn.param "fc1.weight" : tensor<128x784xf32>
  // expected-error@+1 {{linear expects 784 input features, but its input has shape [N, 400] with 400 features}}
  %y = nn.linear %x, %w : (tensor<?x400xf32>, tensor<128x784xf32>) -> tensor<?x128xf32>
  return
}

// -----

func @linear_bias_wrong_size(%x: tensor<?x4xf32>) {
  %w = nn.param "fc.weight" : tensor<3x4xf32>
  %b = nn.param "fc.bias" : tensor<4xf32>
  // expected-error@+1 {{linear bias must be [3], got [4]}}
  %y = nn.linear %x, %w, %b : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<?x3xf32>
  return
}

// -----

func @linear_weight_rank(%x: tensor<?x4xf32>) {
  %w = nn.param "fc.weight" : tensor<3x4x1xf32>
  // expected-error@+1 {{linear weight must be [out_features, in_features], got [3, 4, 1]}}
  %y = nn.linear %x, %w : (tensor<?x4xf32>, tensor<3x4x1xf32>) -> tensor<?x3xf32>
  return
}

// -----

func @linear_on_vector(%x: tensor<4xf32>) {
  %w = nn.param "fc.weight" : tensor<3x4xf32>
  // expected-error@+1 {{linear expects an input of shape [N, *, 4], got [4]}}
  %y = nn.linear %x, %w : (tensor<4xf32>, tensor<3x4xf32>) -> tensor<3xf32>
  return
}

// -----

func @linear_wrong_result(%x: tensor<?x4xf32>) {
  %w = nn.param "fc.weight" : tensor<3x4xf32>
  // expected-error@+1 {{result shape [N, 5] does not match the inferred shape [N, 3]}}
  %y = nn.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x5xf32>
  return
}

// -----

func @linear_integer_input(%x: tensor<?x4xi32>) {
  %w = nn.param "fc.weight" : tensor<3x4xf32>
  // expected-error@+1 {{operand #0 must be ranked tensor of 32-bit float values}}
  %y = nn.linear %x, %w : (tensor<?x4xi32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  return
}

// -----

func @conv_channel_mismatch(%x: tensor<?x3x28x28xf32>) {
  %w = nn.param "conv.weight" : tensor<6x1x5x5xf32>
  // expected-error@+1 {{conv2d expects 1 input channels, but its input has shape [N, 3, 28, 28] with 3 channels}}
  %y = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1]} : (tensor<?x3x28x28xf32>, tensor<6x1x5x5xf32>) -> tensor<?x6x24x24xf32>
  return
}

// -----

func @conv_empty_output(%x: tensor<?x1x4x4xf32>) {
  %w = nn.param "conv.weight" : tensor<6x1x5x5xf32>
  // expected-error@+1 {{conv2d output would be empty: input height 4 (padded 4) is smaller than kernel_size 5}}
  %y = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<6x1x5x5xf32>) -> tensor<?x6x1x1xf32>
  return
}

// -----

func @conv_zero_stride(%x: tensor<?x1x8x8xf32>) {
  %w = nn.param "conv.weight" : tensor<6x1x3x3xf32>
  // expected-error@+1 {{conv2d needs kernel_size and stride > 0 and padding >= 0, got kernel_size 3, stride 0, padding 0}}
  %y = nn.conv2d %x, %w {padding = [0, 0], stride = [0, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_stride_not_pair(%x: tensor<?x1x8x8xf32>) {
  %w = nn.param "conv.weight" : tensor<6x1x3x3xf32>
  // expected-error@+1 {{conv2d stride must have 2 values [h, w], got 3}}
  %y = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_on_matrix(%x: tensor<?x8xf32>) {
  %w = nn.param "conv.weight" : tensor<6x1x3x3xf32>
  // expected-error@+1 {{conv2d expects an input of shape [N, C, H, W], got [N, 8]}}
  %y = nn.conv2d %x, %w {padding = [0, 0], stride = [1, 1]} : (tensor<?x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @batch_norm_channel_mismatch(%x: tensor<?x128xf32>) {
  %m = nn.buffer "bn.running_mean" : tensor<64xf32>
  %v = nn.buffer "bn.running_var" : tensor<64xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<i64>
  // expected-error@+1 {{batch_norm has 64 channels, but its input has shape [N, 128] with 128 channels}}
  %y = nn.batch_norm %x running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x128xf32>, tensor<64xf32>, tensor<64xf32>, tensor<i64>) -> tensor<?x128xf32>
  return
}

// -----

func @batch_norm_state_sizes_differ(%x: tensor<?x4xf32>) {
  %g = nn.param "bn.weight" : tensor<4xf32>
  %b = nn.param "bn.bias" : tensor<5xf32>
  // expected-error@+1 {{bias must be [4], got [5]}}
  %y = nn.batch_norm %x weight %g bias %b {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x4xf32>, tensor<4xf32>, tensor<5xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @batch_norm_weight_without_bias(%x: tensor<?x4xf32>) {
  %g = nn.param "bn.weight" : tensor<4xf32>
  // expected-error@+1 {{needs both weight and bias (affine) or neither}}
  %y = nn.batch_norm %x weight %g {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @batch_norm_mean_without_var(%x: tensor<?x4xf32>) {
  %m = nn.buffer "bn.running_mean" : tensor<4xf32>
  // expected-error@+1 {{needs running_mean, running_var and num_batches_tracked together, or none of them}}
  %y = nn.batch_norm %x running_mean %m {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @batch_norm_zero_eps(%x: tensor<?x4xf32>) {
  // expected-error@+1 {{eps must be > 0, got 0}}
  %y = nn.batch_norm %x {eps = 0.0 : f64, momentum = 0.1 : f64} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @batch_norm_momentum_above_one(%x: tensor<?x4xf32>) {
  // expected-error@+1 {{momentum must be in [0, 1], got 1.5}}
  %y = nn.batch_norm %x {eps = 1.0e-05 : f64, momentum = 1.5 : f64} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @batch_norm_rank_five(%x: tensor<?x4x2x2x2xf32>) {
  // expected-error@+1 {{batch_norm expects an input of shape [N, C], [N, C, L] or [N, C, H, W], got [N, 4, 2, 2, 2]}}
  %y = nn.batch_norm %x {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x4x2x2x2xf32>) -> tensor<?x4x2x2x2xf32>
  return
}

// -----

func @batch_norm_counter_not_scalar(%x: tensor<?x4xf32>) {
  %m = nn.buffer "bn.running_mean" : tensor<4xf32>
  %v = nn.buffer "bn.running_var" : tensor<4xf32>
  %n = nn.buffer "bn.num_batches_tracked" : tensor<1xi64>
  // expected-error@+1 {{operand #3 must be 0D tensor of 64-bit signless integer values}}
  %y = nn.batch_norm %x running_mean %m running_var %v num_batches_tracked %n {eps = 1.0e-05 : f64, momentum = 0.1 : f64} : (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<1xi64>) -> tensor<?x4xf32>
  return
}

// -----

func @pool_larger_than_input(%x: tensor<?x6x3x3xf32>) {
  // expected-error@+1 {{avg_pool2d output would be empty: input height 3 (padded 3) is smaller than kernel_size 4}}
  %y = nn.avg_pool2d %x {kernel_size = [4, 4], stride = [4, 4]} : (tensor<?x6x3x3xf32>) -> tensor<?x6x1x1xf32>
  return
}

// -----

func @pool_zero_kernel(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{max_pool2d needs kernel_size and stride > 0}}
  %y = nn.max_pool2d %x {kernel_size = [0, 2], stride = [2, 2]} : (tensor<?x6x4x4xf32>) -> tensor<?x6x2x2xf32>
  return
}

// -----

func @flatten_dims_out_of_range(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{flatten dims start_dim=2, end_dim=7 are out of range for an input of shape [N, 6, 4, 4]}}
  %y = nn.flatten %x {start_dim = 2 : i64, end_dim = 7 : i64} : (tensor<?x6x4x4xf32>) -> tensor<?x96xf32>
  return
}

// -----

func @flatten_wrong_result(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{result shape [N, 95] does not match the inferred shape [N, 96]}}
  %y = nn.flatten %x {start_dim = 1 : i64, end_dim = -1 : i64} : (tensor<?x6x4x4xf32>) -> tensor<?x95xf32>
  return
}

// -----

func @dropout_p_one(%x: tensor<?x4xf32>) {
  // expected-error@+1 {{p must be in [0, 1), got 1}}
  %y = nn.dropout %x {p = 1.0 : f64} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @add_shape_mismatch(%a: tensor<?x4xf32>, %b: tensor<?x5xf32>) {
  // expected-error@+1 {{requires the same type for all operands and results}}
  %y = "nn.add"(%a, %b) : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x4xf32>
  return
}

// -----

func @param_empty_name() {
  // expected-error@+1 {{needs a non-empty state_dict name}}
  %w = nn.param "" : tensor<3xf32>
  return
}

// -----

func @param_value_wrong_type() {
  // expected-error@+1 {{value of type 'tensor<2xf32>' does not match the result type 'tensor<3xf32>'}}
  %w = nn.param "fc.bias" {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<3xf32>
  return
}

// -----

func @relu_result_type_differs(%x: tensor<?x4xf32>) {
  // expected-error@+1 {{requires the same type for all operands and results}}
  %y = "nn.relu"(%x) : (tensor<?x4xf32>) -> tensor<?x5xf32>
  return
}

// -----

func @fold_batch_norm_channel_mismatch(%w: tensor<4x3xf32>, %m: tensor<5xf32>, %v: tensor<5xf32>) {
  // expected-error@+1 {{running_mean must be [4], got [5]}}
  %w2, %b2 = nn.fold_batch_norm weight %w running_mean %m running_var %v {eps = 1.0e-05 : f64} : (tensor<4x3xf32>, tensor<5xf32>, tensor<5xf32>) -> (tensor<4x3xf32>, tensor<4xf32>)
  return
}

// -----

func @fold_batch_norm_gamma_without_beta(%m: tensor<4xf32>, %v: tensor<4xf32>, %g: tensor<4xf32>) {
  // expected-error@+1 {{needs both gamma and beta (affine) or neither}}
  %s, %t = nn.fold_batch_norm running_mean %m running_var %v gamma %g {eps = 1.0e-05 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func @fold_batch_norm_result_type(%w: tensor<4x3xf32>, %m: tensor<4xf32>, %v: tensor<4xf32>) {
  // expected-error@+1 {{folded_weight must be 'tensor<4x3xf32>', got 'tensor<4xf32>'}}
  %w2, %b2 = nn.fold_batch_norm weight %w running_mean %m running_var %v {eps = 1.0e-05 : f64} : (tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func @fold_batch_norm_eps(%m: tensor<4xf32>, %v: tensor<4xf32>) {
  // expected-error@+1 {{eps must be > 0, got 0}}
  %s, %t = nn.fold_batch_norm running_mean %m running_var %v {eps = 0.0 : f64} : (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func @conv_dilation_zero(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d needs dilation > 0, got 0}}
  %y = nn.conv2d %x, %w {dilation = [0, 1], padding = [0, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_negative_padding_end(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d needs kernel_size and stride > 0 and padding >= 0, got kernel_size 3, stride 1, padding 0, padding_end -1}}
  %y = nn.conv2d %x, %w {padding = [0, 0], padding_end = [-1, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_dilated_kernel_larger_than_input(%x: tensor<?x1x4x4xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d output would be empty: input height 4 (padded 4) is smaller than the dilated kernel 5 (kernel_size 3, dilation 2)}}
  %y = nn.conv2d %x, %w {dilation = [2, 2], padding = [0, 0], stride = [1, 1]} : (tensor<?x1x4x4xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x1x1xf32>
  return
}

// -----

func @conv_dilation_three_values(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d dilation must have 2 values [h, w], got 3}}
  %y = nn.conv2d %x, %w {dilation = [1, 1, 1], padding = [0, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_dilation_changes_the_shape(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // COM: dilation 2 spans 5: 8 - 5 + 1 = 4, not the undilated 6.
  // expected-error@+1 {{result shape [N, 6, 6, 6] does not match the inferred shape [N, 6, 4, 4]}}
  %y = nn.conv2d %x, %w {dilation = [2, 2], padding = [0, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_huge_padding(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d height window attribute 4294967296 is too large (at most 2^31)}}
  %y = nn.conv2d %x, %w {padding = [4294967296, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @conv_ceil_mode(%x: tensor<?x1x8x8xf32>, %w: tensor<6x1x3x3xf32>) {
  // expected-error@+1 {{conv2d has no ceil_mode}}
  %y = nn.conv2d %x, %w {ceil_mode, padding = [0, 0], stride = [1, 1]} : (tensor<?x1x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<?x6x6x6xf32>
  return
}

// -----

func @pool_negative_padding(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{avg_pool2d needs kernel_size and stride > 0 and padding >= 0, got kernel_size 2, stride 2, padding -1}}
  %y = nn.avg_pool2d %x {kernel_size = [2, 2], padding = [-1, 0], stride = [2, 2]} : (tensor<?x6x4x4xf32>) -> tensor<?x6x2x2xf32>
  return
}

// -----

func @pool_dilation_zero(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{max_pool2d needs dilation > 0, got 0}}
  %y = nn.max_pool2d %x {dilation = [1, 0], kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x4x4xf32>) -> tensor<?x6x2x2xf32>
  return
}

// -----

func @pool_kernel_larger_than_padded_input(%x: tensor<?x6x2x2xf32>) {
  // expected-error@+1 {{max_pool2d output would be empty: input height 2 (padded 4) is smaller than kernel_size 5}}
  %y = nn.max_pool2d %x {kernel_size = [5, 5], padding = [1, 1], stride = [1, 1]} : (tensor<?x6x2x2xf32>) -> tensor<?x6x1x1xf32>
  return
}

// -----

func @pool_padding_end_three_values(%x: tensor<?x6x4x4xf32>) {
  // expected-error@+1 {{avg_pool2d padding_end must have 2 values [h, w], got 3}}
  %y = nn.avg_pool2d %x {kernel_size = [2, 2], padding_end = [1, 1, 1], stride = [2, 2]} : (tensor<?x6x4x4xf32>) -> tensor<?x6x2x2xf32>
  return
}

// -----

func @pool_ceil_mode_changes_the_shape(%x: tensor<?x6x5x5xf32>) {
  // COM: ceil((5 - 2) / 2) + 1 = 3, where floor mode gives 2.
  // expected-error@+1 {{result shape [N, 6, 2, 2] does not match the inferred shape [N, 6, 3, 3]}}
  %y = nn.avg_pool2d %x {ceil_mode, kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x6x5x5xf32>) -> tensor<?x6x2x2xf32>
  return
}

// -----

func @softmax_axis_out_of_range(%x: tensor<?x10xf32>) {
  // expected-error@+1 {{softmax axis 2 is out of range for an input of shape [N, 10] (expected in [0, 1])}}
  %y = nn.softmax %x {axis = 2 : i64} : tensor<?x10xf32>
  return
}

// -----

func @log_softmax_negative_axis(%x: tensor<?x10xf32>) {
  // COM: the op's axis is normalized: the importer counts negative dims.
  // expected-error@+1 {{log_softmax axis -1 is out of range for an input of shape [N, 10] (expected in [0, 1])}}
  %y = nn.log_softmax %x {axis = -1 : i64} : tensor<?x10xf32>
  return
}

//===- ScalarReference.h - the nn ops, plainly, in double -------*- C++ -*-===//
//
// What each nn op computes (NNOps.td, PyTorch's eval-mode semantics),
// written as plain loops over C-order tensors in double precision, with no
// layouts, tiling or vectors: the reference OpReferenceTest.cpp compares
// the generated code with.
//
// Each element carries, besides its value, the sum of the magnitudes of the
// terms it is made of (for a linear layer Σ_k |w·x| + |b|, carried through
// every op). The float code may sum in any order, so its rounding error is
// bounded by a multiple of that sum, not of |value|: a dot product whose
// terms cancel has a tiny value and an error the size of its terms.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_CODEGEN_SCALARREFERENCE_H
#define KILN_TEST_UNIT_CODEGEN_SCALARREFERENCE_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::reference {

/// A tensor in C order (the last dimension fastest), as PyTorch and the
/// generated code's buffers store it.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> value;
  /// Per element: the sum of the magnitudes of the terms behind the value.
  std::vector<double> magnitude;

  Tensor() = default;
  /// Zeros of `shape`.
  explicit Tensor(std::vector<int64_t> shape);
  /// Data read exactly from float (an input or a parameter): its own
  /// magnitude.
  static Tensor fromFloats(std::vector<int64_t> shape, const std::vector<float> &data);

  int64_t size() const { return static_cast<int64_t>(value.size()); }
  int64_t dim(size_t i) const { return shape[i]; }
};

/// "[3, 6, 8, 8]".
std::string formatShape(const std::vector<int64_t> &shape);

/// The index of element `flat` of `shape`, as "[n, c, h, w]".
std::string formatIndex(const std::vector<int64_t> &shape, int64_t flat);

enum class Activation { None, Relu, Sigmoid, Tanh };

/// y[..., o] = act(b[o] + Σ_k w[o, k] · x[..., k]); x is [N, ..., K],
/// weight [O, K], bias [O] or null.
Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias,
              Activation activation = Activation::None);

struct Conv2DParams {
  int strideH = 1, strideW = 1;
  int padH = 0, padW = 0;
  /// The bottom and right padding; -1: the same as padH, padW.
  int padEndH = -1, padEndW = -1;
  int dilationH = 1, dilationW = 1;
};

/// y[n, o, i, j] = act(b[o] + Σ_{c, ky, kx} w[o, c, ky, kx] ·
///                   x[n, c, i·sH + ky·dH − pH, j·sW + kx·dW − pW]), zero
/// outside x; oh = (h + pH + pEndH − dH·(kH − 1) − 1) / sH + 1 (floor).
Tensor conv2d(const Tensor &x, const Tensor &weight, const Tensor *bias,
              const Conv2DParams &params, Activation activation = Activation::None);

struct Pool2DParams {
  int kH = 1, kW = 1;
  int strideH = 1, strideW = 1;
  int padH = 0, padW = 0;
  /// The bottom and right padding; -1: the same as padH, padW.
  int padEndH = -1, padEndW = -1;
  int dilationH = 1, dilationW = 1;
  bool ceilMode = false;
  bool countIncludePad = false;
};

/// The output extent of a pool along one dimension, PyTorch's
/// pooling_output_shape (ceil_mode's last window starts inside the input
/// or its begin padding).
int64_t poolOutputSize(int64_t size, int kernel, int stride, int padBegin, int padEnd,
                       int dilation, bool ceilMode);

/// torch.max_pool2d: the window's in-bounds taps (padding never wins), a
/// NaN wins; −Inf for a window with none.
Tensor maxPool2d(const Tensor &x, const Pool2DParams &params);
/// torch.avg_pool2d (CPU kernel): the in-bounds sum over the divisor, the
/// window clipped to the padded extent (countIncludePad) or its in-bounds
/// count; 0 for a window with no element in bounds.
Tensor avgPool2d(const Tensor &x, const Pool2DParams &params);

/// Windows of kH × kW every (sH, sW), no padding.
Tensor maxPool2d(const Tensor &x, int kH, int kW, int sH, int sW);
Tensor avgPool2d(const Tensor &x, int kH, int kW, int sH, int sW);

/// softmax (or log_softmax) along dimension `axis`, as PyTorch: m the max
/// (a NaN wins), t = x − m rounded to f32 (as the f32 kernels compute it:
/// FLT_MAX − (−FLT_MAX) is −Inf), y = exp(t) / Σ exp(t) or t − log Σ exp(t).
Tensor softmax(const Tensor &x, int64_t axis, bool isLog);

Tensor activate(const Tensor &x, Activation activation);

Tensor add(const Tensor &a, const Tensor &b);

/// Dimensions start..end merged into one (negative dims count from the end).
Tensor flatten(const Tensor &x, int64_t startDim, int64_t endDim);

/// track_running_stats=false: per channel (dim 1), the mean and the biased
/// variance over every other dimension of this batch;
/// y = (x − mean) / sqrt(var + eps) · γ + β, with γ = 1, β = 0 without
/// weight and bias (affine=false).
Tensor batchNormBatchStats(const Tensor &x, const Tensor *weight, const Tensor *bias,
                           double eps);

/// Eval mode with running statistics:
/// y = (x − mean[c]) / sqrt(var[c] + eps) · γ[c] + β[c].
Tensor batchNormRunningStats(const Tensor &x, const Tensor &mean, const Tensor &var,
                             const Tensor *weight, const Tensor *bias, double eps);

/// y = act(x · scale[c] + shift[c]) per channel (dim 1).
Tensor scaleShift(const Tensor &x, const Tensor &scale, const Tensor &shift,
                  Activation activation = Activation::None);

} // namespace kiln::reference

#endif // KILN_TEST_UNIT_CODEGEN_SCALARREFERENCE_H

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
};

/// y[n, o, i, j] = act(b[o] + Σ_{c, ky, kx} w[o, c, ky, kx] ·
///                   x[n, c, i·sH + ky − pH, j·sW + kx − pW]), zero outside x.
Tensor conv2d(const Tensor &x, const Tensor &weight, const Tensor *bias,
              const Conv2DParams &params, Activation activation = Activation::None);

/// Windows of kH × kW every (sH, sW), no padding.
Tensor maxPool2d(const Tensor &x, int kH, int kW, int sH, int sW);
Tensor avgPool2d(const Tensor &x, int kH, int kW, int sH, int sW);

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

//===- BatchNormFold.h - the arithmetic of folding an eval BatchNorm -*- C++ -*-===//
//
// One formula, two evaluators: nn-fold-batchnorm computes it on bound
// constants in double (C++), code generation on weights loaded at run time
// in Halide (double, under strict_float), so embedded and external weights
// give the same bits. T is double or Halide::Expr; sqrt is found by
// argument-dependent lookup (std::sqrt or Halide::sqrt).
//
//   y = γ · (x − mean) / sqrt(var + eps) + β = x · scale + shift
//   scale = γ / sqrt(var + eps),  shift = β − mean · scale
//   folded into y = W·x + b:  W' = W · scale[o],  b' = b · scale + shift
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DIALECT_NN_IR_BATCHNORMFOLD_H
#define KILN_DIALECT_NN_IR_BATCHNORMFOLD_H

#include <cmath>

namespace kiln::nn::fold {

template <typename T>
T scale(T gamma, T runningVar, T eps) {
  using std::sqrt;
  return gamma / sqrt(runningVar + eps);
}

template <typename T>
T shift(T beta, T runningMean, T scale) {
  return beta - runningMean * scale;
}

template <typename T>
T weight(T w, T scale) {
  return w * scale;
}

template <typename T>
T bias(T b, T scale, T shift) {
  return b * scale + shift;
}

} // namespace kiln::nn::fold

#endif // KILN_DIALECT_NN_IR_BATCHNORMFOLD_H

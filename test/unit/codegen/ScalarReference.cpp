//===- ScalarReference.cpp - the nn ops, plainly, in double ---------------===//
#include "ScalarReference.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace kiln::reference {

namespace {

int64_t product(const std::vector<int64_t> &shape, size_t from, size_t to) {
  int64_t count = 1;
  for (size_t i = from; i < to; ++i)
    count *= shape[i];
  return count;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// f(x) and the magnitude of the result: an error δ in x becomes f'(x)·δ
/// (relu: at most δ), and f itself rounds relative to |f(x)|.
void applyActivation(Activation activation, double &value, double &magnitude) {
  switch (activation) {
  case Activation::None:
    return;
  case Activation::Relu:
    value = std::max(value, 0.0);
    return;
  case Activation::Sigmoid: {
    double y = sigmoid(value);
    value = y;
    magnitude = y + y * (1 - y) * magnitude;
    return;
  }
  case Activation::Tanh: {
    double y = std::tanh(value);
    value = y;
    magnitude = std::fabs(y) + (1 - y * y) * magnitude;
    return;
  }
  }
}

/// Elements per channel (the dimensions after 1) of an [N, C, ...] tensor.
int64_t perChannel(const Tensor &x) { return product(x.shape, 2, x.shape.size()); }

Tensor pool2d(const Tensor &x, int kH, int kW, int sH, int sW, bool isMax) {
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  int64_t oh = (h - kH) / sH + 1, ow = (w - kW) / sW + 1;
  Tensor y({n, c, oh, ow});
  int64_t out = 0;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j, ++out) {
          double value = isMax ? -INFINITY : 0.0, magnitude = 0.0;
          for (int ky = 0; ky < kH; ++ky)
            for (int kx = 0; kx < kW; ++kx) {
              int64_t at = ((in * c + ic) * h + i * sH + ky) * w + j * sW + kx;
              if (isMax) {
                value = std::max(value, x.value[at]);
                magnitude = std::max(magnitude, x.magnitude[at]);
              } else {
                value += x.value[at];
                magnitude += x.magnitude[at];
              }
            }
          y.value[out] = isMax ? value : value / (kH * kW);
          y.magnitude[out] = isMax ? magnitude : magnitude / (kH * kW);
        }
  return y;
}

} // namespace

Tensor::Tensor(std::vector<int64_t> shape)
    : shape(std::move(shape)), value(product(this->shape, 0, this->shape.size()), 0.0),
      magnitude(value.size(), 0.0) {}

Tensor Tensor::fromFloats(std::vector<int64_t> shape, const std::vector<float> &data) {
  Tensor t(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) {
    t.value[i] = data[i];
    t.magnitude[i] = std::fabs(static_cast<double>(data[i]));
  }
  return t;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

std::string formatIndex(const std::vector<int64_t> &shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    index[i] = flat % shape[i];
    flat /= shape[i];
  }
  return formatShape(index);
}

Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias,
              Activation activation) {
  int64_t outFeatures = weight.dim(0), inFeatures = weight.dim(1);
  int64_t rows = product(x.shape, 0, x.shape.size() - 1);
  std::vector<int64_t> shape = x.shape;
  shape.back() = outFeatures;
  Tensor y(shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < outFeatures; ++o) {
      double sum = bias ? bias->value[o] : 0.0;
      double magnitude = bias ? bias->magnitude[o] : 0.0;
      for (int64_t k = 0; k < inFeatures; ++k) {
        double w = weight.value[o * inFeatures + k];
        sum += w * x.value[r * inFeatures + k];
        magnitude += std::fabs(w) * x.magnitude[r * inFeatures + k];
      }
      applyActivation(activation, sum, magnitude);
      y.value[r * outFeatures + o] = sum;
      y.magnitude[r * outFeatures + o] = magnitude;
    }
  return y;
}

Tensor conv2d(const Tensor &x, const Tensor &weight, const Tensor *bias,
              const Conv2DParams &p, Activation activation) {
  int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), w = x.dim(3);
  int64_t cout = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
  int64_t padEndH = p.padEndH < 0 ? p.padH : p.padEndH;
  int64_t padEndW = p.padEndW < 0 ? p.padW : p.padEndW;
  int64_t oh = (h + p.padH + padEndH - p.dilationH * (kh - 1) - 1) / p.strideH + 1;
  int64_t ow = (w + p.padW + padEndW - p.dilationW * (kw - 1) - 1) / p.strideW + 1;
  Tensor y({n, cout, oh, ow});
  int64_t out = 0;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j, ++out) {
          double sum = bias ? bias->value[o] : 0.0;
          double magnitude = bias ? bias->magnitude[o] : 0.0;
          for (int64_t c = 0; c < cin; ++c)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                int64_t iy = i * p.strideH + ky * p.dilationH - p.padH;
                int64_t ix = j * p.strideW + kx * p.dilationW - p.padW;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue; // zero padding
                double wv = weight.value[((o * cin + c) * kh + ky) * kw + kx];
                int64_t at = ((in * cin + c) * h + iy) * w + ix;
                sum += wv * x.value[at];
                magnitude += std::fabs(wv) * x.magnitude[at];
              }
          applyActivation(activation, sum, magnitude);
          y.value[out] = sum;
          y.magnitude[out] = magnitude;
        }
  return y;
}

int64_t poolOutputSize(int64_t size, int kernel, int stride, int padBegin, int padEnd,
                       int dilation, bool ceilMode) {
  // PyTorch's pooling_output_shape, with div_rtn (rounding down).
  int64_t numerator = size + padBegin + padEnd - dilation * (kernel - 1) - 1 +
                      (ceilMode ? stride - 1 : 0);
  int64_t out = static_cast<int64_t>(std::floor(static_cast<double>(numerator) / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padBegin)
    --out;
  return out;
}

namespace {

/// One pool over padded windows, PyTorch's CPU kernels written out.
Tensor paddedPool2d(const Tensor &x, const Pool2DParams &p, bool isMax) {
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  int padEndH = p.padEndH < 0 ? p.padH : p.padEndH, padEndW = p.padEndW < 0 ? p.padW : p.padEndW;
  int64_t oh = poolOutputSize(h, p.kH, p.strideH, p.padH, padEndH, p.dilationH, p.ceilMode);
  int64_t ow = poolOutputSize(w, p.kW, p.strideW, p.padW, padEndW, p.dilationW, p.ceilMode);
  Tensor y({n, c, oh, ow});
  int64_t out = 0;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j, ++out) {
          int64_t hs = i * p.strideH - p.padH, ws = j * p.strideW - p.padW;
          double value = isMax ? -INFINITY : 0.0, magnitude = 0.0;
          int64_t count = 0;
          for (int ky = 0; ky < p.kH; ++ky)
            for (int kx = 0; kx < p.kW; ++kx) {
              int64_t iy = hs + ky * p.dilationH, ix = ws + kx * p.dilationW;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                continue; // padding: never a max, 0 in a sum
              int64_t at = ((in * c + ic) * h + iy) * w + ix;
              double v = x.value[at];
              ++count;
              if (isMax) {
                if (v > value || std::isnan(v))
                  value = v;
                magnitude = std::max(magnitude, x.magnitude[at]);
              } else {
                value += v;
                magnitude += x.magnitude[at];
              }
            }
          if (!isMax) {
            // The window clipped to the padded extent, before clipping to
            // the input: (hend − hstart) · (wend − wstart).
            int64_t he = std::min<int64_t>(hs + p.kH, h + padEndH);
            int64_t we = std::min<int64_t>(ws + p.kW, w + padEndW);
            int64_t divisor = p.countIncludePad ? (he - hs) * (we - ws) : count;
            value = divisor > 0 ? value / divisor : 0.0;
            magnitude = divisor > 0 ? magnitude / divisor : 0.0;
          }
          y.value[out] = value;
          y.magnitude[out] = magnitude;
        }
  return y;
}

} // namespace

Tensor maxPool2d(const Tensor &x, const Pool2DParams &params) {
  return paddedPool2d(x, params, /*isMax=*/true);
}

Tensor avgPool2d(const Tensor &x, const Pool2DParams &params) {
  return paddedPool2d(x, params, /*isMax=*/false);
}

Tensor softmax(const Tensor &x, int64_t axis, bool isLog) {
  int64_t outer = product(x.shape, 0, axis), n = x.dim(axis),
          inner = product(x.shape, axis + 1, x.shape.size());
  Tensor y(x.shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double m = x.value[at(0)], mMagnitude = 0;
      for (int64_t k = 0; k < n; ++k) {
        double v = x.value[at(k)];
        if (v > m || std::isnan(v))
          m = v;
        mMagnitude = std::max(mMagnitude, x.magnitude[at(k)]);
      }
      auto shifted = [&](int64_t k) {
        return static_cast<double>(static_cast<float>(x.value[at(k)] - m));
      };
      double sum = 0;
      for (int64_t k = 0; k < n; ++k)
        sum += std::exp(shifted(k));
      for (int64_t k = 0; k < n; ++k) {
        double t = shifted(k);
        // An error δ in x or m moves t by δ: exp(t) relatively by δ, and
        // log_softmax by δ; both also round relative to their terms.
        double terms = 1 + x.magnitude[at(k)] + mMagnitude;
        if (isLog) {
          y.value[at(k)] = t - std::log(sum);
          y.magnitude[at(k)] = terms + std::log(sum);
        } else {
          y.value[at(k)] = std::exp(t) / sum;
          y.magnitude[at(k)] = std::exp(t) / sum * terms;
        }
      }
    }
  return y;
}

Tensor maxPool2d(const Tensor &x, int kH, int kW, int sH, int sW) {
  return pool2d(x, kH, kW, sH, sW, /*isMax=*/true);
}

Tensor avgPool2d(const Tensor &x, int kH, int kW, int sH, int sW) {
  return pool2d(x, kH, kW, sH, sW, /*isMax=*/false);
}

Tensor activate(const Tensor &x, Activation activation) {
  Tensor y = x;
  for (int64_t i = 0; i < y.size(); ++i)
    applyActivation(activation, y.value[i], y.magnitude[i]);
  return y;
}

Tensor add(const Tensor &a, const Tensor &b) {
  Tensor y(a.shape);
  for (int64_t i = 0; i < y.size(); ++i) {
    y.value[i] = a.value[i] + b.value[i];
    y.magnitude[i] = a.magnitude[i] + b.magnitude[i];
  }
  return y;
}

Tensor flatten(const Tensor &x, int64_t startDim, int64_t endDim) {
  int64_t rank = x.shape.size();
  int64_t start = startDim < 0 ? startDim + rank : startDim;
  int64_t end = endDim < 0 ? endDim + rank : endDim;
  std::vector<int64_t> shape(x.shape.begin(), x.shape.begin() + start);
  shape.push_back(product(x.shape, start, end + 1));
  shape.insert(shape.end(), x.shape.begin() + end + 1, x.shape.end());
  Tensor y = x; // C order: merging dimensions keeps every element in place
  y.shape = shape;
  return y;
}

Tensor batchNormBatchStats(const Tensor &x, const Tensor *weight, const Tensor *bias,
                           double eps) {
  int64_t n = x.dim(0), c = x.dim(1), inner = perChannel(x);
  Tensor y(x.shape);
  for (int64_t ic = 0; ic < c; ++ic) {
    double sum = 0;
    for (int64_t in = 0; in < n; ++in)
      for (int64_t i = 0; i < inner; ++i)
        sum += x.value[(in * c + ic) * inner + i];
    double count = static_cast<double>(n * inner), mean = sum / count, squares = 0;
    for (int64_t in = 0; in < n; ++in)
      for (int64_t i = 0; i < inner; ++i) {
        double d = x.value[(in * c + ic) * inner + i] - mean;
        squares += d * d;
      }
    double var = squares / count; // biased, as PyTorch normalizes
    double gamma = weight ? weight->value[ic] : 1.0, beta = bias ? bias->value[ic] : 0.0;
    double invStd = 1.0 / std::sqrt(var + eps);
    for (int64_t in = 0; in < n; ++in)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t at = (in * c + ic) * inner + i;
        y.value[at] = (x.value[at] - mean) * invStd * gamma + beta;
        y.magnitude[at] =
            (x.magnitude[at] + std::fabs(mean)) * invStd * std::fabs(gamma) + std::fabs(beta);
      }
  }
  return y;
}

Tensor batchNormRunningStats(const Tensor &x, const Tensor &mean, const Tensor &var,
                             const Tensor *weight, const Tensor *bias, double eps) {
  int64_t n = x.dim(0), c = x.dim(1), inner = perChannel(x);
  Tensor y(x.shape);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic) {
      double gamma = weight ? weight->value[ic] : 1.0, beta = bias ? bias->value[ic] : 0.0;
      double invStd = 1.0 / std::sqrt(var.value[ic] + eps);
      for (int64_t i = 0; i < inner; ++i) {
        int64_t at = (in * c + ic) * inner + i;
        y.value[at] = (x.value[at] - mean.value[ic]) * invStd * gamma + beta;
        y.magnitude[at] = (x.magnitude[at] + std::fabs(mean.value[ic])) * invStd *
                              std::fabs(gamma) +
                          std::fabs(beta);
      }
    }
  return y;
}

Tensor scaleShift(const Tensor &x, const Tensor &scale, const Tensor &shift,
                  Activation activation) {
  int64_t n = x.dim(0), c = x.dim(1), inner = perChannel(x);
  Tensor y(x.shape);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t at = (in * c + ic) * inner + i;
        double value = x.value[at] * scale.value[ic] + shift.value[ic];
        double magnitude = x.magnitude[at] * std::fabs(scale.value[ic]) + std::fabs(shift.value[ic]);
        applyActivation(activation, value, magnitude);
        y.value[at] = value;
        y.magnitude[at] = magnitude;
      }
  return y;
}

} // namespace kiln::reference

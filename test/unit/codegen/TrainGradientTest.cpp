//===- TrainGradientTest.cpp - gradient ops against finite differences ----===//
//
// Each gradient op of NNTrainOps.td, lowered to Halide and JIT-run in f32,
// against central differences of a plain double-precision forward written
// here: for a loss L = Σ r · forward(params) with random weights r (the
// op's output_grad), every element of every gradient the op gives must be
// (L(p + h) − L(p − h)) / 2h within 1e-4 · (1 + |fd|), h = 1e-4 (1e-2 for
// logits of ±1e4).
//
// Why that tolerance: the ops evaluate sums of at most ~50 products of
// values below ~10 in f32 (relative error about 1e-6 of the terms), and
// the double forward's central difference is exact up to O(h²) (the
// linear and pooling forwards exactly, being linear), so a correct op lands
// within about 1e-5; a wrong index, stride, padding, missing term or tie
// rule moves gradients by the size of a term (0.01 to 1), 100 to 10000
// tolerances. Max pooling and relu are differentiated away from ties and
// zero (inputs distinct, |x| >= 0.05); their tie rules are checked
// directly (PyTorch's: the first maximum, 0 at exactly 0).
//
//===----------------------------------------------------------------------===//
#include "TestContext.h"
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Driver.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

namespace {

using Shape = std::vector<int64_t>;

struct Tensor {
  Shape shape; // batch included
  std::vector<double> data;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};
using Tensors = std::map<std::string, Tensor>;

/// splitmix64 in [lo, hi).
struct Random {
  uint64_t state;
  double uniform(double lo, double hi) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
  }
};

Tensor random(Shape shape, Random &rng, double lo = -1, double hi = 1, double awayFromZero = 0) {
  Tensor t{shape, {}};
  t.data.resize(t.size());
  for (double &v : t.data) {
    do
      v = static_cast<float>(rng.uniform(lo, hi)); // exactly representable in f32
    while (std::fabs(v) < awayFromZero);
  }
  return t;
}

/// An op's test: the IR of @step, its arguments (tensor names; "labels" is
/// the i64 label vector), for each result the tensor it is the gradient of
/// ("" for a result not checked), and the double loss.
struct GradCase {
  std::string ir;
  std::vector<std::string> arguments;
  std::vector<std::string> gradientOf;
  Tensors tensors;
  std::vector<int64_t> labels;
  std::function<double(const Tensors &)> loss;
  double h = 1e-4;
};

using kiln::test::Context;

std::vector<int> extents(const Shape &shape) { return std::vector<int>(shape.rbegin(), shape.rend()); }

/// Runs @step on the case's tensors: its results, as doubles.
std::vector<std::vector<double>> run(const GradCase &c) {
  Context ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString(c.ir, &ctx.context);
  EXPECT_TRUE(module) << ctx.diagnostics;
  if (!module)
    return {};
  mlir::FailureOr<kiln::codegen::LoweredModel> lowered =
      kiln::codegen::lowerToHalide(*module, {}, "step");
  EXPECT_TRUE(succeeded(lowered)) << ctx.diagnostics;
  if (failed(lowered))
    return {};
  kiln::codegen::LoweredModel &model = *lowered;
  std::vector<Halide::Buffer<float>> floats;
  Halide::Buffer<int64_t> labels;
  for (size_t i = 0; i < c.arguments.size(); ++i) {
    if (c.arguments[i] == "labels") {
      labels = Halide::Buffer<int64_t>(static_cast<int>(c.labels.size()));
      for (size_t k = 0; k < c.labels.size(); ++k)
        labels(static_cast<int>(k)) = c.labels[k];
      model.inputs[i].param.set(labels);
      continue;
    }
    const Tensor &t = c.tensors.at(c.arguments[i]);
    Halide::Buffer<float> b(extents(t.shape));
    for (int64_t k = 0; k < t.size(); ++k)
      b.data()[k] = static_cast<float>(t.data[k]);
    floats.push_back(b);
    model.inputs[i].param.set(b);
  }
  int64_t batch = c.tensors.at(c.arguments[0] == "labels" ? c.arguments[1] : c.arguments[0]).shape[0];
  std::vector<Halide::Buffer<>> outs;
  for (const kiln::codegen::EntryTensor &out : model.outputs) {
    Shape shape = out.shape;
    if (!shape.empty() && shape[0] < 0)
      shape[0] = batch;
    outs.push_back(Halide::Buffer<>(out.type, extents(shape)));
  }
  model.realize(Halide::Realization(outs), kiln::codegen::jitTarget());
  std::vector<std::vector<double>> results;
  for (Halide::Buffer<> &b : outs) {
    std::vector<double> values(b.number_of_elements());
    for (size_t k = 0; k < values.size(); ++k)
      values[k] = static_cast<const float *>(b.data())[k];
    results.push_back(values);
  }
  return results;
}

void expectGradients(const GradCase &c) {
  std::vector<std::vector<double>> results = run(c);
  ASSERT_EQ(results.size(), c.gradientOf.size());
  for (size_t r = 0; r < results.size(); ++r) {
    if (c.gradientOf[r].empty())
      continue;
    Tensors t = c.tensors;
    Tensor &p = t.at(c.gradientOf[r]);
    ASSERT_EQ(results[r].size(), p.data.size()) << c.gradientOf[r];
    for (size_t k = 0; k < p.data.size(); ++k) {
      double saved = p.data[k];
      p.data[k] = saved + c.h;
      double up = c.loss(t);
      p.data[k] = saved - c.h;
      double down = c.loss(t);
      p.data[k] = saved;
      double fd = (up - down) / (2 * c.h);
      EXPECT_NEAR(results[r][k], fd, 1e-4 * (1 + std::fabs(fd)))
          << "d loss / d " << c.gradientOf[r] << "[" << k << "]";
    }
  }
}

double dot(const Tensor &r, const std::vector<double> &y) {
  double sum = 0;
  for (size_t k = 0; k < y.size(); ++k)
    sum += r.data[k] * y[k];
  return sum;
}

std::string tensorType(const std::string &dims) { return "tensor<" + dims + "xf32>"; }

/// Linear's three gradient ops on [n, in] → [n, out].
void linearCase(int n, int in, int out, uint64_t seed) {
  Random rng{seed};
  GradCase c;
  c.tensors = {{"dy", random({n, out}, rng)}, {"x", random({n, in}, rng)},
               {"w", random({out, in}, rng)}, {"b", random({out}, rng)}};
  std::string dy = tensorType("?x" + std::to_string(out)), x = tensorType("?x" + std::to_string(in)),
              w = tensorType(std::to_string(out) + "x" + std::to_string(in)),
              b = tensorType(std::to_string(out));
  c.ir = "func @step(%dy: " + dy + ", %x: " + x + ", %w: " + w + ") -> (" + x + ", " + w + ", " +
         b + ") {\n"
         "  %dx = nn.linear_grad_input %dy, %w : (" + dy + ", " + w + ") -> " + x + "\n"
         "  %dw = nn.linear_grad_weight %dy, %x : (" + dy + ", " + x + ") -> " + w + "\n"
         "  %db = nn.linear_grad_bias %dy : (" + dy + ") -> " + b + "\n"
         "  return %dx, %dw, %db : " + x + ", " + w + ", " + b + "\n}";
  c.arguments = {"dy", "x", "w"};
  c.gradientOf = {"x", "w", "b"};
  c.loss = [=](const Tensors &t) {
    const Tensor &x = t.at("x"), &w = t.at("w"), &b = t.at("b");
    std::vector<double> y(n * out);
    for (int i = 0; i < n; ++i)
      for (int o = 0; o < out; ++o) {
        double s = b.data[o];
        for (int k = 0; k < in; ++k)
          s += x.data[i * in + k] * w.data[o * in + k];
        y[i * out + o] = s;
      }
    return dot(t.at("dy"), y);
  };
  expectGradients(c);
}

// Narrower than a vector: computed whole.
TEST(GradientCheck, Linear) { linearCase(5, 4, 3, 1); }

// Wide enough for the register block (Schedule.cpp, scheduleMatrixProduct):
// 53 inputs are a block of whole vectors and a last one shifted inwards on
// every target; 19 rows and 21 outputs are not multiples of its rows; a
// batch of 3 is below them (one row per block).
TEST(GradientCheck, LinearRegisterBlocked) {
  linearCase(19, 53, 21, 7);
  linearCase(3, 53, 21, 8);
}

/// Where a conv2d's kernel falls: stride, begin padding (top, left), end
/// padding (bottom, right) and dilation, each [h, w].
struct ConvWindow {
  int sh, sw, ph, pw, peh, pew, dh = 1, dw = 1;
};

/// Conv2d's three gradient ops: [n, ci, h, w] → [n, co, oh, ow], kernel
/// kh × kw placed by `win`.
void convWindowCase(int n, int ci, int h, int w, int co, int kh, int kw, ConvWindow win,
                    uint64_t seed) {
  Random rng{seed};
  const int oh = (h + win.ph + win.peh - win.dh * (kh - 1) - 1) / win.sh + 1;
  const int ow = (w + win.pw + win.pew - win.dw * (kw - 1) - 1) / win.sw + 1;
  GradCase c;
  c.tensors = {{"dy", random({n, co, oh, ow}, rng)}, {"x", random({n, ci, h, w}, rng)},
               {"w", random({co, ci, kh, kw}, rng)}, {"b", random({co}, rng)}};
  auto dims = [](std::vector<int> d) {
    std::string text;
    for (int v : d)
      text += (text.empty() ? "" : "x") + (v < 0 ? std::string("?") : std::to_string(v));
    return tensorType(text);
  };
  std::string dy = dims({-1, co, oh, ow}), x = dims({-1, ci, h, w}), wt = dims({co, ci, kh, kw}),
              b = dims({co});
  auto pair = [](int a, int b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; };
  std::string attrs = "{";
  if (win.dh != 1 || win.dw != 1)
    attrs += "dilation = " + pair(win.dh, win.dw) + ", ";
  attrs += "padding = " + pair(win.ph, win.pw) + ", ";
  if (win.peh != win.ph || win.pew != win.pw)
    attrs += "padding_end = " + pair(win.peh, win.pew) + ", ";
  attrs += "stride = " + pair(win.sh, win.sw) + "}";
  c.ir = "func @step(%dy: " + dy + ", %x: " + x + ", %w: " + wt + ") -> (" + x + ", " + wt +
         ", " + b + ") {\n"
         "  %dx = nn.conv2d_grad_input %dy, %w " + attrs + " : (" + dy + ", " + wt + ") -> " + x +
         "\n  %dw = nn.conv2d_grad_weight %dy, %x " + attrs + " : (" + dy + ", " + x + ") -> " +
         wt + "\n  %db = nn.conv2d_grad_bias %dy : (" + dy + ") -> " + b +
         "\n  return %dx, %dw, %db : " + x + ", " + wt + ", " + b + "\n}";
  c.arguments = {"dy", "x", "w"};
  c.gradientOf = {"x", "w", "b"};
  c.loss = [=](const Tensors &t) {
    const Tensor &x = t.at("x"), &wt = t.at("w"), &b = t.at("b");
    std::vector<double> y(n * co * oh * ow);
    for (int in = 0; in < n; ++in)
      for (int o = 0; o < co; ++o)
        for (int yy = 0; yy < oh; ++yy)
          for (int xx = 0; xx < ow; ++xx) {
            double sum = b.data[o];
            for (int i = 0; i < ci; ++i)
              for (int ky = 0; ky < kh; ++ky)
                for (int kx = 0; kx < kw; ++kx) {
                  int iy = yy * win.sh - win.ph + ky * win.dh;
                  int ix = xx * win.sw - win.pw + kx * win.dw;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                    continue;
                  sum += x.data[((in * ci + i) * h + iy) * w + ix] *
                         wt.data[((o * ci + i) * kh + ky) * kw + kx];
                }
            y[((in * co + o) * oh + yy) * ow + xx] = sum;
          }
    return dot(t.at("dy"), y);
  };
  expectGradients(c);
}

/// Stride s and padding p on both sides, no dilation.
void convCase(int n, int ci, int h, int w, int co, int kh, int kw, int s, int p, uint64_t seed) {
  convWindowCase(n, ci, h, w, co, kh, kw, ConvWindow{s, s, p, p, p, p}, seed);
}

TEST(GradientCheck, Conv2DStridePaddingBias) { convCase(2, 2, 5, 6, 3, 3, 2, 2, 1, 2); }

// A stride of 2 on a row of 7 with a 3x2 kernel: the input gradient's code
// once crashed here (a misaligned vector spill; TrainLowering.cpp).
TEST(GradientCheck, Conv2DStride2OddWidth) { convCase(2, 3, 8, 7, 2, 3, 2, 2, 0, 18); }

// Dilated taps, with stride 1 (dX as a convolution of the padded dY) and
// with strides; rectangular.
TEST(GradientCheck, Conv2DDilation) {
  convWindowCase(2, 2, 7, 8, 3, 3, 3, ConvWindow{1, 1, 1, 1, 1, 1, 2, 2}, 14);
  convWindowCase(2, 2, 9, 8, 3, 3, 2, ConvWindow{2, 1, 1, 0, 1, 0, 2, 3}, 15);
}

// ONNX's asymmetric pads: begin and end padding differ (the end padding
// only adds output rows and columns), with dilation and stride.
TEST(GradientCheck, Conv2DAsymmetricPadding) {
  convWindowCase(2, 2, 6, 7, 3, 3, 3, ConvWindow{1, 1, 0, 1, 2, 0}, 16);
  convWindowCase(2, 3, 8, 7, 2, 3, 2, ConvWindow{2, 2, 1, 0, 0, 2, 1, 2}, 17);
}

// Stride 1 (dX as a convolution of the zero-padded dY), with and without
// padding; output rows of 8 (dW in vectors of 8 partial sums, 4 with SSE).
TEST(GradientCheck, Conv2DStride1) {
  convCase(3, 2, 6, 8, 3, 3, 3, 1, 1, 12);
  convCase(2, 3, 5, 9, 4, 2, 2, 1, 0, 13);
}

/// Train-mode BatchNorm's output in double: batch mean, biased variance.
std::vector<double> batchNorm(const Tensor &x, const Tensor *g, const Tensor *b, double eps) {
  int64_t n = x.shape[0], ch = x.shape[1], inner = x.size() / (n * ch);
  std::vector<double> y(x.size());
  for (int64_t c = 0; c < ch; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k)
        mean += x.data[(i * ch + c) * inner + k];
    mean /= n * inner;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k)
        var += std::pow(x.data[(i * ch + c) * inner + k] - mean, 2);
    var /= n * inner;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        int64_t at = (i * ch + c) * inner + k;
        double xhat = (x.data[at] - mean) / std::sqrt(var + eps);
        y[at] = g ? g->data[c] * xhat + b->data[c] : xhat;
      }
  }
  return y;
}

TEST(GradientCheck, BatchNorm2DTrainMode) {
  Random rng{3};
  GradCase c;
  c.tensors = {{"dy", random({3, 2, 2, 3}, rng)}, {"x", random({3, 2, 2, 3}, rng, -2, 3)},
               {"g", random({2}, rng, 0.5, 2)}, {"b", random({2}, rng)}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x2x2x3xf32>, %x: tensor<?x2x2x3xf32>, %g: tensor<2xf32>)
        -> (tensor<?x2x2x3xf32>, tensor<2xf32>, tensor<2xf32>) {
      %mean, %var = nn.batch_norm_stats %x : (tensor<?x2x2x3xf32>) -> (tensor<2xf32>, tensor<2xf32>)
      %dx, %dg, %db = nn.batch_norm_grad %dy, %x, %mean, %var weight %g {eps = 1.0e-05 : f64} : (tensor<?x2x2x3xf32>, tensor<?x2x2x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<?x2x2x3xf32>, tensor<2xf32>, tensor<2xf32>)
      return %dx, %dg, %db : tensor<?x2x2x3xf32>, tensor<2xf32>, tensor<2xf32>
    })mlir";
  c.arguments = {"dy", "x", "g"};
  c.gradientOf = {"x", "g", "b"};
  c.loss = [](const Tensors &t) {
    return dot(t.at("dy"), batchNorm(t.at("x"), &t.at("g"), &t.at("b"), 1e-5));
  };
  expectGradients(c);
}

TEST(GradientCheck, BatchNorm1DTrainModeWithoutAffine) {
  Random rng{4};
  GradCase c;
  c.tensors = {{"dy", random({4, 3}, rng)}, {"x", random({4, 3}, rng, -2, 3)}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x3xf32>, %x: tensor<?x3xf32>) -> (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>) {
      %mean, %var = nn.batch_norm_stats %x : (tensor<?x3xf32>) -> (tensor<3xf32>, tensor<3xf32>)
      %dx, %dg, %db = nn.batch_norm_grad %dy, %x, %mean, %var {eps = 1.0e-03 : f64} : (tensor<?x3xf32>, tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>)
      return %dx, %dg, %db : tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>
    })mlir";
  c.arguments = {"dy", "x"};
  c.gradientOf = {"x", "", ""};
  c.loss = [](const Tensors &t) { return dot(t.at("dy"), batchNorm(t.at("x"), nullptr, nullptr, 1e-3)); };
  expectGradients(c);
}

// Train-mode statistics of channels whose mean is 1e4 and spread about 1:
// a one-pass E[x²] − E[x]² in f32 cancels 1e8-sized terms (f32 keeps about
// 7 digits) and loses the variance; the two-pass double form keeps it to
// f32's rounding. The output is compared with PyTorch's CPU formula, which
// rounds at the same points (mean and variance accumulated in double,
// rounded to f32; (x − mean) · invstd in f32), within 1e-4.
TEST(BatchNormStatistics, ChannelMeansOf1e4KeepTheirDigits) {
  Random rng{21};
  const int n = 64, ch = 3;
  GradCase c;
  c.tensors = {{"x", random({n, ch}, rng, -1, 1)}};
  for (int64_t k = 0; k < n * ch; ++k)
    c.tensors["x"].data[k] = static_cast<float>(1e4 + (k % ch) * 1e3 + c.tensors["x"].data[k]);
  c.ir = R"mlir(
    func @step(%x: tensor<?x3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<?x3xf32>) {
      %mean, %var = nn.batch_norm_stats %x : (tensor<?x3xf32>) -> (tensor<3xf32>, tensor<3xf32>)
      %y = nn.batch_norm_normalize %x, %mean, %var {eps = 1.0e-05 : f64} : (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
      return %mean, %var, %y : tensor<3xf32>, tensor<3xf32>, tensor<?x3xf32>
    })mlir";
  c.arguments = {"x"};
  std::vector<std::vector<double>> results = run(c);
  ASSERT_EQ(results.size(), 3u);
  const std::vector<double> &x = c.tensors["x"].data;
  for (int j = 0; j < ch; ++j) {
    double mean = 0, squares = 0;
    for (int i = 0; i < n; ++i)
      mean += x[i * ch + j];
    mean /= n;
    for (int i = 0; i < n; ++i)
      squares += (x[i * ch + j] - mean) * (x[i * ch + j] - mean);
    double var = squares / n;
    EXPECT_NEAR(results[0][j], mean, 1e-3) << "mean of channel " << j; // f32's ulp at 1e4
    EXPECT_NEAR(results[1][j], var, 1e-5 * var) << "variance of channel " << j;
    float meanF = static_cast<float>(mean), varF = static_cast<float>(var);
    float invstd = 1.0f / std::sqrt(varF + 1e-5f);
    for (int i = 0; i < n; ++i) {
      float y = (static_cast<float>(x[i * ch + j]) - meanF) * invstd;
      EXPECT_NEAR(results[2][i * ch + j], y, 1e-4) << "output " << i << ", channel " << j;
    }
  }
}

/// An activation's gradient op, from the forward output.
void activationCase(const std::string &op, std::function<double(double)> f, uint64_t seed) {
  Random rng{seed};
  GradCase c;
  c.tensors = {{"dy", random({3, 5}, rng)}, {"x", random({3, 5}, rng, -3, 3, 0.05)}};
  c.ir = "func @step(%dy: tensor<?x5xf32>, %x: tensor<?x5xf32>) -> tensor<?x5xf32> {\n"
         "  %y = nn." + op + " %x : tensor<?x5xf32>\n"
         "  %dx = nn." + op + "_grad %dy, %y : tensor<?x5xf32>\n"
         "  return %dx : tensor<?x5xf32>\n}";
  c.arguments = {"dy", "x"};
  c.gradientOf = {"x"};
  c.loss = [f](const Tensors &t) {
    std::vector<double> y;
    for (double v : t.at("x").data)
      y.push_back(f(v));
    return dot(t.at("dy"), y);
  };
  expectGradients(c);
}

TEST(GradientCheck, Activations) {
  activationCase("relu", [](double v) { return v > 0 ? v : 0; }, 5);
  activationCase("sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }, 6);
  activationCase("tanh", [](double v) { return std::tanh(v); }, 7);
}

// threshold_backward: 0 where the forward output is exactly 0 (x = 0, and
// x < 0), even for an infinite dy.
TEST(GradientCheck, ReluGradientIsZeroAtZero) {
  GradCase c;
  c.tensors = {{"dy", {{1, 4}, {1.5, INFINITY, -2, 3}}}, {"x", {{1, 4}, {0, 0, -1, 2}}}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x4xf32>, %x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %y = nn.relu %x : tensor<?x4xf32>
      %dx = nn.relu_grad %dy, %y : tensor<?x4xf32>
      return %dx : tensor<?x4xf32>
    })mlir";
  c.arguments = {"dy", "x"};
  std::vector<std::vector<double>> r = run(c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (std::vector<double>{0, 0, 0, 3}));
}

/// A pool's window (NNOps.td): kernel, stride, begin and end padding,
/// dilation, ceil_mode, count_include_pad.
struct PoolWindow {
  int kh, kw, sh, sw, ph = 0, pw = 0, peh = 0, pew = 0, dh = 1, dw = 1;
  bool ceil = false, includePad = false;
};

/// PyTorch's pooling_output_shape.
int64_t pooledSize(int64_t size, int k, int s, int pb, int pe, int d, bool ceil) {
  int64_t span = size + pb + pe - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  int64_t out = static_cast<int64_t>(std::floor(static_cast<double>(span) / s)) + 1;
  if (ceil && (out - 1) * s >= size + pb)
    --out;
  return out;
}

/// PyTorch's pools in double over padded windows: max over the in-bounds
/// taps; the average over the divisor of count_include_pad (the window
/// clipped to the padded extent) or the in-bounds count.
std::vector<double> paddedPool(const Tensor &x, const PoolWindow &p, bool isMax) {
  int64_t n = x.shape[0], ch = x.shape[1], h = x.shape[2], w = x.shape[3];
  int64_t oh = pooledSize(h, p.kh, p.sh, p.ph, p.peh, p.dh, p.ceil);
  int64_t ow = pooledSize(w, p.kw, p.sw, p.pw, p.pew, p.dw, p.ceil);
  std::vector<double> y;
  for (int64_t i = 0; i < n * ch; ++i)
    for (int64_t yy = 0; yy < oh; ++yy)
      for (int64_t xx = 0; xx < ow; ++xx) {
        int64_t hs = yy * p.sh - p.ph, ws = xx * p.sw - p.pw;
        double acc = isMax ? -INFINITY : 0;
        int64_t count = 0;
        for (int ky = 0; ky < p.kh; ++ky)
          for (int kx = 0; kx < p.kw; ++kx) {
            int64_t iy = hs + ky * p.dh, ix = ws + kx * p.dw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
              continue;
            double v = x.data[(i * h + iy) * w + ix];
            acc = isMax ? std::max(acc, v) : acc + v;
            ++count;
          }
        if (!isMax) {
          int64_t he = std::min<int64_t>(hs + p.kh, h + p.peh), we = std::min<int64_t>(ws + p.kw, w + p.pew);
          acc /= p.includePad ? (he - hs) * (we - ws) : count;
        }
        y.push_back(acc);
      }
  return y;
}

/// The pool's gradient op against finite differences of paddedPool, on
/// inputs `lo` to `hi`, distinct (max pooling's ties are checked apart).
void poolWindowCase(bool isMax, Shape x, const PoolWindow &p, uint64_t seed, double lo = -3,
                    double hi = 3) {
  Random rng{seed};
  Shape y = {x[0], x[1], pooledSize(x[2], p.kh, p.sh, p.ph, p.peh, p.dh, p.ceil),
             pooledSize(x[3], p.kw, p.sw, p.pw, p.pew, p.dw, p.ceil)};
  GradCase c;
  c.tensors = {{"dy", random(y, rng)}, {"x", random(x, rng, lo, hi)}};
  auto dims = [](const Shape &shape) {
    std::string text = "?";
    for (size_t d = 1; d < shape.size(); ++d)
      text += "x" + std::to_string(shape[d]);
    return tensorType(text);
  };
  auto pair = [](int a, int b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; };
  std::string attrs = "{";
  if (p.ceil)
    attrs += "ceil_mode, ";
  if (p.includePad)
    attrs += "count_include_pad, ";
  if (p.dh != 1 || p.dw != 1)
    attrs += "dilation = " + pair(p.dh, p.dw) + ", ";
  attrs += "kernel_size = " + pair(p.kh, p.kw) + ", padding = " + pair(p.ph, p.pw) +
           ", padding_end = " + pair(p.peh, p.pew) + ", stride = " + pair(p.sh, p.sw) + "}";
  std::string dyType = dims(y), xType = dims(x);
  c.ir = "func @step(%dy: " + dyType + ", %x: " + xType + ") -> " + xType + " {\n" +
         (isMax ? "  %dx = nn.max_pool2d_grad %dy, %x " + attrs + " : (" + dyType + ", " + xType +
                      ") -> " + xType + "\n"
                : "  %dx = nn.avg_pool2d_grad %dy " + attrs + " : (" + dyType + ") -> " + xType +
                      "\n") +
         "  return %dx : " + xType + "\n}";
  c.arguments = {"dy", "x"};
  c.gradientOf = {"x"};
  c.loss = [=](const Tensors &t) { return dot(t.at("dy"), paddedPool(t.at("x"), p, isMax)); };
  expectGradients(c);
}

// count_include_pad (PyTorch's default) and not; ceil_mode windows that
// overhang the input; ONNX's asymmetric pads; a rectangular window.
TEST(GradientCheck, AvgPoolPaddingCeilMode) {
  PoolWindow p{3, 3, 2, 2, 1, 1, 1, 1};
  p.includePad = true;
  poolWindowCase(false, {2, 2, 5, 6}, p, 30);
  p.includePad = false;
  poolWindowCase(false, {2, 2, 5, 6}, p, 31);
  p.ceil = true;
  poolWindowCase(false, {2, 2, 6, 5}, p, 32);
  p.includePad = true;
  poolWindowCase(false, {2, 2, 6, 5}, p, 33);
  PoolWindow onnx{3, 2, 2, 1, 0, 1, 2, 0};
  onnx.includePad = true;
  poolWindowCase(false, {2, 1, 6, 5}, onnx, 34);
  PoolWindow noPadCeil{2, 2, 2, 2};
  noPadCeil.ceil = true;
  poolWindowCase(false, {1, 2, 5, 7}, noPadCeil, 35);
}

// Padded windows of negative inputs (a padded tap must never take the
// gradient), dilation, ceil_mode, asymmetric pads.
TEST(GradientCheck, MaxPoolPaddingDilationCeilMode) {
  poolWindowCase(true, {2, 2, 6, 6}, PoolWindow{3, 3, 2, 2, 1, 1, 1, 1}, 40, -3, -1);
  PoolWindow dilated{2, 2, 1, 1, 1, 1, 1, 1, 2, 2};
  dilated.ceil = true;
  poolWindowCase(true, {2, 2, 5, 6}, dilated, 41);
  PoolWindow ceil{3, 3, 2, 2, 1, 1, 1, 1};
  ceil.ceil = true;
  poolWindowCase(true, {1, 2, 6, 5}, ceil, 42, -3, -1);
  poolWindowCase(true, {2, 1, 7, 6}, PoolWindow{3, 2, 2, 2, 0, 1, 2, 0, 1, 2}, 43);
}

// Windows past kMaxUnrolledWindowTaps (64 taps), which the backward pass
// scans and sums over an RDom: padded, dilated, overlapping, a ceil_mode
// window that overhangs, all-negative inputs for the max.
TEST(GradientCheck, LargePoolWindows) {
  PoolWindow max{9, 9, 2, 2, 4, 4, 4, 4};
  poolWindowCase(true, {2, 1, 10, 10}, max, 50, -3, -1);
  PoolWindow dilated{5, 4, 1, 2, 2, 3, 2, 3, 2, 3};
  dilated.ceil = true;
  poolWindowCase(true, {1, 2, 9, 11}, dilated, 51);
  PoolWindow average{9, 9, 2, 2, 4, 4, 4, 4};
  poolWindowCase(false, {2, 1, 10, 10}, average, 52);
  average.includePad = true;
  average.ceil = true;
  poolWindowCase(false, {1, 2, 11, 10}, average, 53);
}

// A padded window whose in-bounds taps are all −Inf sends its gradient to
// its first in-bounds tap (max_pool2d_with_indices starts its index there),
// not to a padded position; NaNs win as without padding.
TEST(GradientCheck, MaxPoolPaddedTiesGoToTheFirstInBoundsTap) {
  GradCase c;
  const double inf = INFINITY;
  c.tensors = {{"dy", {{2, 1, 2, 2}, {1, 2, 3, 4, 1, 2, 3, 4}}},
               {"x", {{2, 1, 3, 3}, {-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf,
                                     -inf, NAN, 1, 2, NAN, -inf, 0, 0, 0}}}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x1x2x2xf32>, %x: tensor<?x1x3x3xf32>) -> tensor<?x1x3x3xf32> {
      %dx = nn.max_pool2d_grad %dy, %x {ceil_mode, kernel_size = [3, 3], padding = [1, 1], stride = [2, 2]} : (tensor<?x1x2x2xf32>, tensor<?x1x3x3xf32>) -> tensor<?x1x3x3xf32>
      return %dx : tensor<?x1x3x3xf32>
    })mlir";
  c.arguments = {"dy", "x"};
  std::vector<std::vector<double>> r = run(c);
  ASSERT_EQ(r.size(), 1u);
  // PyTorch 1.13 (torch.nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True)
  // and backward): [[1, 2, 0], [3, 4, 0], [0, 0, 0]] and all to the NaN at
  // (1, 1), the last NaN of every window.
  EXPECT_EQ(r[0], (std::vector<double>{1, 2, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0}));
}

/// softmax (log_softmax) along `axis` of `shape` in double.
std::vector<double> softmaxForward(const Tensor &x, int64_t axis, bool isLog) {
  int64_t outer = 1, inner = 1, n = x.shape[axis];
  for (int64_t d = 0; d < axis; ++d)
    outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d)
    inner *= x.shape[d];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double m = -INFINITY, sum = 0;
      for (int64_t k = 0; k < n; ++k)
        m = std::max(m, x.data[at(k)]);
      for (int64_t k = 0; k < n; ++k)
        sum += std::exp(x.data[at(k)] - m);
      for (int64_t k = 0; k < n; ++k)
        y[at(k)] = isLog ? x.data[at(k)] - m - std::log(sum) : std::exp(x.data[at(k)] - m) / sum;
    }
  return y;
}

/// softmax_grad / log_softmax_grad from the forward op's output.
void softmaxGradCase(bool isLog, Shape shape, int64_t axis, uint64_t seed) {
  Random rng{seed};
  GradCase c;
  c.tensors = {{"dy", random(shape, rng)}, {"x", random(shape, rng, -3, 3)}};
  std::string type = "?";
  for (size_t d = 1; d < shape.size(); ++d)
    type += "x" + std::to_string(shape[d]);
  type = tensorType(type);
  std::string op = isLog ? "log_softmax" : "softmax",
              attr = "{axis = " + std::to_string(axis) + " : i64}";
  c.ir = "func @step(%dy: " + type + ", %x: " + type + ") -> " + type + " {\n"
         "  %y = nn." + op + " %x " + attr + " : " + type + "\n"
         "  %dx = nn." + op + "_grad %dy, %y " + attr + " : " + type + "\n"
         "  return %dx : " + type + "\n}";
  c.arguments = {"dy", "x"};
  c.gradientOf = {"x"};
  c.loss = [=](const Tensors &t) { return dot(t.at("dy"), softmaxForward(t.at("x"), axis, isLog)); };
  expectGradients(c);
}

// Along the classes of logits, the channels of [N, C, H, W], the last
// dimension of a rank-4 tensor, and the batch.
TEST(GradientCheck, Softmax) {
  softmaxGradCase(false, {3, 5}, 1, 50);
  softmaxGradCase(false, {2, 3, 2, 4}, 1, 51);
  softmaxGradCase(false, {2, 3, 2, 4}, 3, 52);
  softmaxGradCase(false, {4, 3}, 0, 53);
}

TEST(GradientCheck, LogSoftmax) {
  softmaxGradCase(true, {3, 5}, 1, 54);
  softmaxGradCase(true, {2, 3, 2, 4}, 1, 55);
  softmaxGradCase(true, {2, 2, 3, 5}, 2, 56);
  softmaxGradCase(true, {4, 3}, 0, 57);
}

/// Pooling forward in double, [N, C, H, W], no padding.
std::vector<double> pool(const Tensor &x, int kh, int kw, int sh, int sw, bool isMax) {
  int64_t n = x.shape[0], ch = x.shape[1], h = x.shape[2], w = x.shape[3];
  int64_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
  std::vector<double> y;
  for (int64_t i = 0; i < n * ch; ++i)
    for (int64_t yy = 0; yy < oh; ++yy)
      for (int64_t xx = 0; xx < ow; ++xx) {
        double acc = isMax ? -INFINITY : 0;
        for (int ky = 0; ky < kh; ++ky)
          for (int kx = 0; kx < kw; ++kx) {
            double v = x.data[(i * h + yy * sh + ky) * w + xx * sw + kx];
            acc = isMax ? std::max(acc, v) : acc + v / (kh * kw);
          }
        y.push_back(acc);
      }
  return y;
}

TEST(GradientCheck, AvgPoolNonSquareLeavesRowsOut) {
  Random rng{8};
  GradCase c;
  c.tensors = {{"dy", random({2, 2, 2, 3}, rng)}, {"x", random({2, 2, 5, 3}, rng)}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x2x2x3xf32>) -> tensor<?x2x5x3xf32> {
      %dx = nn.avg_pool2d_grad %dy {kernel_size = [2, 1], stride = [2, 1]} : (tensor<?x2x2x3xf32>) -> tensor<?x2x5x3xf32>
      return %dx : tensor<?x2x5x3xf32>
    })mlir";
  c.arguments = {"dy"};
  c.gradientOf = {"x"};
  c.loss = [](const Tensors &t) { return dot(t.at("dy"), pool(t.at("x"), 2, 1, 2, 1, false)); };
  expectGradients(c);
}

// Overlapping 3x3 windows with stride 2 on 6x6: the last row and column are
// in no window.
TEST(GradientCheck, MaxPoolOverlapping) {
  Random rng{9};
  GradCase c;
  c.tensors = {{"dy", random({2, 2, 2, 2}, rng)}, {"x", random({2, 2, 6, 6}, rng, -3, 3)}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x2x2x2xf32>, %x: tensor<?x2x6x6xf32>) -> tensor<?x2x6x6xf32> {
      %dx = nn.max_pool2d_grad %dy, %x {kernel_size = [3, 3], stride = [2, 2]} : (tensor<?x2x2x2xf32>, tensor<?x2x6x6xf32>) -> tensor<?x2x6x6xf32>
      return %dx : tensor<?x2x6x6xf32>
    })mlir";
  c.arguments = {"dy", "x"};
  c.gradientOf = {"x"};
  c.loss = [](const Tensors &t) { return dot(t.at("dy"), pool(t.at("x"), 3, 3, 2, 2, true)); };
  expectGradients(c);
}

// Ties: the first maximum in row-major order takes the whole gradient
// (max_pool2d_with_indices), not both; a NaN wins, the last one.
TEST(GradientCheck, MaxPoolTiesGoToTheFirstMaximum) {
  GradCase c;
  // One 2x4 image, 2x2 windows, stride 2: window 0 is [5 5; 5 1] (a
  // three-way tie), window 1 is [NaN 2; 9 NaN].
  c.tensors = {{"dy", {{1, 1, 1, 2}, {10, 20}}},
               {"x", {{1, 1, 2, 4}, {5, 5, NAN, 2, 5, 1, 9, NAN}}}};
  c.ir = R"mlir(
    func @step(%dy: tensor<?x1x1x2xf32>, %x: tensor<?x1x2x4xf32>) -> tensor<?x1x2x4xf32> {
      %dx = nn.max_pool2d_grad %dy, %x {kernel_size = [2, 2], stride = [2, 2]} : (tensor<?x1x1x2xf32>, tensor<?x1x2x4xf32>) -> tensor<?x1x2x4xf32>
      return %dx : tensor<?x1x2x4xf32>
    })mlir";
  c.arguments = {"dy", "x"};
  std::vector<std::vector<double>> r = run(c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (std::vector<double>{10, 0, 0, 0, 0, 0, 0, 20}));
}

/// Mean cross-entropy in double.
double crossEntropy(const Tensor &logits, const std::vector<int64_t> &labels) {
  int64_t n = logits.shape[0], classes = logits.shape[1];
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double *row = &logits.data[i * classes];
    double m = *std::max_element(row, row + classes), s = 0;
    for (int64_t k = 0; k < classes; ++k)
      s += std::exp(row[k] - m);
    total += m + std::log(s) - row[labels[i]];
  }
  return total / n;
}

void crossEntropyCase(double scale, double h, uint64_t seed) {
  Random rng{seed};
  GradCase c;
  Tensor logits = random({4, 5}, rng, -3, 3);
  for (size_t k = 0; k < logits.data.size(); ++k)
    logits.data[k] = static_cast<float>(logits.data[k] + (k % 3 == 0 ? scale : k % 3 == 1 ? -scale : 0));
  c.tensors = {{"logits", logits}};
  c.labels = {0, 2, 4, 1};
  c.ir = R"mlir(
    func @step(%logits: tensor<?x5xf32>, %labels: tensor<?xi64>) -> (tensor<?x5xf32>, tensor<f32>) {
      %loss, %correct = nn.cross_entropy %logits, %labels : (tensor<?x5xf32>, tensor<?xi64>) -> (tensor<f32>, tensor<i64>)
      %dx = nn.cross_entropy_grad %logits, %labels : (tensor<?x5xf32>, tensor<?xi64>) -> tensor<?x5xf32>
      return %dx, %loss : tensor<?x5xf32>, tensor<f32>
    })mlir";
  c.arguments = {"logits", "labels"};
  c.gradientOf = {"logits", ""};
  std::vector<int64_t> labels = c.labels;
  c.loss = [labels](const Tensors &t) { return crossEntropy(t.at("logits"), labels); };
  c.h = h;
  expectGradients(c);
  std::vector<std::vector<double>> r = run(c);
  ASSERT_EQ(r.size(), 2u);
  double want = crossEntropy(logits, labels);
  EXPECT_NEAR(r[1][0], want, 1e-5 * (1 + std::fabs(want))) << "the loss at scale " << scale;
}

TEST(GradientCheck, CrossEntropy) { crossEntropyCase(0, 1e-4, 10); }
// Logits of ±1e4: without the max subtracted, exp overflows (inf/inf = NaN).
TEST(GradientCheck, CrossEntropyExtremeLogits) { crossEntropyCase(1e4, 1e-2, 11); }

} // namespace

//===- InitialStateTest.cpp - PyTorch's default initialisation, from a seed ===//
//
// The state kilnc train starts from without --init (InitialState.h): the
// generator (Philox.h, checked in DropoutTest.cpp) against values computed apart
// from this code (a Python transcription of the header's definition), each
// layer kind's rule and bound, the statistics of the uniform tensors
// (inside ±f32(1/√fan_in), mean 0 and variance bound²/3 within 5σ, the
// histogram flat within 5σ), BatchNorm's constants, a fresh optimizer, and
// the same bits from the same seed, other bits from another.
//
//===----------------------------------------------------------------------===//
#include "TestContext.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/Philox.h"
#include "kiln/Driver/TrainStep.h"

#include "mlir/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace {

using kiln::InitialTensor;

// FNV-1a 64's published test vectors, and one key.
TEST(InitialStream, IsFnv1a64OfTheKey) {
  EXPECT_EQ(kiln::initialStream(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(kiln::initialStream("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(kiln::initialStream("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(kiln::initialStream("fc.weight"), 0x79fb28a75603c7a0ull);
}

uint32_t bits(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof word);
  return word;
}

// The header's definition transcribed into Python (Philox, FNV-1a,
// f32(b·(2u − 1)) through struct.pack), apart from this code: the values
// every machine must give. The last one has a seed and an index above 2^32.
TEST(InitialUniform, MatchesAnIndependentTranscription) {
  auto value = [](uint64_t seed, const char *key, uint64_t k, int fan) {
    return bits(kiln::initialUniform(seed, kiln::initialStream(key), k, 1 / std::sqrt(fan)));
  };
  EXPECT_EQ(value(0, "fc.weight", 0, 36), 0x3dd1b4fdu);
  EXPECT_EQ(value(0, "fc.weight", 1, 36), 0x3e163c4bu);
  EXPECT_EQ(value(0, "conv1.weight", 17, 18), 0x3dd5a54cu);
  EXPECT_EQ(value((1ull << 40) + 3, "fc.bias", (1ull << 32) + 5, 36), 0xbaa580abu);
}

// Every layer kind and option: a conv without bias into an affine
// BatchNorm2d, a strided non-square conv with bias into a BatchNorm2d
// without affine, a wide linear into a BatchNorm1d without running
// statistics, a linear head; SGD with momentum (a momentum buffer per
// parameter, and the step).
constexpr const char *kModel = R"kiln(
model InitNet {
  input x: f32[N, 3, 8, 8]

  conv1 = conv2d(3, 32, kernel_size=3, padding=1, bias=false)   # [N, 32, 8, 8]
  bn1 = batchnorm2d(32)
  conv2 = conv2d(32, 16, kernel_size=(3, 2), stride=2)          # [N, 16, 3, 4]
  bn2 = batchnorm2d(16, affine=false)
  fc1 = linear(192, 512)
  bn3 = batchnorm1d(512, track_running_stats=false)
  fc2 = linear(512, 10)

  forward {
    h = relu(bn1(conv1(x)))
    h = relu(bn2(conv2(h)))
    h = relu(bn3(fc1(flatten(h))))
    return fc2(h)
  }

  train {
    loss = cross_entropy
    optimizer = sgd(lr=0.1, momentum=0.9)
  }
}
)kiln";

/// What each key must get: fan_in for the uniform ones (0: a fill).
struct Expected {
  int64_t fanIn;
  double fill;
};
const std::map<std::string, Expected> kExpected = {
    {"conv1.weight", {3 * 3 * 3, 0}},   {"bn1.weight", {0, 1}},
    {"bn1.bias", {0, 0}},               {"bn1.running_mean", {0, 0}},
    {"bn1.running_var", {0, 1}},        {"bn1.num_batches_tracked", {0, 0}},
    {"conv2.weight", {32 * 3 * 2, 0}},  {"conv2.bias", {32 * 3 * 2, 0}},
    {"bn2.running_mean", {0, 0}},       {"bn2.running_var", {0, 1}},
    {"bn2.num_batches_tracked", {0, 0}}, {"fc1.weight", {192, 0}},
    {"fc1.bias", {192, 0}},             {"bn3.weight", {0, 1}},
    {"bn3.bias", {0, 0}},               {"fc2.weight", {512, 0}},
    {"fc2.bias", {512, 0}}};

struct Model {
  kiln::test::Context test;
  mlir::OwningOpRef<mlir::ModuleOp> module;

  explicit Model(const char *text) {
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "init.kiln"),
                                 llvm::SMLoc());
    module = kiln::loadModel(sourceMgr, &test.context);
    EXPECT_TRUE(module) << test.diagnostics;
  }
};

TEST(DefaultInitialisation, GivesEachLayerKindPyTorchsRule) {
  Model model(kModel);
  ASSERT_TRUE(model.module);
  mlir::FailureOr<std::vector<InitialTensor>> tensors =
      kiln::defaultInitialisation(*model.module);
  ASSERT_TRUE(succeeded(tensors)) << model.test.diagnostics;
  std::map<std::string, InitialTensor> byKey;
  for (const InitialTensor &tensor : *tensors)
    byKey[tensor.key] = tensor;
  EXPECT_EQ(byKey.size(), kExpected.size());
  for (const auto &[key, expected] : kExpected) {
    ASSERT_TRUE(byKey.count(key)) << key;
    const InitialTensor &tensor = byKey[key];
    if (expected.fanIn > 0) {
      EXPECT_EQ(tensor.kind, InitialTensor::Kind::Uniform) << key;
      EXPECT_DOUBLE_EQ(tensor.bound, 1 / std::sqrt(static_cast<double>(expected.fanIn))) << key;
    } else {
      EXPECT_EQ(tensor.kind, InitialTensor::Kind::Fill) << key;
      EXPECT_EQ(tensor.value, expected.fill) << key;
    }
  }
}

TEST(DefaultInitialisation, RefusesStateNoLayerReads) {
  kiln::test::Context test;
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString(R"mlir(
    func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %p = nn.param "scale" : tensor<4xf32>
      return %x : tensor<?x4xf32>
    })mlir",
                                                                      &test.context);
  ASSERT_TRUE(module) << test.diagnostics;
  EXPECT_TRUE(failed(kiln::defaultInitialisation(*module)));
  EXPECT_NE(test.diagnostics.find("'scale' has no default initialisation"), std::string::npos)
      << test.diagnostics;
}

/// The step of kModel, compiled once for the tests below (about 3 s).
kiln::TrainStep &initNetStep() {
  static Model *model = new Model(kModel);
  static std::unique_ptr<kiln::TrainStep> step = [] {
    EXPECT_TRUE(succeeded(kiln::prepareForTraining(*model->module, {})))
        << model->test.diagnostics;
    return kiln::TrainStep::create(*model->module);
  }();
  EXPECT_TRUE(step) << model->test.diagnostics;
  return *step;
}

std::vector<InitialTensor> initNetTensors() {
  Model model(kModel);
  mlir::FailureOr<std::vector<InitialTensor>> tensors =
      kiln::defaultInitialisation(*model.module);
  EXPECT_TRUE(succeeded(tensors)) << model.test.diagnostics;
  return succeeded(tensors) ? *tensors : std::vector<InitialTensor>{};
}

std::vector<float> floats(kiln::TrainStep &step, const std::string &key) {
  Halide::Buffer<> *buffer = step.state(key);
  const float *data = static_cast<const float *>(buffer->data());
  return std::vector<float>(data, data + buffer->number_of_elements());
}

/// One step on random inputs: every parameter, buffer and optimizer state
/// tensor moves away from its initial value.
void trainOneStep(kiln::TrainStep &step) {
  const int64_t batch = 8;
  std::vector<float> x(batch * step.sampleSize());
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  std::vector<int64_t> labels(batch);
  for (int64_t i = 0; i < batch; ++i)
    labels[i] = i % step.classes();
  kiln::StepMetrics metrics;
  std::string error;
  ASSERT_TRUE(step.step(x.data(), labels.data(), batch, metrics, error)) << error;
}

TEST(InitialiseState, UniformTensorsHaveTheDistributionOfPyTorchs) {
  kiln::TrainStep &step = initNetStep();
  std::string error;
  ASSERT_TRUE(kiln::initialiseState(initNetTensors(), 0, step, error)) << error;
  for (const auto &[key, expected] : kExpected) {
    if (expected.fanIn == 0)
      continue;
    double b = 1 / std::sqrt(static_cast<double>(expected.fanIn));
    float limit = static_cast<float>(b);
    std::vector<float> v = floats(step, key);
    double n = static_cast<double>(v.size()), sum = 0, squares = 0;
    bool allEqual = true;
    std::vector<double> bins(16, 0);
    for (float value : v) {
      EXPECT_LE(std::fabs(value), limit) << key;
      allEqual = allEqual && value == v[0];
      sum += value;
      squares += static_cast<double>(value) * value;
      // f32(b) may lie just outside [−b, b]: the end bins take it.
      double bin = std::floor((value + b) / (2 * b) * 16);
      bins[static_cast<size_t>(std::clamp(bin, 0.0, 15.0))] += 1;
    }
    EXPECT_FALSE(allEqual) << key;
    // U(−b, b): mean 0, variance b²/3; Var(x²) = b⁴/5 − b⁴/9 = 4b⁴/45.
    EXPECT_LE(std::fabs(sum / n), 5 * b / std::sqrt(3 * n)) << key;
    EXPECT_LE(std::fabs(squares / n - b * b / 3), 5 * b * b * std::sqrt(4.0 / 45 / n)) << key;
    if (v.size() < 16 * 100)
      continue;
    // Each of 16 equal bins holds n/16 ± 5σ, σ = √(n · 1/16 · 15/16).
    for (size_t i = 0; i < bins.size(); ++i)
      EXPECT_LE(std::fabs(bins[i] - n / 16), 5 * std::sqrt(n * 15 / 256)) << key << " bin " << i;
    // The extremes come within 20/n of ±b (missed with probability e^−10).
    double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    EXPECT_GE(hi, b * (1 - 20 / n)) << key;
    EXPECT_LE(lo, -b * (1 - 20 / n)) << key;
  }
}

TEST(InitialiseState, GivesBatchNormsConstantsAndAFreshOptimizer) {
  kiln::TrainStep &step = initNetStep();
  std::string error;
  ASSERT_TRUE(kiln::initialiseState(initNetTensors(), 0, step, error)) << error;
  trainOneStep(step); // running statistics, momentum buffers and the step move
  ASSERT_TRUE(kiln::initialiseState(initNetTensors(), 0, step, error)) << error;
  size_t optimizerState = 0;
  for (const std::string &key : step.stateKeys()) {
    Halide::Buffer<> *buffer = step.state(key);
    if (buffer->type() == Halide::Int(64)) {
      EXPECT_EQ(*static_cast<const int64_t *>(buffer->data()), 0) << key;
      EXPECT_EQ(buffer->number_of_elements(), 1u) << key;
      continue;
    }
    auto expected = kExpected.find(key);
    if (expected != kExpected.end() && expected->second.fanIn > 0)
      continue;
    float want = expected == kExpected.end() ? 0.0f : static_cast<float>(expected->second.fill);
    optimizerState += expected == kExpected.end();
    for (float value : floats(step, key))
      ASSERT_EQ(bits(value), bits(want)) << key; // +0.0, never -0.0
  }
  // A momentum buffer per parameter (11); the step is the i64 above.
  EXPECT_EQ(optimizerState, 11u);
  EXPECT_TRUE(step.state("step"));
  EXPECT_TRUE(step.state("fc1.weight.momentum_buffer"));
}

TEST(InitialiseState, TheSameSeedGivesTheSameBitsAnotherSeedOthers) {
  kiln::TrainStep &step = initNetStep();
  std::string error;
  std::vector<InitialTensor> tensors = initNetTensors();
  ASSERT_TRUE(kiln::initialiseState(tensors, 5, step, error)) << error;
  std::map<std::string, std::vector<float>> first;
  for (const auto &[key, expected] : kExpected)
    if (expected.fanIn > 0)
      first[key] = floats(step, key);
  trainOneStep(step);
  ASSERT_TRUE(kiln::initialiseState(tensors, 5, step, error)) << error;
  for (const auto &[key, values] : first) {
    std::vector<float> again = floats(step, key);
    EXPECT_EQ(std::memcmp(again.data(), values.data(), values.size() * sizeof(float)), 0) << key;
  }
  // The documented stream, element by element, in the buffer's row-major
  // order (fc1.weight[o][i] at o · 192 + i).
  std::vector<float> fc1 = floats(step, "fc1.weight");
  for (uint64_t k : {0ull, 1ull, 191ull, 192ull, 98303ull})
    EXPECT_EQ(bits(fc1[k]), bits(kiln::initialUniform(5, kiln::initialStream("fc1.weight"), k,
                                                      1 / std::sqrt(192.0))))
        << k;
  // Seed 6, and seed 5 + 2^32 (the key's other word): other values almost
  // everywhere (two draws agree with probability about 2^−24 per element).
  for (uint64_t other : {6ull, 5ull + (1ull << 32)}) {
    ASSERT_TRUE(kiln::initialiseState(tensors, other, step, error)) << error;
    for (const auto &[key, values] : first) {
      std::vector<float> v = floats(step, key);
      size_t same = 0;
      for (size_t k = 0; k < v.size(); ++k)
        same += v[k] == values[k];
      EXPECT_LE(same, v.size() / 100) << key << " from seed " << other;
      EXPECT_LT(same, v.size()) << key << " from seed " << other;
    }
  }
  // Two tensors of one shape get different streams.
  std::vector<float> w = floats(step, "conv2.bias"), b = floats(step, "fc1.bias");
  EXPECT_NE(std::memcmp(w.data(), b.data(), 16 * sizeof(float)), 0);
}

TEST(InitialiseState, RefusesATensorTheStepLacks) {
  kiln::TrainStep &step = initNetStep();
  std::string error;
  std::vector<InitialTensor> tensors = initNetTensors();
  ASSERT_TRUE(kiln::initialiseState(tensors, 0, step, error)) << error;
  std::vector<float> before = floats(step, "fc1.weight");
  InitialTensor extra;
  extra.key = "fc9.weight";
  tensors.push_back(extra);
  EXPECT_FALSE(kiln::initialiseState(tensors, 1, step, error));
  EXPECT_EQ(error, "the training step has no state 'fc9.weight'");
  std::vector<float> after = floats(step, "fc1.weight");
  EXPECT_EQ(std::memcmp(after.data(), before.data(), before.size() * sizeof(float)), 0)
      << "changed on failure";
}

} // namespace

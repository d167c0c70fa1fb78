//===- DropoutTest.cpp - train-mode dropout's counter-based masks ---------===//
//
// nn.dropout_mask lowered to Halide and JIT-run (TrainLowering.cpp), and
// x · mask as the training step computes it, against the op's definition
// (NNTrainOps.td) evaluated here with the plain C++ Philox4x32-10 of
// Philox.h (checked against Random123's known answers below): every element's bits, on every x86-64 target this
// CPU runs, with Halide's thread pool and with 1, 2 and 3 threads of our
// own running the parallel loop's tasks (strided, so each thread takes
// every other task). Then the kept fraction (binomial, within 5σ), the
// 1/(1 − p) scaling exactly, other masks for another seed, step or layer,
// p = 0, and the seed the training step's masks get from the command line
// or the train section.
//
//===----------------------------------------------------------------------===//
#include "HostTargets.h"
#include "TestContext.h"
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/Philox.h"

#include "mlir/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

// [N, 3, 17, 30]: four dimensions for the row-major index, a last one that
// no vector width divides (the vector loop's tail), and 16 · 1530 static
// elements, above Schedule.cpp's threshold for a parallel batch loop.
constexpr int kBatch = 64, kC = 3, kH = 17, kW = 30;
constexpr int64_t kCount = int64_t(kBatch) * kC * kH * kW;
constexpr const char *kType = "tensor<?x3x17x30xf32>";

struct Mask {
  double p;
  uint64_t seed, stream;
  int64_t step;
};

std::string number(double p) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", p);
  std::string s = text;
  return s.find_first_of(".e") == std::string::npos ? s + ".0" : s;
}

/// @step(x, step) -> (mask, x · mask): the op and train-mode dropout's output.
std::string maskIr(const Mask &m) {
  std::string t = kType;
  return "func @step(%x: " + t + ", %t: tensor<i64>) -> (" + t + ", " + t + ") {\n" +
         "  %m = nn.dropout_mask %x, %t {p = " + number(m.p) + " : f64, seed = " +
         std::to_string(m.seed) + " : i64, stream = " + std::to_string(m.stream) +
         " : i64} : (" + t + ", tensor<i64>) -> " + t + "\n" + "  %y = nn.mul %x, %m : " + t +
         "\n" + "  return %m, %y : " + t + ", " + t + "\n}\n";
}

/// The op's definition: u = Philox's first word of counter (k mod 2^32,
/// k >> 32, stream, step mod 2^32), key (seed mod 2^32, seed >> 32), as
/// (w >> 8) · 2^−24; kept (1/(1 − p) as f32) where u >= p, else 0.
float referenceMask(const Mask &m, uint64_t k) {
  uint32_t word = kiln::philox4x32_10({static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32),
                                       static_cast<uint32_t>(m.stream),
                                       static_cast<uint32_t>(m.step)},
                                      {static_cast<uint32_t>(m.seed),
                                       static_cast<uint32_t>(m.seed >> 32)})[0];
  return kiln::unitInterval(word) >= m.p ? static_cast<float>(1.0 / (1.0 - m.p)) : 0.0f;
}

std::vector<float> input() {
  std::vector<float> x(kCount);
  uint64_t state = 7;
  for (float &v : x) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 40) * 0x1.0p-24 * 4 - 2); // [-2, 2)
  }
  return x;
}

// Our own parallel loop: `gThreads` threads, thread t running tasks t,
// t + T, t + 2T, ... (0: Halide's own thread pool). gTasks counts the
// tasks, so a test knows the loop it checks ran in parallel.
std::atomic<int> gThreads{0}, gTasks{0};

int stridedParallelFor(Halide::JITUserContext *context,
                       int (*task)(Halide::JITUserContext *, int, uint8_t *), int min, int extent,
                       uint8_t *closure) {
  int threads = gThreads.load();
  std::atomic<int> status{0};
  auto run = [&](int first) {
    for (int i = min + first; i < min + extent; i += threads) {
      ++gTasks;
      if (int result = task(context, i, closure))
        status = result;
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t)
    workers.emplace_back(run, t);
  run(0);
  for (std::thread &worker : workers)
    worker.join();
  return status;
}

// Random123's kat_vectors: philox4x32 10, counter, key, the four words.
TEST(Philox, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(kiln::philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(kiln::philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(kiln::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                                {0xa4093822, 0x299f31d0}),
            (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

struct Result {
  std::vector<float> mask, y;
};

/// The mask pipeline for `m`, lowered for `target` and JIT-compiled.
struct MaskPipeline {
  kiln::test::Context test;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::FailureOr<kiln::codegen::LoweredModel> model = mlir::failure();
  Halide::Target target;

  MaskPipeline(const Mask &m, const std::string &targetName)
      : target(targetName == "host" ? kiln::codegen::hostTarget() : Halide::Target(targetName)) {
    module = mlir::parseSourceString(maskIr(m), &test.context);
    EXPECT_TRUE(module) << test.diagnostics;
    if (!module)
      return;
    kiln::codegen::LoweringOptions options;
    std::string error;
    EXPECT_TRUE(kiln::codegen::describeTarget(target, options.target, error)) << error;
    model = kiln::codegen::lowerToHalide(*module, options, "step");
    EXPECT_TRUE(succeeded(model)) << test.diagnostics;
    if (succeeded(model))
      model->compileJit(target);
  }

  /// Runs at step `step` with `threads` of our own (0: Halide's pool).
  Result run(int64_t step, int threads, const std::vector<float> &x) {
    Result result;
    if (failed(model))
      return result;
    for (kiln::codegen::LoweredStage &stage : model->stages)
      stage.jit.jit_handlers().custom_do_par_for = threads > 0 ? stridedParallelFor : nullptr;
    gThreads = threads;
    Halide::Buffer<float> in(const_cast<float *>(x.data()), kW, kH, kC, kBatch);
    Halide::Buffer<int64_t> t = Halide::Buffer<int64_t>::make_scalar();
    t() = step;
    model->inputs[0].param.set(in);
    model->inputs[1].param.set(t);
    Halide::Buffer<float> mask(kW, kH, kC, kBatch), y(kW, kH, kC, kBatch);
    model->realize(Halide::Realization({mask, y}), target);
    result.mask.assign(mask.data(), mask.data() + kCount);
    result.y.assign(y.data(), y.data() + kCount);
    return result;
  }
};

uint32_t bits(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof word);
  return word;
}

/// Every element against the definition: the mask's bits, and x · mask
/// (x · f32(1/(1 − p)) where kept, 0 where dropped).
void expectDefinition(const Mask &m, const Result &r, const std::vector<float> &x,
                      const std::string &where) {
  ASSERT_EQ(r.mask.size(), static_cast<size_t>(kCount)) << where;
  float keep = static_cast<float>(1.0 / (1.0 - m.p));
  int64_t wrong = 0, firstWrong = -1;
  for (int64_t k = 0; k < kCount; ++k) {
    float want = referenceMask(m, static_cast<uint64_t>(k));
    float product = want == 0 ? 0.0f : x[k] * keep;
    if (bits(r.mask[k]) != bits(want) || r.y[k] != product) {
      firstWrong = firstWrong < 0 ? k : firstWrong;
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0) << where << ": " << wrong << " of " << kCount
                      << " elements differ from the definition, the first at " << firstWrong
                      << ": mask " << r.mask[firstWrong < 0 ? 0 : firstWrong] << ", y "
                      << r.y[firstWrong < 0 ? 0 : firstWrong];
}

TEST(DropoutMask, MatchesTheDefinitionOnEveryTargetAndThreadCount) {
  std::vector<float> x = input();
  int targetsRun = 0;
  for (double p : {0.1, 0.5}) {
    Mask m{p, 20261202, 3, 7};
    for (const char *name : kiln::test::kX86Targets) {
      if (!kiln::test::hostRuns(Halide::Target(name)))
        continue;
      targetsRun += p == 0.1;
      MaskPipeline pipeline(m, name);
      for (int threads : {0, 1, 2, 3}) {
        gTasks = 0;
        Result r = pipeline.run(m.step, threads, x);
        std::string where = std::string(name) + ", p " + number(p) + ", " +
                            (threads ? std::to_string(threads) + " threads" : "Halide's pool");
        expectDefinition(m, r, x, where);
        if (threads > 1)
          EXPECT_GT(gTasks.load(), 1) << where << ": the mask did not run as parallel tasks, "
                                                  "so this checks no thread count";
      }
    }
  }
  EXPECT_GE(targetsRun, 1) << "no x86-64 target of HostTargets.h runs here";
}

TEST(DropoutMask, KeepsABinomialFractionScaledBy1Over1MinusP) {
  std::vector<float> x = input();
  for (double p : {0.1, 0.5})
    for (uint64_t seed : {0ull, 12345ull}) {
      Mask m{p, seed, 0, 1};
      MaskPipeline pipeline(m, "host");
      Result r = pipeline.run(m.step, 0, x);
      ASSERT_EQ(r.mask.size(), static_cast<size_t>(kCount));
      float keep = static_cast<float>(1.0 / (1.0 - p));
      int64_t kept = 0, other = 0;
      for (int64_t k = 0; k < kCount; ++k) {
        if (r.mask[k] == keep) {
          ++kept;
          EXPECT_EQ(r.y[k], x[k] * keep) << k;
        } else if (r.mask[k] == 0) {
          EXPECT_EQ(r.y[k], 0.0f) << k;
        } else {
          ++other;
        }
      }
      EXPECT_EQ(other, 0) << "mask values neither 0 nor 1/(1 - p)";
      double n = static_cast<double>(kCount);
      EXPECT_LE(std::fabs(kept - n * (1 - p)), 5 * std::sqrt(n * p * (1 - p)))
          << "p " << p << ", seed " << seed << ": kept " << kept << " of " << kCount;
    }
}

TEST(DropoutMask, AnotherSeedStepOrLayerGivesAnotherMask) {
  std::vector<float> x = input();
  Mask base{0.5, 3, 0, 1};
  Result first = MaskPipeline(base, "host").run(base.step, 0, x);
  ASSERT_EQ(first.mask.size(), static_cast<size_t>(kCount));
  auto agreement = [&](const Mask &m) {
    Result r = MaskPipeline(m, "host").run(m.step, 0, x);
    int64_t same = 0;
    for (int64_t k = 0; k < kCount && k < static_cast<int64_t>(r.mask.size()); ++k)
      same += r.mask[k] == first.mask[k];
    return same;
  };
  // Independent masks of p = 0.5 agree on half the elements, ±5σ.
  double n = static_cast<double>(kCount), tolerance = 5 * std::sqrt(n * 0.25);
  for (const Mask &m : {Mask{0.5, 4, 0, 1}, Mask{0.5, 3 + (1ull << 32), 0, 1},
                        Mask{0.5, 3, 1, 1}, Mask{0.5, 3, 0, 2}}) {
    int64_t same = agreement(m);
    EXPECT_LE(std::fabs(same - n / 2), tolerance)
        << "seed " << m.seed << ", stream " << m.stream << ", step " << m.step << ": " << same
        << " of " << kCount << " elements agree";
  }
  // The same (seed, stream, step) in a pipeline of its own: the same mask.
  EXPECT_EQ(agreement(base), kCount);
}

TEST(DropoutMask, PZeroKeepsEverything) {
  std::vector<float> x = input();
  Mask m{0.0, 1, 0, 1};
  Result r = MaskPipeline(m, "host").run(m.step, 0, x);
  ASSERT_EQ(r.mask.size(), static_cast<size_t>(kCount));
  for (int64_t k = 0; k < kCount; ++k) {
    ASSERT_EQ(bits(r.mask[k]), bits(1.0f)) << k;
    ASSERT_EQ(bits(r.y[k]), bits(x[k])) << k;
  }
}

// Two dropout layers: streams 0 and 1 in forward order, each with the
// run's seed: --seed over the train section's.
constexpr const char *kDropoutModel = R"kiln(
model Drop {
  input x: f32[N, 12]
  fc1 = linear(12, 20)
  drop1 = dropout(0.3)
  fc2 = linear(20, 5)
  drop2 = dropout(0.5)

  forward {
    return fc2(drop2(relu(drop1(fc1(x)))))
  }

  train {
    loss = cross_entropy
    optimizer = sgd(lr=0.1)
    seed = 9
  }
}
)kiln";

std::vector<std::tuple<double, int64_t, int64_t>> trainStepMasks(int64_t seedFlag) {
  kiln::test::Context test;
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(kDropoutModel, "drop.kiln"),
                               llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &test.context);
  EXPECT_TRUE(module) << test.diagnostics;
  if (!module)
    return {};
  kiln::nn::AutodiffOptions options;
  options.seed = seedFlag;
  EXPECT_TRUE(succeeded(kiln::prepareForTraining(*module, options))) << test.diagnostics;
  std::vector<std::tuple<double, int64_t, int64_t>> masks;
  module->walk([&](kiln::nn::DropoutMaskOp op) {
    masks.emplace_back(op.pAttr().getValueAsDouble(), op.seedAttr().getInt(),
                       op.streamAttr().getInt());
  });
  return masks;
}

TEST(DropoutMask, TheTrainingStepTakesTheRunsSeed) {
  using Masks = std::vector<std::tuple<double, int64_t, int64_t>>;
  EXPECT_EQ(trainStepMasks(-1), (Masks{{0.3, 9, 0}, {0.5, 9, 1}})); // the train section's
  EXPECT_EQ(trainStepMasks(4), (Masks{{0.3, 4, 0}, {0.5, 4, 1}}));  // --seed 4
}

} // namespace

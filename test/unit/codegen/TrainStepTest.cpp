//===- TrainStepTest.cpp - the compiled training step against PyTorch -----===//
//
// Each case of test/fixtures/train/manifest.json that this step of the
// compiler runs: the model's @train_step (nn-autodiff with the case's
// torch.optim settings as the train section) lowered to Halide, JIT-compiled
// and run through kiln::TrainStep from the case's initial state on its 10
// batches of 16; after step 1 and step 10 every tensor of the fixture
// (parameters, running statistics, num_batches_tracked, optimizer state,
// step) and each step's loss and correct count must match PyTorch's within
// the manifest's tolerance (|kiln − torch| <= atol + rtol·|torch|, rtol
// 1e-4, atol 1e-5; counts exactly). Steps after the first allocate
// nothing: the pipeline's memory blocks taken from the system after step 1
// (its batch-sized intermediates live on the heap, so there are some) are
// all it takes by step 10.
//
//===----------------------------------------------------------------------===//
#include "HostTargets.h"
#include "TestContext.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/safetensors.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace {

const std::string kFixtures = KILN_SOURCE_DIR "/test/fixtures/train/";

llvm::json::Value readJson(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  llvm::Expected<llvm::json::Value> value = llvm::json::parse(text.str());
  if (!value) {
    ADD_FAILURE() << path << ": " << llvm::toString(value.takeError());
    return llvm::json::Value(nullptr);
  }
  return std::move(*value);
}

/// The int64 array of an NPY v1.0 file ('<i8', C order).
std::vector<int64_t> readNpyI64(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(1, 5, "NUMPY") != 0) {
    ADD_FAILURE() << path << ": not an NPY file";
    return {};
  }
  size_t headerLength = static_cast<unsigned char>(bytes[8]) |
                        static_cast<unsigned char>(bytes[9]) << 8;
  std::string header = bytes.substr(10, headerLength);
  EXPECT_NE(header.find("'<i8'"), std::string::npos) << path;
  size_t offset = 10 + headerLength;
  std::vector<int64_t> values((bytes.size() - offset) / 8);
  std::memcpy(values.data(), bytes.data() + offset, values.size() * 8);
  return values;
}

/// The train section nn-autodiff reads (Import's kiln.train), from the
/// manifest's torch.optim settings.
mlir::DictionaryAttr trainSection(mlir::MLIRContext &context, const llvm::json::Object &opt) {
  mlir::Builder b(&context);
  std::string cls = opt.getString("class")->str();
  std::string name = cls == "torch.optim.SGD" ? "sgd" : cls == "torch.optim.Adam" ? "adam" : "adamw";
  llvm::SmallVector<mlir::NamedAttribute, 8> entries = {
      b.getNamedAttr("name", b.getStringAttr(name)),
      b.getNamedAttr("lr", b.getF64FloatAttr(*opt.getNumber("lr"))),
      b.getNamedAttr("weight_decay", b.getF64FloatAttr(*opt.getNumber("weight_decay")))};
  if (name == "sgd") {
    entries.push_back(b.getNamedAttr("momentum", b.getF64FloatAttr(*opt.getNumber("momentum"))));
    entries.push_back(b.getNamedAttr("dampening", b.getF64FloatAttr(*opt.getNumber("dampening"))));
    entries.push_back(b.getNamedAttr("nesterov", b.getBoolAttr(*opt.getBoolean("nesterov"))));
  } else {
    const llvm::json::Array *betas = opt.getArray("betas");
    entries.push_back(b.getNamedAttr(
        "betas", b.getArrayAttr({b.getF64FloatAttr(*(*betas)[0].getAsNumber()),
                                 b.getF64FloatAttr(*(*betas)[1].getAsNumber())})));
    entries.push_back(b.getNamedAttr("eps", b.getF64FloatAttr(*opt.getNumber("eps"))));
  }
  return b.getDictionaryAttr({b.getNamedAttr("loss", b.getStringAttr("cross_entropy")),
                              b.getNamedAttr("optimizer", b.getDictionaryAttr(entries))});
}

/// Compares every tensor of the fixture `path` with the step's state.
void expectState(kiln::TrainStep &step, const std::string &path, double rtol, double atol) {
  kiln_safetensors_t *file = nullptr;
  ASSERT_EQ(kiln_safetensors_open(path.c_str(), &file), nullptr) << path;
  size_t checked = 0;
  for (size_t i = 0; i < kiln_safetensors_count(file); ++i) {
    kiln_tensor_info_t info;
    ASSERT_EQ(kiln_safetensors_info(file, i, &info), nullptr);
    std::string key = info.name;
    Halide::Buffer<> *mine = step.state(key);
    if (!mine) {
      ADD_FAILURE() << path << ": the step has no state '" << key << "'";
      continue;
    }
    ++checked;
    if (info.dtype == KILN_DTYPE_I64) {
      std::vector<int64_t> want(info.count);
      ASSERT_EQ(kiln_safetensors_read_i64(file, info.name, info.count, want.data()), nullptr);
      const int64_t *got = static_cast<const int64_t *>(mine->data());
      for (size_t k = 0; k < info.count; ++k)
        EXPECT_EQ(got[k], want[k]) << key;
      continue;
    }
    std::vector<float> want(info.count);
    ASSERT_EQ(kiln_safetensors_read_f32(file, info.name, info.count, want.data()), nullptr);
    ASSERT_EQ(mine->number_of_elements(), info.count) << key;
    const float *got = static_cast<const float *>(mine->data());
    double worst = 0;
    size_t worstAt = 0, bad = 0;
    for (size_t k = 0; k < info.count; ++k) {
      double err = std::fabs(static_cast<double>(got[k]) - want[k]);
      double ratio = err / (atol + rtol * std::fabs(want[k]));
      if (!(ratio <= 1))
        ++bad;
      if (!(ratio <= worst)) {
        worst = ratio;
        worstAt = k;
      }
    }
    EXPECT_EQ(bad, 0u) << path << ": '" << key << "': " << bad << " of " << info.count
                       << " elements outside the tolerance; worst at " << worstAt << ": "
                       << got[worstAt] << " against " << want[worstAt] << " (" << worst
                       << " tolerances)";
  }
  EXPECT_GT(checked, 0u);
  kiln_safetensors_close(file);
}

/// Runs the fixture case `name` through a JIT-compiled training step: from
/// its initial state, 10 steps (checked after 1 and after 10); or, `resumed`,
/// from PyTorch's state after step 1 (parameters, buffers and torch.optim's
/// state under Kiln's names), steps 2 to 10: what continuing a PyTorch run
/// in Kiln gives, checked against PyTorch's own 10th step.
void checkCase(const std::string &name, bool resumed,
               const kiln::codegen::LoweringOptions &options = {}) {
  llvm::json::Value manifest = readJson(kFixtures + "manifest.json");
  const llvm::json::Object *theCase = nullptr;
  for (const llvm::json::Value &c : *manifest.getAsObject()->getArray("cases"))
    if (c.getAsObject()->getString("name").getValueOr("") == name)
      theCase = c.getAsObject();
  ASSERT_TRUE(theCase) << name;
  const llvm::json::Object &files = *theCase->getObject("files");
  double rtol = *theCase->getObject("tolerance")->getNumber("rtol");
  double atol = *theCase->getObject("tolerance")->getNumber("atol");

  kiln::test::Context test;
  mlir::MLIRContext &context = test.context;
  const std::string &diagnostics = test.diagnostics;
  llvm::SourceMgr sourceMgr;
  std::string kiln = KILN_SOURCE_DIR "/" + theCase->getString("kiln")->str();
  ASSERT_TRUE(succeeded(kiln::readSource(kiln, sourceMgr, &context))) << diagnostics;
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  ASSERT_TRUE(module) << diagnostics;
  (*module)->setAttr("kiln.train", trainSection(context, *theCase->getObject("optimizer")));
  ASSERT_TRUE(succeeded(kiln::prepareForTraining(*module, {}))) << diagnostics;
  std::unique_ptr<kiln::TrainStep> step = kiln::TrainStep::create(*module, options);
  ASSERT_TRUE(step) << diagnostics;
  std::string error;
  std::string start = files.getString(resumed ? "after_1" : "initial")->str();
  ASSERT_TRUE(step->loadState(kFixtures + start, error)) << error;

  kiln_array_t *inputs = nullptr;
  ASSERT_EQ(kiln_npy_read_f32((kFixtures + files.getString("inputs")->str()).c_str(), &inputs),
            nullptr);
  std::vector<int64_t> labels = readNpyI64(kFixtures + files.getString("labels")->str());
  int64_t batch = *theCase->getInteger("batch_size");
  ASSERT_EQ(labels.size(), static_cast<size_t>(10 * batch));
  llvm::json::Value losses = readJson(kFixtures + files.getString("losses")->str());
  const llvm::json::Array &loss = *losses.getAsObject()->getArray("loss");
  const llvm::json::Array &correct = *losses.getAsObject()->getArray("correct");
  const float *x = static_cast<const float *>(kiln_array_const_data(inputs));
  size_t firstStepAllocations = 0;
  // In place: every state tensor keeps its buffer from step to step.
  std::map<std::string, const void *> buffers;
  for (const std::string &key : step->stateKeys())
    buffers[key] = step->state(key)->data();
  for (int i = resumed ? 1 : 0; i < 10; ++i) {
    kiln::StepMetrics metrics;
    ASSERT_TRUE(step->step(x + i * batch * step->sampleSize(), labels.data() + i * batch, batch,
                           metrics, error))
        << error;
    double want = *loss[i].getAsNumber();
    EXPECT_LE(std::fabs(metrics.loss - want), atol + rtol * std::fabs(want))
        << "loss of step " << i + 1 << ": " << metrics.loss << " against " << want;
    EXPECT_EQ(metrics.correct, *correct[i].getAsInteger()) << "step " << i + 1;
    if (i == (resumed ? 1 : 0)) {
      firstStepAllocations = step->systemAllocations();
      EXPECT_GT(firstStepAllocations, 0u);
    }
    if (i == 0)
      expectState(*step, kFixtures + files.getString("after_1")->str(), rtol, atol);
  }
  EXPECT_EQ(step->systemAllocations(), firstStepAllocations)
      << "steps after the first allocated memory";
  for (const std::string &key : step->stateKeys())
    EXPECT_EQ(step->state(key)->data(), buffers[key]) << key << " was not updated in place";
  expectState(*step, kFixtures + files.getString("after_10")->str(), rtol, atol);
  kiln_array_free(inputs);
}

class TrainFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainFixture, MatchesPyTorchAfter1And10Steps) { checkCase(GetParam(), false); }

class ResumedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumedFixture, ContinuesPyTorchsRunFromItsFirstStep) { checkCase(GetParam(), true); }

/// A case on each x86-64 schedule family's target (the register blocks,
/// vector widths and partial sums differ), where this CPU runs it.
class TargetFixture
    : public ::testing::TestWithParam<std::tuple<std::string, const char *>> {};

TEST_P(TargetFixture, MatchesPyTorchOnEveryTarget) {
  auto [name, target] = GetParam();
  if (!kiln::test::hostRuns(Halide::Target(target)))
    GTEST_SKIP() << kiln::test::cannotRunReason(target);
  kiln::codegen::LoweringOptions options;
  std::string error;
  ASSERT_TRUE(kiln::codegen::describeTarget(Halide::Target(target), options.target, error))
      << error;
  checkCase(name, false, options);
}

std::string caseName(const ::testing::TestParamInfo<std::string> &info) {
  std::string name = info.param;
  for (char &c : name)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Train, TrainFixture,
                         ::testing::Values("batchnorm_net/sgd_nesterov", "mlp_bn/sgd_momentum", "simple_nn_bn/sgd", "lenet_bn/sgd_momentum", "lenet/adam", "bn1d_variants/sgd", "bn1d_variants/sgd_momentum", "bn1d_variants/sgd_nesterov", "bn1d_variants/sgd_momentum_wd", "bn1d_variants/sgd_dampening", "bn1d_variants/adam", "bn1d_variants/adam_wd", "bn1d_variants/adamw", "conv_pools/sgd", "conv_pools/sgd_momentum", "conv_pools/sgd_nesterov", "conv_pools/sgd_momentum_wd", "conv_pools/sgd_dampening", "conv_pools/adam", "conv_pools/adam_wd", "conv_pools/adamw", "bn_cumulative/sgd", "bn_cumulative/sgd_momentum", "bn_cumulative/sgd_nesterov", "bn_cumulative/sgd_momentum_wd", "bn_cumulative/sgd_dampening", "bn_cumulative/adam", "bn_cumulative/adam_wd", "bn_cumulative/adamw"),
                         caseName);

// The optimizer states a checkpoint carries: SGD's momentum buffer (with
// dampening, which the first step skips), Adam's moments and step count,
// AdamW's, and a cumulative BatchNorm's num_batches_tracked.
INSTANTIATE_TEST_SUITE_P(Resume, ResumedFixture,
                         ::testing::Values("conv_pools/sgd_momentum", "bn1d_variants/sgd_dampening",
                                           "bn1d_variants/adam", "bn_cumulative/adamw"),
                         caseName);

// One case per kind of layer the schedules treat apart: linear layers
// (matrix products), stride-1 convolutions, and convolutions with stride,
// padding and max-pooling.
INSTANTIATE_TEST_SUITE_P(
    Targets, TargetFixture,
    ::testing::Combine(::testing::Values("mlp_bn/sgd_momentum", "lenet_bn/sgd_momentum",
                                         "conv_pools/adam"),
                       ::testing::ValuesIn(kiln::test::kX86Targets)),
    [](const ::testing::TestParamInfo<std::tuple<std::string, const char *>> &info) {
      std::string name = std::get<0>(info.param) + "_" +
                         kiln::test::targetSuffix(std::get<1>(info.param));
      for (char &c : name)
        if (!isalnum(static_cast<unsigned char>(c)))
          c = '_';
      return name;
    });

} // namespace

//===- ModelTest.cpp - running a compiled model, choosing its variant, ----===//
//===- loading its weights ------------------------------------------------===//
//
// The model runtime on hand-written descriptions whose "pipelines" are
// small C++ functions in Halide's argv form, so each check of
// kiln_model_infer, kiln_model_load_weights and the trainer (trainer.h) is
// tested without compiling a model. The CPU's features come from a fake
// halide_can_use_target_features (in a model, Halide's runtime gives it).
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/call.h"
#include "kiln/runtime/model.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/trainer.h"

#include "HalideRuntime.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <vector>

using namespace kiln::test;

namespace {

// The fake CPU: the variant features it accepts, and how often it was asked.
uint64_t gCpuFeatures = 0;
int gCanUseCalls = 0;

} // namespace

extern "C" int halide_can_use_target_features(int count, const uint64_t *features) {
  ++gCanUseCalls;
  EXPECT_GE(count, 1);
  EXPECT_LE(count, KILN_MODEL_FEATURE_WORDS);
  for (int i = 1; i < count; ++i)
    if (features[i])
      return 0;
  return (features[0] & ~gCpuFeatures) == 0;
}

namespace {

constexpr uint64_t kAvx512 = 1 << 1, kAvx2 = 1 << 2;

halide_buffer_t *bufferArg(void **args, int i) { return static_cast<halide_buffer_t *>(args[i]); }
void *contextArg(void **args) { return *static_cast<void **>(args[0]); }

int64_t elements(const halide_buffer_t *buffer) {
  int64_t count = 1;
  for (int d = 0; d < buffer->dimensions; ++d)
    count *= buffer->dim[d].extent;
  return count;
}

// Each fake pipeline records that it ran.
int gInferCalls = 0, gLoadCalls = 0;
int gLastVariant = -1;

// Embedded weights: output = input * (variant + 2); args: ctx, input, output.
template <int Variant> int embeddedInfer(void **args) {
  ++gInferCalls;
  gLastVariant = Variant;
  EXPECT_NE(kiln_call_of(contextArg(args)), nullptr);
  halide_buffer_t *in = bufferArg(args, 1), *out = bufferArg(args, 2);
  const float *x = reinterpret_cast<const float *>(in->host);
  float *y = reinterpret_cast<float *>(out->host);
  for (int64_t i = 0; i < elements(in); ++i)
    y[i] = x[i] * (Variant + 2);
  return 0;
}

// A pipeline that fails the way Halide's do: a message, then a code.
int failingInfer(void **args) {
  halide_error(contextArg(args), "Input buffer input is accessed at 7, which is beyond the max");
  return halide_error_code_access_out_of_bounds;
}
int silentlyFailingInfer(void **) { return -1; }
// Halide's messages end with a newline; a hostile one holds escapes.
int escapingInfer(void **args) {
  halide_error(contextArg(args), "buffer \x1b[2Jx\xc2\x9b is bad\n");
  return -1;
}

// External weights, one packed weight of 2 channels: output[n][c] =
// input[n][c] * packed[c]; args: ctx, input, packed, output.
int externalInfer(void **args) {
  ++gInferCalls;
  halide_buffer_t *in = bufferArg(args, 1), *w = bufferArg(args, 2), *out = bufferArg(args, 3);
  EXPECT_EQ(w->dimensions, 1);
  EXPECT_EQ(w->dim[0].extent, 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w->host) % 64, 0u); // as pipelines assume
  const float *x = reinterpret_cast<const float *>(in->host);
  const float *scale = reinterpret_cast<const float *>(w->host);
  float *y = reinterpret_cast<float *>(out->host);
  for (int64_t i = 0; i < elements(in); ++i)
    y[i] = x[i] * scale[i % 2];
  return 0;
}

// The load pipeline: packed = w * 10 (the "fold"); args: ctx, w, packed.
int externalLoad(void **args) {
  ++gLoadCalls;
  halide_buffer_t *w = bufferArg(args, 1), *packed = bufferArg(args, 2);
  const float *src = reinterpret_cast<const float *>(w->host);
  float *dst = reinterpret_cast<float *>(packed->host);
  for (int64_t i = 0; i < elements(packed); ++i)
    dst[i] = src[i] * 10.0f;
  return 0;
}

int failingLoad(void **args) {
  halide_error(contextArg(args), "the load pipeline failed");
  return -3;
}

const int64_t kShape[] = {-1, 2};
const int32_t kTwo[] = {2};
const kiln_model_layout_t kLayouts[] = {{1, kTwo}};
const char *const kStateNames[] = {"fc.weight"};
const int64_t kWeightShape[] = {2};
const kiln_model_state_key_t kStateKeys[] = {
    {"fc.weight", "parameter", 0, 1, kWeightShape},
    {"bn.num_batches_tracked", "buffer", 1, 0, nullptr},
};

// The stages the variants point to: a deque keeps their addresses.
std::deque<std::vector<kiln_model_stage_t>> gStages;

kiln_model_variant_t withStages(kiln_model_variant_t variant,
                                std::vector<kiln_model_stage_t> stages) {
  gStages.push_back(std::move(stages));
  variant.stage_count = gStages.back().size();
  variant.stages = gStages.back().data();
  return variant;
}

// The one stage of a variant, to change in a test.
kiln_model_stage_t &onlyStage(const kiln_model_variant_t &variant) {
  return const_cast<kiln_model_stage_t &>(variant.stages[0]);
}

kiln_model_variant_t embeddedVariant(const char *target, uint64_t features,
                                     kiln_model_pipeline_t infer) {
  kiln_model_variant_t variant = {};
  variant.target = target;
  variant.features[0] = features;
  return withStages(variant, {{infer, nullptr, 0, 0, 0, 0, {2, kShape}}});
}

kiln_model_variant_t externalVariant(kiln_model_pipeline_t load = externalLoad) {
  kiln_model_variant_t variant = embeddedVariant("x86-64-linux-avx2-fma", kAvx2, externalInfer);
  onlyStage(variant) = {externalInfer, load, 0, 1, 0, 1, {2, kShape}};
  variant.state_tensor_count = 1;
  variant.state_tensor_names = kStateNames;
  variant.state_tensor_layouts = kLayouts;
  variant.packed_count = 1;
  variant.packed_layouts = kLayouts;
  return variant;
}

class ModelTest : public TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    gCpuFeatures = kAvx2;
    gCanUseCalls = gInferCalls = gLoadCalls = 0;
    gLastVariant = -1;
  }
  void TearDown() override {
    if (model_.state)
      kiln_model_free_weights(&model_);
    TempDirTest::TearDown();
  }
  void use(std::vector<kiln_model_variant_t> variants, bool external = false) {
    variants_ = std::move(variants);
    state_ = {};
    model_ = {};
    model_.name = "net";
    model_.input = {2, kShape};
    model_.output = {2, kShape};
    model_.variant_count = variants_.size();
    model_.variants = variants_.data();
    model_.external_weights = external;
    model_.state_key_count = external ? 2 : 0;
    model_.state_keys = external ? kStateKeys : nullptr;
    model_.state = &state_;
  }
  int infer(int64_t batch = 3) {
    input_.assign(6, 0.0f);
    for (size_t i = 0; i < input_.size(); ++i)
      input_[i] = static_cast<float>(i + 1);
    output_.assign(6, -1.0f);
    return kiln_model_infer(&model_, input_.data(), batch, output_.data(), error_);
  }
  /// A weights file with the given tensors (F32 unless an integer dtype).
  std::string weights(const std::string &name,
                      std::vector<std::tuple<const char *, kiln_dtype_t, std::vector<int64_t>,
                                             std::string>> tensors) {
    kiln_safetensors_writer_t *writer = nullptr;
    KILN_EXPECT_OK(kiln_safetensors_writer_create(&writer));
    for (auto &[key, dtype, shape, bytes] : tensors)
      KILN_EXPECT_OK(kiln_safetensors_writer_add(writer, key, dtype, shape.size(), shape.data(),
                                                 bytes.data()));
    KILN_EXPECT_OK(kiln_safetensors_writer_write(writer, path(name).c_str()));
    kiln_safetensors_writer_free(writer);
    return path(name);
  }
  std::string goodWeights(const std::string &name = "good.safetensors", float a = 1, float b = 2) {
    return weights(name, {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{a, b})},
                          {"bn.num_batches_tracked", KILN_DTYPE_I64, {},
                           bytesOf(std::vector<int64_t>{7})}});
  }
  int load(const std::string &file) {
    return kiln_model_load_weights(&model_, file.c_str(), error_);
  }

  std::vector<kiln_model_variant_t> variants_;
  kiln_model_state_t state_ = {};
  kiln_model_t model_ = {};
  char error_[KILN_MODEL_ERROR_SIZE] = "";
  std::vector<float> input_, output_;
};

//===--- Running -----------------------------------------------------------===//

TEST_F(ModelTest, InferRunsThePipelineOnTheCallersArrays) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<0>)});
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(output_, (std::vector<float>{2, 4, 6, 8, 10, 12}));
  EXPECT_STREQ(error_, "");
}

TEST_F(ModelTest, InferChecksItsArguments) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<0>)});
  float x[2] = {0, 0};
  EXPECT_EQ(kiln_model_infer(&model_, nullptr, 1, x, error_), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(error_).find("invalid argument"), std::string::npos) << error_;
  EXPECT_EQ(kiln_model_infer(&model_, x, 1, nullptr, error_), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_model_infer(&model_, x, -1, x, error_), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(error_).find("(batch -1)"), std::string::npos) << error_;
  EXPECT_EQ(kiln_model_infer(&model_, x, int64_t(1) << 31, x, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(gInferCalls, 0);
}

TEST_F(ModelTest, EmptyBatchRunsNothing) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<0>)});
  EXPECT_EQ(infer(0), 0);
  EXPECT_EQ(gInferCalls, 0);
}

TEST_F(ModelTest, HalideErrorsComeBackAsMessages) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, failingInfer)});
  EXPECT_EQ(infer(), halide_error_code_access_out_of_bounds);
  EXPECT_STREQ(error_, "Input buffer input is accessed at 7, which is beyond the max");
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, silentlyFailingInfer)});
  EXPECT_EQ(infer(), -1);
  EXPECT_STREQ(error_, "Halide runtime error");
}

TEST_F(ModelTest, ErrorsAreOneLineWithoutControlCharacters) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, escapingInfer)});
  EXPECT_EQ(infer(), -1);
  EXPECT_STREQ(error_, "buffer \\x1b[2Jx\\u009b is bad");
}

//===--- Choosing a variant --------------------------------------------------===//

TEST_F(ModelTest, TheFirstVariantTheCpuSupportsRunsAndIsChosenOnce) {
  use({embeddedVariant("x86-64-linux-avx512_skylake", kAvx512, embeddedInfer<0>),
       embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<1>),
       embeddedVariant("x86-64-linux-sse41", 0, embeddedInfer<2>)});
  gCpuFeatures = kAvx2;
  EXPECT_STREQ(kiln_model_variant(&model_), "x86-64-linux-avx2-fma");
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(gLastVariant, 1);
  EXPECT_EQ(output_[0], 3.0f);
  int asked = gCanUseCalls;
  EXPECT_EQ(asked, 2); // the AVX-512 variant, then the AVX2 one
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(infer(), 0);
  EXPECT_EQ(gCanUseCalls, asked);
  EXPECT_EQ(kiln_model_select(&model_), 1);
}

TEST_F(ModelTest, MostSpecificVariantWinsWhereTheCpuHasIt) {
  use({embeddedVariant("x86-64-linux-avx512_skylake", kAvx512, embeddedInfer<0>),
       embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<1>),
       embeddedVariant("x86-64-linux-sse41", 0, embeddedInfer<2>)});
  gCpuFeatures = kAvx512 | kAvx2;
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(gLastVariant, 0);
  EXPECT_STREQ(kiln_model_variant(&model_), "x86-64-linux-avx512_skylake");
}

TEST_F(ModelTest, ACpuThatRunsNoVariantGetsAnError) {
  use({embeddedVariant("x86-64-linux-avx512_skylake", kAvx512, embeddedInfer<0>),
       embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<1>)});
  gCpuFeatures = 0;
  EXPECT_EQ(kiln_model_variant(&model_), nullptr);
  EXPECT_EQ(kiln_model_select(&model_), -1);
  EXPECT_EQ(infer(), KILN_MODEL_ERROR_TARGET);
  EXPECT_STREQ(error_, "this CPU supports none of the targets net was built for: "
                       "x86-64-linux-avx512_skylake, x86-64-linux-avx2-fma");
  EXPECT_EQ(gInferCalls, 0);
}

TEST_F(ModelTest, ASingleVariantRunsWithoutAskingTheCpu) {
  use({embeddedVariant("x86-64-linux-avx512_skylake", kAvx512, embeddedInfer<0>)});
  gCpuFeatures = 0;
  EXPECT_EQ(infer(), 0);
  EXPECT_STREQ(kiln_model_variant(&model_), "x86-64-linux-avx512_skylake");
  EXPECT_EQ(gCanUseCalls, 0);
}

//===--- Loading weights ----------------------------------------------------===//

TEST_F(ModelTest, InferBeforeALoadFails) {
  use({externalVariant()}, /*external=*/true);
  EXPECT_EQ(infer(), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_STREQ(error_, "no weights loaded: call net_load_weights first");
}

TEST_F(ModelTest, LoadRunsTheLoadPipelineAndInferUsesItsResult) {
  use({externalVariant()}, true);
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  EXPECT_EQ(gLoadCalls, 1);
  EXPECT_EQ(infer(), 0) << error_;
  EXPECT_EQ(output_, (std::vector<float>{10, 40, 30, 80, 50, 120}));
}

TEST_F(ModelTest, MissingTensor) {
  use({externalVariant()}, true);
  std::string file = weights("missing.safetensors",
                             {{"bn.num_batches_tracked", KILN_DTYPE_I64, {},
                               bytesOf(std::vector<int64_t>{7})}});
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_), file + ": no tensor 'fc.weight' for this model's parameter");
  EXPECT_EQ(gLoadCalls, 0);
}

TEST_F(ModelTest, WrongShape) {
  use({externalVariant()}, true);
  std::string file = weights("shape.safetensors",
                             {{"fc.weight", KILN_DTYPE_F32, {1, 3},
                               bytesOf(std::vector<float>{1, 2, 3})},
                              {"bn.num_batches_tracked", KILN_DTYPE_I64, {},
                               bytesOf(std::vector<int64_t>{7})}});
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_),
            file + ": tensor 'fc.weight' has shape [1, 3], the model expects [2]");
}

TEST_F(ModelTest, IntegerBuffersMustHoldIntegers) {
  use({externalVariant()}, true);
  std::string file = weights("float_count.safetensors",
                             {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{1, 2})},
                              {"bn.num_batches_tracked", KILN_DTYPE_F32, {},
                               bytesOf(std::vector<float>{7})}});
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_NE(std::string(error_).find("bn.num_batches_tracked"), std::string::npos) << error_;
  // Any integer dtype will do, as for the build.
  file = weights("i32_count.safetensors",
                 {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{1, 2})},
                  {"bn.num_batches_tracked", KILN_DTYPE_I32, {}, bytesOf(std::vector<int32_t>{7})}});
  EXPECT_EQ(load(file), 0) << error_;
}

TEST_F(ModelTest, UnknownTensorsAreErrorsUnlessAllowed) {
  use({externalVariant()}, true);
  std::string file = weights("extra.safetensors",
                             {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{1, 2})},
                              {"bn.num_batches_tracked", KILN_DTYPE_I64, {},
                               bytesOf(std::vector<int64_t>{7})},
                              {"head.weight", KILN_DTYPE_F32, {1}, bytesOf(std::vector<float>{3})}});
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_), file + ": tensor 'head.weight' is not a parameter of this model");
  model_.allow_extra_keys = 1;
  EXPECT_EQ(load(file), 0) << error_;
}

TEST_F(ModelTest, TensorNamesAndPathsInErrorsAreEscaped) {
  use({externalVariant()}, true);
  std::string file = weights("extra\x07.safetensors",
                             {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{1, 2})},
                              {"bn.num_batches_tracked", KILN_DTYPE_I64, {},
                               bytesOf(std::vector<int64_t>{7})},
                              {"head\x1b[31m", KILN_DTYPE_F32, {1}, bytesOf(std::vector<float>{3})}});
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_), path("extra\\x07.safetensors") +
                                     ": tensor 'head\\x1b[31m' is not a parameter of this model");
}

TEST_F(ModelTest, UnreadableFilesNameThePath) {
  use({externalVariant()}, true);
  EXPECT_EQ(load(path("none.safetensors")), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_NE(std::string(error_).find(path("none.safetensors")), std::string::npos) << error_;
  writeBytes(path("garbage.safetensors"), "garbage");
  EXPECT_EQ(load(path("garbage.safetensors")), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_NE(std::string(error_).find("garbage.safetensors"), std::string::npos) << error_;
  EXPECT_EQ(kiln_model_load_weights(&model_, nullptr, error_), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(error_, "invalid argument: path is NULL");
}

TEST_F(ModelTest, AFailedLoadKeepsThePreviousWeights) {
  use({externalVariant()}, true);
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  ASSERT_EQ(infer(), 0);
  std::vector<float> before = output_;
  std::string bad = weights("bad.safetensors", {{"fc.weight", KILN_DTYPE_F32, {3},
                                                 bytesOf(std::vector<float>{1, 2, 3})}});
  EXPECT_EQ(load(bad), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(infer(), 0) << error_;
  EXPECT_EQ(output_, before);
  // A good reload replaces them.
  ASSERT_EQ(load(goodWeights("other.safetensors", 3, 4)), 0) << error_;
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(output_, (std::vector<float>{30, 80, 90, 160, 150, 240}));
}

TEST_F(ModelTest, NonFiniteValuesAreRefusedNamingTheTensorAndElement) {
  use({externalVariant()}, true);
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  float nan = std::numeric_limits<float>::quiet_NaN();
  float inf = std::numeric_limits<float>::infinity();
  std::string file = goodWeights("nan.safetensors", 1, nan);
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_), file + ": tensor 'fc.weight' has a NaN or infinite value (the "
                                        "first at element 1: nan); build with kilnc build "
                                        "--allow-nonfinite to accept such values");
  file = goodWeights("inf.safetensors", -inf, 1);
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_NE(std::string(error_).find("(the first at element 0: -inf)"), std::string::npos)
      << error_;
  // The weights loaded before stay.
  EXPECT_EQ(infer(), 0) << error_;
  EXPECT_EQ(output_[1], 40.0f);
}

TEST_F(ModelTest, NegativeRunningVariancesAreRefused) {
  const kiln_model_state_key_t keys[] = {{"fc.weight", "buffer", 0, 1, kWeightShape, 1},
                                         {"bn.num_batches_tracked", "buffer", 1, 0, nullptr}};
  use({externalVariant()}, true);
  model_.state_keys = keys;
  std::string file = goodWeights("var.safetensors", 0.5f, -1e-7f);
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_NE(std::string(error_).find("tensor 'fc.weight' has a negative variance (the first at "
                                     "element 1: -1e-07)"),
            std::string::npos)
      << error_;
  // The same values in a tensor that is not a variance are ordinary.
  model_.state_keys = kStateKeys;
  EXPECT_EQ(load(file), 0) << error_;
}

TEST_F(ModelTest, AllowNonfiniteAcceptsThem) {
  use({externalVariant()}, true);
  model_.allow_nonfinite = 1;
  float nan = std::numeric_limits<float>::quiet_NaN();
  ASSERT_EQ(load(goodWeights("nan.safetensors", nan, 2)), 0) << error_;
  EXPECT_EQ(infer(), 0) << error_;
  EXPECT_TRUE(std::isnan(output_[0]));
}

TEST_F(ModelTest, AFailedLoadPipelineKeepsThePreviousWeights) {
  use({externalVariant()}, true);
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  onlyStage(variants_[0]).load = failingLoad;
  std::string file = goodWeights("again.safetensors", 5, 6);
  EXPECT_EQ(load(file), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(std::string(error_), file + ": the load pipeline failed");
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(output_[1], 40.0f);
}

TEST_F(ModelTest, FreeWeightsMakesInferFailAgain) {
  use({externalVariant()}, true);
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  kiln_model_free_weights(&model_);
  EXPECT_EQ(infer(), KILN_MODEL_ERROR_WEIGHTS);
  kiln_model_free_weights(&model_); // twice is allowed
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  EXPECT_EQ(infer(), 0);
}

// The variant that runs on this CPU is the one whose load pipeline packs.
int wrongLoad(void **) {
  ADD_FAILURE() << "the load pipeline of a variant this CPU does not run";
  return -1;
}

TEST_F(ModelTest, LoadPacksForTheVariantThatRuns) {
  kiln_model_variant_t avx512 = externalVariant(wrongLoad);
  avx512.target = "x86-64-linux-avx512_skylake";
  avx512.features[0] = kAvx512;
  use({avx512, externalVariant()}, true);
  gCpuFeatures = kAvx2;
  ASSERT_EQ(load(goodWeights()), 0) << error_;
  EXPECT_EQ(gLoadCalls, 1);
  EXPECT_EQ(infer(), 0);
  EXPECT_EQ(output_[1], 40.0f);
}

// Two stages: the first writes [N, 3] = (a + b, a - b, a * b) of [N, 2],
// the second reads it and writes [N, 2] = (sum of the three, the product).
const int64_t kBetweenShape[] = {-1, 3};
float *gBetween = nullptr;

int firstStage(void **args) {
  halide_buffer_t *in = bufferArg(args, 1), *out = bufferArg(args, 2);
  EXPECT_EQ(out->dimensions, 2);
  EXPECT_EQ(out->dim[0].extent, 3);
  EXPECT_EQ(out->dim[1].extent, in->dim[1].extent);
  EXPECT_EQ(out->dim[1].stride, 3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out->host) % 64, 0u);
  const float *x = reinterpret_cast<const float *>(in->host);
  float *y = reinterpret_cast<float *>(out->host);
  gBetween = y;
  for (int n = 0; n < in->dim[1].extent; ++n) {
    float a = x[2 * n], b = x[2 * n + 1];
    y[3 * n] = a + b;
    y[3 * n + 1] = a - b;
    y[3 * n + 2] = a * b;
  }
  return 0;
}

int secondStage(void **args) {
  halide_buffer_t *in = bufferArg(args, 1), *out = bufferArg(args, 2);
  EXPECT_EQ(reinterpret_cast<float *>(in->host), gBetween);
  EXPECT_EQ(in->dim[0].extent, 3);
  const float *x = reinterpret_cast<const float *>(in->host);
  float *y = reinterpret_cast<float *>(out->host);
  for (int n = 0; n < in->dim[1].extent; ++n) {
    y[2 * n] = x[3 * n] + x[3 * n + 1] + x[3 * n + 2];
    y[2 * n + 1] = x[3 * n + 2];
  }
  return 0;
}

TEST_F(ModelTest, StagesRunInOrderThroughTheTensorBetweenThem) {
  kiln_model_variant_t variant = {};
  variant.target = "x86-64-linux-avx2-fma";
  variant.features[0] = kAvx2;
  use({withStages(variant, {{firstStage, nullptr, 0, 0, 0, 0, {2, kBetweenShape}},
                            {secondStage, nullptr, 0, 0, 0, 0, {2, kShape}}})});
  for (int repeat = 0; repeat < 2; ++repeat) {
    gBetween = nullptr;
    ASSERT_EQ(infer(3), 0) << error_;
    ASSERT_NE(gBetween, nullptr);
    EXPECT_NE(gBetween, output_.data());
    for (int n = 0; n < 3; ++n) {
      float a = static_cast<float>(2 * n + 1), b = a + 1;
      EXPECT_EQ(output_[2 * n], (a + b) + (a - b) + a * b) << n;
      EXPECT_EQ(output_[2 * n + 1], a * b) << n;
    }
  }
}

TEST_F(ModelTest, AFailingLaterStageReportsItsMessage) {
  kiln_model_variant_t variant = {};
  variant.target = "x86-64-linux-avx2-fma";
  variant.features[0] = kAvx2;
  use({withStages(variant, {{firstStage, nullptr, 0, 0, 0, 0, {2, kBetweenShape}},
                            {failingInfer, nullptr, 0, 0, 0, 0, {2, kShape}}})});
  EXPECT_EQ(infer(), halide_error_code_access_out_of_bounds);
  EXPECT_NE(std::string(error_).find("beyond the max"), std::string::npos) << error_;
}

TEST_F(ModelTest, EmbeddedModelsHaveNothingToLoad) {
  use({embeddedVariant("x86-64-linux-avx2-fma", kAvx2, embeddedInfer<0>)});
  EXPECT_EQ(load(goodWeights()), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(error_).find("compiled in"), std::string::npos) << error_;
}

//===--- The trainer (trainer.h) -------------------------------------------===//

// A fake training step of two stages, as kilnc builds them. The gradients,
// args: ctx, input [N, 2], labels [N], fc.weight [2], then grad [2] (a
// scratch tensor), loss, correct: grad = the column sums of the input, loss
// = the batch, correct = the first label. The update, args: ctx, fc.weight,
// step (an int64 scalar), grad, then fc.weight and step again, in place:
// fc.weight += grad, step += 1.
const void *gUpdateRead = nullptr, *gUpdateWrote = nullptr, *gGradWrote = nullptr;
bool gFailGradients = false, gFailUpdate = false;
int fakeGradients(void **args) {
  halide_buffer_t *in = bufferArg(args, 1), *labels = bufferArg(args, 2),
                  *w = bufferArg(args, 3), *grad = bufferArg(args, 4),
                  *loss = bufferArg(args, 5), *correct = bufferArg(args, 6);
  EXPECT_EQ(in->dimensions, 2);
  EXPECT_EQ(in->dim[0].extent, 2);
  EXPECT_EQ(labels->type.code, halide_type_int);
  EXPECT_EQ(labels->type.bits, 64);
  EXPECT_EQ(w->dimensions, 1);
  EXPECT_EQ(grad->dimensions, 1);
  EXPECT_EQ(grad->dim[0].extent, 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(grad->host) % 64, 0u);
  if (gFailGradients) {
    halide_error(contextArg(args), "the gradients failed");
    return halide_error_code_device_malloc_failed;
  }
  gGradWrote = grad->host;
  const float *x = reinterpret_cast<const float *>(in->host);
  float *g = reinterpret_cast<float *>(grad->host);
  int64_t batch = in->dim[1].extent;
  for (int c = 0; c < 2; ++c) {
    g[c] = 0;
    for (int64_t n = 0; n < batch; ++n)
      g[c] += x[2 * n + c];
  }
  *reinterpret_cast<float *>(loss->host) = static_cast<float>(batch);
  *reinterpret_cast<int64_t *>(correct->host) = reinterpret_cast<int64_t *>(labels->host)[0];
  return 0;
}
int fakeUpdate(void **args) {
  halide_buffer_t *w = bufferArg(args, 1), *step = bufferArg(args, 2),
                  *grad = bufferArg(args, 3), *wNext = bufferArg(args, 4),
                  *stepNext = bufferArg(args, 5);
  EXPECT_EQ(step->dimensions, 0);
  EXPECT_EQ(grad->host, gGradWrote); // what the gradients stage wrote
  gUpdateRead = w->host;
  gUpdateWrote = wNext->host;
  float *weight = reinterpret_cast<float *>(wNext->host);
  const float *old = reinterpret_cast<const float *>(w->host);
  const float *g = reinterpret_cast<const float *>(grad->host);
  // A failing update may have written part of the state (a GPU's could).
  weight[0] = old[0] + g[0];
  if (gFailUpdate) {
    halide_error(contextArg(args), "the device failed");
    return halide_error_code_device_run_failed;
  }
  weight[1] = old[1] + g[1];
  *reinterpret_cast<int64_t *>(stepNext->host) = *reinterpret_cast<int64_t *>(step->host) + 1;
  return 0;
}

const kiln_trainer_tensor_t kTrainState[] = {
    {"fc.weight", 0, 1, kWeightShape, 0},
    {"step", 1, 0, nullptr, 1},
};
const kiln_trainer_tensor_t kScratch[] = {{"grad", 0, 1, kWeightShape, 0}};
const kiln_model_pipeline_t kSteps[] = {fakeGradients, fakeUpdate};
const int kGradientsInputs[] = {KILN_TRAINER_ARG_INPUT, KILN_TRAINER_ARG_LABELS, 0};
const int kGradientsOutputs[] = {KILN_TRAINER_ARG_SCRATCH(0), KILN_TRAINER_ARG_LOSS,
                                 KILN_TRAINER_ARG_CORRECT};
const int kUpdateInputs[] = {0, 1, KILN_TRAINER_ARG_SCRATCH(0)};
const int kUpdateOutputs[] = {0, 1};
const kiln_trainer_stage_t kStages[] = {{3, kGradientsInputs, 3, kGradientsOutputs},
                                        {3, kUpdateInputs, 2, kUpdateOutputs}};

class TrainerTest : public ModelTest {
protected:
  void SetUp() override {
    ModelTest::SetUp();
    use({externalVariant()}, /*external=*/true);
    gFailGradients = gFailUpdate = false;
    trainerModel_ = {"net", &model_, 3, 2, 2, kTrainState, kSteps, 2, kStages, 1, kScratch};
    ASSERT_EQ(kiln_trainer_create(&trainerModel_, &trainer_, error_), 0) << error_;
  }
  void TearDown() override {
    kiln_trainer_destroy(trainer_);
    ModelTest::TearDown();
  }
  int step(int64_t batch = 3, std::vector<int64_t> labels = {2, 0, 1}) {
    input_ = {1, 2, 3, 4, 5, 6};
    return kiln_trainer_step(trainer_, input_.data(), labels.data(), batch, &loss_, &correct_,
                             error_);
  }
  std::vector<float> weight() {
    const float *w = static_cast<const float *>(kiln_trainer_state_data(trainer_, 0));
    return {w[0], w[1]};
  }
  int64_t stepCount() { return *static_cast<int64_t *>(kiln_trainer_state_data(trainer_, 1)); }
  int loadState(const std::string &file) {
    return kiln_trainer_load_state(trainer_, file.c_str(), error_);
  }
  std::string message() const { return error_; }

  kiln_trainer_model_t trainerModel_ = {};
  kiln_trainer_t *trainer_ = nullptr;
  float loss_ = 0;
  int64_t correct_ = -1;
};

TEST_F(TrainerTest, StepsAndSavesFailBeforeALoad) {
  EXPECT_EQ(step(), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(message(), "no state loaded: call net_load_state first");
  EXPECT_EQ(kiln_trainer_save_state(trainer_, path("out.safetensors").c_str(), error_),
            KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(kiln_trainer_eval(trainer_, input_.data(), 1, output_.data(), error_),
            KILN_MODEL_ERROR_WEIGHTS);
}

TEST_F(TrainerTest, TheUpdateWritesTheStateInPlace) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  EXPECT_EQ(stepCount(), 0); // optimizer state absent from the file: zero
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(weight(), (std::vector<float>{1 + 9, 2 + 12}));
  EXPECT_EQ(stepCount(), 1);
  EXPECT_EQ(loss_, 3.0f);
  EXPECT_EQ(correct_, 2);
  EXPECT_EQ(gUpdateRead, gUpdateWrote);
  EXPECT_EQ(gUpdateWrote, kiln_trainer_state_data(trainer_, 0));
  const void *wrote = gUpdateWrote, *grad = gGradWrote;
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(gUpdateWrote, wrote);
  EXPECT_EQ(gGradWrote, grad); // the scratch tensors are allocated once
  EXPECT_EQ(weight(), (std::vector<float>{19, 26}));
  EXPECT_EQ(stepCount(), 2);
}

TEST_F(TrainerTest, AFailedGradientsStageChangesNothing) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  gFailGradients = true;
  EXPECT_EQ(step(), halide_error_code_device_malloc_failed);
  EXPECT_NE(message().find("the gradients failed"), std::string::npos) << message();
  EXPECT_EQ(weight(), (std::vector<float>{1, 2}));
  EXPECT_EQ(stepCount(), 0);
  gFailGradients = false;
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(weight(), (std::vector<float>{10, 14}));
}

TEST_F(TrainerTest, AFailedUpdateRefusesStepsUntilALoad) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  gFailUpdate = true;
  EXPECT_EQ(step(), halide_error_code_device_run_failed);
  EXPECT_NE(message().find("the device failed"), std::string::npos) << message();
  EXPECT_NE(message().find("the training state is partly updated: load a state before the next "
                           "step"),
            std::string::npos)
      << message();
  gFailUpdate = false;
  EXPECT_EQ(step(), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(message(), "no state loaded: call net_load_state first");
  EXPECT_EQ(kiln_trainer_save_state(trainer_, path("out.safetensors").c_str(), error_),
            KILN_MODEL_ERROR_WEIGHTS);
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(weight(), (std::vector<float>{10, 14}));
}

TEST_F(TrainerTest, BadBatchesAreRefusedBeforeAnythingRuns) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  EXPECT_EQ(step(1), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "expected more than 1 value per channel when training, got a batch of 1");
  EXPECT_EQ(step(3, {0, 3, 1}), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "label 3 of sample 1 is out of bounds: the model has 3 classes");
  EXPECT_EQ(step(3, {0, -1, 1}), KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(weight(), (std::vector<float>{1, 2}));
  EXPECT_EQ(stepCount(), 0);
}

TEST_F(TrainerTest, AFailedLoadChangesNothing) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  std::string missing = weights("missing.safetensors", {});
  EXPECT_EQ(loadState(missing), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(message(), missing + ": no tensor 'fc.weight'");
  std::string shape = weights(
      "shape.safetensors", {{"fc.weight", KILN_DTYPE_F32, {1, 2}, bytesOf(std::vector<float>{5, 6})},
                            {"step", KILN_DTYPE_I64, {}, bytesOf(std::vector<int64_t>{4})}});
  EXPECT_EQ(loadState(shape), KILN_MODEL_ERROR_WEIGHTS);
  EXPECT_EQ(message(), shape + ": tensor 'fc.weight' has another shape than the model's");
  EXPECT_EQ(weight(), (std::vector<float>{1, 2}));
}

TEST_F(TrainerTest, SavedStateLoadsBackWithTheSameNames) {
  std::string init = weights(
      "init.safetensors", {{"fc.weight", KILN_DTYPE_F32, {2}, bytesOf(std::vector<float>{1, 2})},
                           {"step", KILN_DTYPE_I64, {}, bytesOf(std::vector<int64_t>{40})}});
  ASSERT_EQ(loadState(init), 0) << error_;
  EXPECT_EQ(stepCount(), 40);
  ASSERT_EQ(step(), 0) << error_;
  std::string out = path("out.safetensors");
  ASSERT_EQ(kiln_trainer_save_state(trainer_, out.c_str(), error_), 0) << error_;
  kiln_safetensors_t *file = nullptr;
  KILN_ASSERT_OK(kiln_safetensors_open(out.c_str(), &file));
  float w[2];
  int64_t steps = 0;
  KILN_EXPECT_OK(kiln_safetensors_read_f32(file, "fc.weight", 2, w));
  KILN_EXPECT_OK(kiln_safetensors_read_i64(file, "step", 1, &steps));
  EXPECT_EQ(w[0], 10);
  EXPECT_EQ(w[1], 14);
  EXPECT_EQ(steps, 41);
  const char *value = nullptr;
  KILN_EXPECT_OK(kiln_safetensors_metadata_get(file, "generator", &value));
  EXPECT_STREQ(value, KILN_CHECKPOINT_GENERATOR);
  KILN_EXPECT_OK(kiln_safetensors_metadata_get(file, "steps", &value));
  EXPECT_STREQ(value, "1"); // since the load
  kiln_safetensors_close(file);
  EXPECT_EQ(kiln_trainer_save_state(trainer_, dir_.c_str(), error_), KILN_TRAINER_ERROR_WRITE);
}

TEST_F(TrainerTest, EvalPacksTheStateOncePerChange) {
  ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  input_ = {1, 2, 3, 4, 5, 6};
  output_.assign(6, -1);
  ASSERT_EQ(kiln_trainer_eval(trainer_, input_.data(), 3, output_.data(), error_), 0) << error_;
  EXPECT_EQ(output_, (std::vector<float>{10, 40, 30, 80, 50, 120})); // x * fc.weight * 10
  ASSERT_EQ(kiln_trainer_eval(trainer_, input_.data(), 3, output_.data(), error_), 0) << error_;
  EXPECT_EQ(gLoadCalls, 1);
  ASSERT_EQ(step(), 0) << error_;
  ASSERT_EQ(kiln_trainer_eval(trainer_, input_.data(), 3, output_.data(), error_), 0) << error_;
  EXPECT_EQ(gLoadCalls, 2);
  EXPECT_EQ(output_[0], 100); // 1 * (1 + 9) * 10
}

// A step of one stage with two hyper-parameters after its inputs (lr,
// momentum: scalars, pointed to by the argv), its state in place:
// fc.weight' = fc.weight + lr · the column sums, loss = momentum.
int fakeStepWithHyperParameters(void **args) {
  halide_buffer_t *in = bufferArg(args, 1), *w = bufferArg(args, 3), *step = bufferArg(args, 4),
                  *wNext = bufferArg(args, 7), *stepNext = bufferArg(args, 8),
                  *loss = bufferArg(args, 9), *correct = bufferArg(args, 10);
  double lr = *static_cast<double *>(args[5]), momentum = *static_cast<double *>(args[6]);
  const float *x = reinterpret_cast<const float *>(in->host);
  const float *weight = reinterpret_cast<const float *>(w->host);
  float *next = reinterpret_cast<float *>(wNext->host);
  for (int c = 0; c < 2; ++c) {
    next[c] = weight[c];
    for (int64_t n = 0; n < in->dim[1].extent; ++n)
      next[c] += static_cast<float>(lr) * x[2 * n + c];
  }
  *reinterpret_cast<int64_t *>(stepNext->host) = *reinterpret_cast<int64_t *>(step->host) + 1;
  *reinterpret_cast<float *>(loss->host) = static_cast<float>(momentum);
  *reinterpret_cast<int64_t *>(correct->host) = 0;
  return 0;
}

const kiln_model_pipeline_t kHyperSteps[] = {fakeStepWithHyperParameters};
const int kHyperStepInputs[] = {KILN_TRAINER_ARG_INPUT, KILN_TRAINER_ARG_LABELS, 0, 1,
                                KILN_TRAINER_ARG_HYPER_PARAMETER(0),
                                KILN_TRAINER_ARG_HYPER_PARAMETER(1)};
const int kHyperStepOutputs[] = {0, 1, KILN_TRAINER_ARG_LOSS, KILN_TRAINER_ARG_CORRECT};
const kiln_trainer_stage_t kHyperStages[] = {{6, kHyperStepInputs, 4, kHyperStepOutputs}};
const kiln_trainer_hyper_parameter_t kHyper[] = {{"lr", 0.5}, {"momentum", 0}};

class TrainerHyperParameterTest : public TrainerTest {
protected:
  void SetUp() override {
    ModelTest::SetUp();
    use({externalVariant()}, /*external=*/true);
    trainerModel_ = {"net",    &model_, 3, 2, 2, kTrainState, kHyperSteps, 1, kHyperStages, 0,
                     nullptr, "sgd",   0, 0, 2, kHyper};
    ASSERT_EQ(kiln_trainer_create(&trainerModel_, &trainer_, error_), 0) << error_;
    ASSERT_EQ(loadState(goodWeights()), 0) << error_;
  }
  double get(const char *name) {
    double value = -1;
    EXPECT_EQ(kiln_trainer_hyper_parameter(trainer_, name, &value, error_), 0) << error_;
    return value;
  }
};

TEST_F(TrainerHyperParameterTest, TheStepReadsTheDefaultsThenWhatWasSet) {
  EXPECT_EQ(get("lr"), 0.5);
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(weight(), (std::vector<float>{1 + 4.5f, 2 + 6}));
  ASSERT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "lr", 2, error_), 0) << error_;
  EXPECT_EQ(get("lr"), 2);
  ASSERT_EQ(step(), 0) << error_;
  EXPECT_EQ(weight(), (std::vector<float>{5.5f + 18, 8 + 24}));
  EXPECT_EQ(loss_, 0.0f);
}

TEST_F(TrainerHyperParameterTest, BadValuesAndNamesChangeNothing) {
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "lr", -1, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "Invalid learning rate value: -1 (lr must be >= 0)");
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "lr", NAN, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "lr must be a finite number, not nan");
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "lr", INFINITY, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(get("lr"), 0.5);
  // No momentum buffers: the momentum stays 0.
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "momentum", 0.9, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(message().find("net was built without momentum"), std::string::npos) << message();
  EXPECT_EQ(get("momentum"), 0);
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "momentum", 0, error_), 0) << error_;
  double value = 7;
  EXPECT_EQ(kiln_trainer_hyper_parameter(trainer_, "beta1", &value, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "sgd has no hyper-parameter 'beta1' (its hyper-parameters: lr, momentum)");
  EXPECT_EQ(value, 7);
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, nullptr, 1, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
}

TEST_F(TrainerHyperParameterTest, NesterovNeedsMomentumAndNoDampening) {
  static const kiln_trainer_hyper_parameter_t hyper[] = {
      {"lr", 0.5}, {"momentum", 0.9}, {"dampening", 0}};
  kiln_trainer_destroy(trainer_);
  trainer_ = nullptr;
  kiln_trainer_model_t nesterov = trainerModel_;
  nesterov.nesterov = 1;
  nesterov.momentum_buffers = 1;
  nesterov.hyper = hyper;
  nesterov.hyper_count = 3;
  trainerModel_ = nesterov;
  ASSERT_EQ(kiln_trainer_create(&trainerModel_, &trainer_, error_), 0) << error_;
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "dampening", 0.1, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "Nesterov momentum requires a momentum and zero dampening (net was built "
                       "with nesterov=true)");
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "momentum", 0, error_),
            KILN_MODEL_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_trainer_set_hyper_parameter(trainer_, "momentum", 0.5, error_), 0) << error_;
  EXPECT_EQ(get("momentum"), 0.5);
  EXPECT_EQ(get("dampening"), 0);
}

} // namespace

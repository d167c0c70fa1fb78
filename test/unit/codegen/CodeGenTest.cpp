//===- CodeGenTest.cpp - generated code against PyTorch's numbers ---------===//
//
// Each tutorial model compiled with PyTorch-exported weights (fixtures made
// by test/fixtures/make_fixtures.py) and run through Halide's JIT, with the
// same schedules AOT builds use: outputs must match PyTorch's eval-mode
// outputs within 1e-4, folded and unfolded, at batch 1, 7 and 64, for every
// x86-64 schedule family this CPU runs (AVX-512 where it has it, AVX2+FMA,
// the SSE4.1 baseline).
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Compile.h"
#include "kiln/runtime/npy.h"

#include "HostTargets.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

const std::string kSourceDir = KILN_SOURCE_DIR;

struct Array {
  kiln_array_t *array = nullptr;
  ~Array() { kiln_array_free(array); }
  std::vector<int64_t> shape() const {
    const int64_t *dims = kiln_array_shape(array);
    return std::vector<int64_t>(dims, dims + kiln_array_rank(array));
  }
  float *data() const { return static_cast<float *>(kiln_array_data(array)); }
};

void readNpy(const std::string &path, Array &out) {
  kiln_status_t status = kiln_npy_read_f32(path.c_str(), &out.array);
  ASSERT_EQ(status, nullptr) << kiln_status_message(status);
}

/// Compiles models/<name>.kiln with its fixture weights to a Halide pipeline.
struct Compiled {
  mlir::MLIRContext context;
  llvm::SourceMgr sourceMgr;
  std::string diagnostics;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::FailureOr<kiln::codegen::LoweredModel> lowered = mlir::failure();

  Compiled(const std::string &name, bool fold, bool schedule, const std::string &target,
           bool staged = false) {
    mlir::DialectRegistry registry;
    kiln::registerKilnDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return mlir::success();
    });
    if (failed(kiln::readSource(kSourceDir + "/models/" + name + ".kiln", sourceMgr, &context)))
      return;
    module = kiln::loadModel(sourceMgr, &context);
    if (!module)
      return;
    kiln::CompileOptions options;
    options.inference.weightsPath =
        kSourceDir + "/test/fixtures/" + name + "/weights.safetensors";
    options.inference.fold = fold;
    options.schedule = schedule;
    options.target = target;
    if (staged) // a stage per layer (codegen::LoweredStage)
      options.stageLayers = options.unstagedLayers = 1;
    mlir::FailureOr<std::vector<kiln::TargetVariant>> variants =
        kiln::compileModel(*module, options);
    if (succeeded(variants))
      lowered = std::move((*variants)[0].entries[0]);
  }
};

struct Case {
  std::string model;
  bool fold;
  bool schedule;
  std::string target; // a Halide target string
  bool staged = false; // one pipeline per layer, run in order
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.model << (c.fold ? " folded" : " unfolded")
      << (c.schedule ? " scheduled" : " reference schedule") << (c.staged ? " staged" : "")
      << " for " << c.target;
}

std::string caseName(const testing::TestParamInfo<Case> &info) {
  std::string target = info.param.target;
  for (char &ch : target)
    if (!isalnum(static_cast<unsigned char>(ch)))
      ch = '_';
  return info.param.model + (info.param.fold ? "_folded" : "_unfolded") +
         (info.param.schedule ? "_scheduled_" : "_unscheduled_") +
         (info.param.staged ? "staged_" : "") + target;
}

class MatchesPyTorch : public testing::TestWithParam<Case> {};

TEST_P(MatchesPyTorch, AtBatch1And7And64) {
  const Case &c = GetParam();
  Halide::Target target(c.target);
  if (!kiln::test::hostRuns(target))
    GTEST_SKIP() << kiln::test::cannotRunReason(c.target);
  Compiled compiled(c.model, c.fold, c.schedule, c.target, c.staged);
  ASSERT_TRUE(succeeded(compiled.lowered)) << compiled.diagnostics;
  kiln::codegen::LoweredModel &model = *compiled.lowered;
  if (c.staged) // a stage per linear or conv layer
    EXPECT_EQ(model.stages.size(), c.model == "lenet_bn" ? 5u : 4u);
  else
    EXPECT_EQ(model.stages.size(), 1u);
  model.compileJit(target.with_feature(Halide::Target::JIT));
  for (int batch : {1, 7, 64}) {
    std::string dir = kSourceDir + "/test/fixtures/" + c.model + "/";
    Array input, expected;
    readNpy(dir + "input_b" + std::to_string(batch) + ".npy", input);
    readNpy(dir + "output_b" + std::to_string(batch) + ".npy", expected);
    std::vector<int64_t> inShape = input.shape(), outShape = expected.shape();
    std::vector<int> inDims(inShape.rbegin(), inShape.rend());
    std::vector<int> outDims(outShape.rbegin(), outShape.rend());
    Halide::Buffer<float> in(input.data(), inDims);
    Halide::Buffer<float> out(outDims);
    model.inputs[0].param.set(in);
    model.realize(out);
    int64_t count = 1;
    for (int64_t d : outShape)
      count *= d;
    // Within 1e-4 absolute and relative; a NaN is never within.
    int64_t bad = 0, first = -1;
    const float *want = expected.data();
    for (int64_t i = 0; i < count; ++i) {
      double err = std::fabs(static_cast<double>(out.data()[i]) - want[i]);
      double rel = err / std::max(1.0, std::fabs(static_cast<double>(want[i])));
      if (!(err <= 1e-4 && rel <= 1e-4)) {
        bad += 1;
        if (first < 0)
          first = i;
      }
    }
    EXPECT_EQ(bad, 0) << "batch " << batch << ": first mismatch at " << first << ": "
                      << (first >= 0 ? out.data()[first] : 0.0f) << " vs "
                      << (first >= 0 ? want[first] : 0.0f);
  }
}

std::vector<Case> allCases() {
  std::vector<Case> cases;
  for (const char *target : kiln::test::kX86Targets)
    for (const char *model : {"simple_net", "mlp_bn", "batchnorm_net", "simple_nn",
                              "simple_nn_bn", "lenet_bn", "lenet"}) {
      cases.push_back({model, true, true, target});
      cases.push_back({model, false, true, target});
    }
  // Cut into stages, the same numbers.
  for (const char *target : kiln::test::kX86Targets)
    for (const char *model : {"mlp_bn", "lenet_bn"})
      cases.push_back({model, true, true, target, /*staged=*/true});
  // The unscheduled pipeline is the reference the schedules must not change.
  cases.push_back({"lenet_bn", false, false, "x86-64-linux-sse41"});
  cases.push_back({"mlp_bn", false, false, "x86-64-linux-sse41"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Models, MatchesPyTorch, testing::ValuesIn(allCases()), caseName);

} // namespace

//===- kiln-train-bench.cpp - times the compiled training step ------------===//
//
//   kiln-train-bench MODEL.kiln --init W.safetensors --batch B [--seconds S]
//
// Lowers and JIT-compiles MODEL's training step (nn-autodiff with the
// model's train section), loads the initial state, and runs steps on one
// fixed batch of pseudo-random inputs (uniform in [-1, 1]) and labels for
// about S seconds after 3 warm-up steps; prints one line:
//   train-bench: batch B steps K median_us X min_us Y
// Threads: Halide's JIT runtime reads HL_NUM_THREADS (bench/train.py sets
// it). The state is updated by every step (the parameters move, as in
// training), so the loss changes; the time per step does not depend on it.
// --profile adds Halide's profiler (its table of time per Func goes to
// stderr at exit); the times it prints include the profiler's overhead.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

namespace cl = llvm::cl;

namespace {
cl::opt<std::string> modelPath(cl::Positional, cl::Required, cl::desc("<model.kiln>"));
cl::opt<std::string> initPath("init", cl::Required, cl::desc("initial state (safetensors)"));
cl::opt<int> batch("batch", cl::init(64), cl::desc("samples per step"));
cl::opt<double> seconds("seconds", cl::init(1.0), cl::desc("timed seconds"));
cl::opt<std::string> stmtPath("stmt", cl::desc("write the step's lowered Halide statements here (each stage)"),
                              cl::value_desc("file"));
cl::opt<std::string> targetName("target", cl::desc("Halide target (default: host)"),
                                cl::init("host"));
cl::opt<bool> profile("profile",
                      cl::desc("compile with Halide's profiler: its per-Func table at exit"));
} // namespace

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "Times Kiln's JIT-compiled training step\n");
  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  if (failed(kiln::readSource(modelPath, sourceMgr, &context)))
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module || failed(kiln::prepareForTraining(*module, {})))
    return 1;
  kiln::codegen::LoweringOptions options;
  std::string targetError;
  if (targetName != "host" && !kiln::codegen::describeTarget(Halide::Target(targetName),
                                                              options.target, targetError)) {
    llvm::errs() << "kiln-train-bench: error: " << targetError << "\n";
    return 1;
  }
  if (profile)
    options.target.target = options.target.target.with_feature(Halide::Target::Profile);
  if (!stmtPath.empty()) {
    mlir::FailureOr<kiln::codegen::LoweredModel> lowered =
        kiln::codegen::lowerToHalide(*module, options, kiln::nn::kTrainStepFunc);
    if (failed(lowered))
      return 1;
    // The stages one after another: the gradients, then the update.
    std::ofstream out(stmtPath);
    for (size_t s = 0; s < lowered->stages.size(); ++s) {
      kiln::codegen::LoweredStage &stage = lowered->stages[s];
      std::string part = stmtPath + ".stage";
      stage.pipeline().compile_to_lowered_stmt(part, stage.arguments(), Halide::Text,
                                               options.target.target);
      out << "// stage " << s << " of " << lowered->stages.size() << "\n"
          << std::ifstream(part).rdbuf();
      std::remove(part.c_str());
    }
  }
  std::unique_ptr<kiln::TrainStep> step = kiln::TrainStep::create(*module, options);
  if (!step)
    return 1;
  std::string error;
  if (!step->loadState(initPath, error)) {
    llvm::errs() << "kiln-train-bench: error: " << error << "\n";
    return 1;
  }
  if (batch < 2) {
    llvm::errs() << "kiln-train-bench: error: --batch must be at least 2\n";
    return 1;
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> inputs(static_cast<size_t>(batch) * step->sampleSize());
  for (float &x : inputs)
    x = value(rng);
  std::vector<int64_t> labels(batch);
  for (int64_t &label : labels)
    label = static_cast<int64_t>(rng() % step->classes());

  kiln::StepMetrics metrics;
  auto once = [&] {
    if (!step->step(inputs.data(), labels.data(), batch, metrics, error)) {
      llvm::errs() << "kiln-train-bench: error: " << error << "\n";
      std::exit(1);
    }
  };
  for (int i = 0; i < 3; ++i)
    once();
  std::vector<double> times;
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (times.size() < 5 || std::chrono::steady_clock::now() < end) {
    auto start = std::chrono::steady_clock::now();
    once();
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  llvm::outs() << "train-bench: batch " << batch << " steps " << times.size() << " median_us "
               << times[times.size() / 2] << " min_us " << times.front() << "\n";
  return 0;
}

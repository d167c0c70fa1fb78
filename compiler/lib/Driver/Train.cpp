//===- Train.cpp - kilnc train: K steps over arrays, a checkpoint ---------===//
#include "kiln/Driver/Train.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/train_data.h"
#include "kiln/runtime/trainer.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Format.h"

#include <cstdlib>
#include <memory>

namespace kiln {

namespace {

std::string takeMessage(kiln_status_t status) {
  std::string text = kiln_status_message(status);
  kiln_status_free(status);
  return text;
}

using DataPtr = std::unique_ptr<kiln_train_data_t, void (*)(kiln_train_data_t *)>;

/// The inputs and labels of `options`, checked against the model
/// (train_data.h: the checks and messages the AOT trainer has too).
mlir::LogicalResult readData(mlir::ModuleOp module, const TrainRunOptions &options, DataPtr &data,
                             std::string &error) {
  auto forward = module.lookupSymbol<mlir::FuncOp>("forward");
  auto input = forward.getType().getInput(0).cast<mlir::RankedTensorType>();
  auto logits = forward.getType().getResult(0).cast<mlir::RankedTensorType>();
  kiln_train_data_t *raw = nullptr;
  kiln_status_t status = kiln_train_data_read(
      options.inputsPath.c_str(), options.labelsPath.c_str(), input.getShape().size(),
      input.getShape().data(), logits.getShape().back(), &raw);
  if (!status) {
    data.reset(raw);
    status = kiln_train_check_batch(kiln_train_data_rows(raw), options.batch, options.steps,
                                    /*smallest_batch=*/1, options.inputsPath.c_str());
  }
  if (status) {
    error = takeMessage(status);
    return mlir::failure();
  }
  return mlir::success();
}

mlir::LogicalResult writeCheckpoint(TrainStep &step, const TrainRunOptions &options,
                                    std::string &error) {
  kiln_safetensors_writer_t *raw = nullptr;
  if (kiln_status_t status = kiln_safetensors_writer_create(&raw)) {
    error = takeMessage(status);
    return mlir::failure();
  }
  std::unique_ptr<kiln_safetensors_writer_t, void (*)(kiln_safetensors_writer_t *)> writer(
      raw, kiln_safetensors_writer_free);
  for (const std::string &key : step.stateKeys()) {
    Halide::Buffer<> *buffer = step.state(key);
    // Halide's dimensions are the tensor's reversed (TrainStep.cpp).
    std::vector<int64_t> shape;
    for (int d = buffer->dimensions() - 1; d >= 0; --d)
      shape.push_back(buffer->dim(d).extent());
    kiln_dtype_t dtype = buffer->type() == Halide::Float(32) ? KILN_DTYPE_F32 : KILN_DTYPE_I64;
    if (kiln_status_t status = kiln_safetensors_writer_add(writer.get(), key.c_str(), dtype,
                                                           shape.size(), shape.data(),
                                                           buffer->data())) {
      error = takeMessage(status);
      return mlir::failure();
    }
  }
  for (auto [key, value] : {std::pair<const char *, std::string>{"format", "pt"},
                            {"generator", KILN_CHECKPOINT_GENERATOR},
                            {"steps", std::to_string(options.steps)}})
    if (kiln_status_t status =
            kiln_safetensors_writer_set_metadata(writer.get(), key, value.c_str())) {
      error = takeMessage(status);
      return mlir::failure();
    }
  // Resolved again: training takes a while, and the path may have changed.
  if (!OutputPath::resolve(options.outputPath, options.inputFiles, /*filesOnly=*/false, error))
    return mlir::failure();
  if (kiln_status_t status =
          kiln_safetensors_writer_write(writer.get(), options.outputPath.c_str())) {
    error = takeMessage(status);
    return mlir::failure();
  }
  return mlir::success();
}

} // namespace

mlir::LogicalResult runTraining(mlir::ModuleOp module, const TrainRunOptions &options,
                                llvm::raw_ostream &log, std::string &error) {
  if (!OutputPath::resolve(options.outputPath, options.inputFiles, /*filesOnly=*/false, error))
    return mlir::failure();
  DataPtr data(nullptr, kiln_train_data_free);
  if (failed(readData(module, options, data, error)))
    return mlir::failure();
  // Without a checkpoint: every parameter and buffer must have a default,
  // checked before the step is compiled.
  mlir::FailureOr<std::vector<InitialTensor>> initial = std::vector<InitialTensor>{};
  if (options.initPath.empty())
    initial = defaultInitialisation(module);
  if (failed(initial))
    return mlir::failure();
  int64_t seed = nn::trainingSeed(module, options.seed);
  // Halide's JIT runtime reads HL_NUM_THREADS when its thread pool starts,
  // at the first parallel loop of the first step.
  if (options.threads > 0)
    ::setenv("HL_NUM_THREADS", std::to_string(options.threads).c_str(), 1);
  std::unique_ptr<TrainStep> step = TrainStep::create(module);
  if (!step)
    return mlir::failure();
  if (options.initPath.empty()) {
    if (!initialiseState(*initial, static_cast<uint64_t>(seed), *step, error))
      return mlir::failure();
    log << "initial state: PyTorch's default initialisation from seed " << seed << "\n";
  } else if (!step->loadState(options.initPath, error)) {
    return mlir::failure();
  }
  int64_t rows = kiln_train_data_rows(data.get());
  int64_t sampleSize = kiln_train_data_sample_size(data.get());
  if (kiln_status_t status = kiln_train_check_batch(rows, options.batch, options.steps,
                                                    step->smallestBatch(),
                                                    options.inputsPath.c_str())) {
    error = takeMessage(status);
    return mlir::failure();
  }

  const float *inputs = kiln_train_data_inputs(data.get());
  const int64_t *labels = kiln_train_data_labels(data.get());
  StepMetrics metrics;
  for (int64_t i = 0; i < options.steps; ++i) {
    int64_t first, size;
    kiln_train_batch(i, rows, options.batch, &first, &size);
    if (!step->step(inputs + first * sampleSize, labels + first, size, metrics, error)) {
      error = "step " + std::to_string(i + 1) + " (samples " + std::to_string(first) + " to " +
              std::to_string(first + size - 1) + "): " + error;
      return mlir::failure();
    }
    if (options.printEvery > 0 &&
        ((i + 1) % options.printEvery == 0 || i + 1 == options.steps))
      log << "step " << (i + 1) << "/" << options.steps << ": loss "
          << llvm::format("%.6f", metrics.loss) << ", correct " << metrics.correct << "/"
          << size << "\n";
  }
  if (failed(writeCheckpoint(*step, options, error)))
    return mlir::failure();
  int64_t perPass = (rows + options.batch - 1) / options.batch;
  int64_t passes = (options.steps + perPass - 1) / perPass;
  log << "trained " << options.steps << " steps of batch " << options.batch << " over "
      << rows << " samples (" << passes << (passes == 1 ? " pass" : " passes")
      << "); last loss " << llvm::format("%.6f", metrics.loss) << "; wrote "
      << step->stateKeys().size() << " tensors to " << options.outputPath << "\n";
  return mlir::success();
}

} // namespace kiln

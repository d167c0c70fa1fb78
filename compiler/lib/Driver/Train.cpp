//===- Train.cpp - kilnc train: K steps over arrays, a checkpoint ---------===//
#include "kiln/Driver/Train.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Format.h"

#include <cstdlib>
#include <memory>

namespace kiln {

namespace {

using ArrayPtr = std::unique_ptr<kiln_array_t, void (*)(kiln_array_t *)>;

std::string takeMessage(kiln_status_t status) {
  std::string text = kiln_status_message(status);
  kiln_status_free(status);
  return text;
}

std::string shapeText(llvm::ArrayRef<int64_t> shape, bool batched = false) {
  std::string text = "[";
  for (size_t d = 0; d < shape.size(); ++d) {
    text += d ? ", " : "";
    text += batched && d == 0 ? "N" : std::to_string(shape[d]);
  }
  return text + "]";
}

/// The data of one run, checked against the model: `rows` samples of
/// `sampleSize` floats, and one label in [0, classes) per sample.
struct Data {
  ArrayPtr inputs{nullptr, kiln_array_free}, labels{nullptr, kiln_array_free};
  int64_t rows = 0, sampleSize = 1;
};

mlir::LogicalResult readData(mlir::ModuleOp module, const TrainRunOptions &options, Data &data,
                             std::string &error) {
  auto forward = module.lookupSymbol<mlir::FuncOp>("forward");
  auto input = forward.getType().getInput(0).cast<mlir::RankedTensorType>();
  auto logits = forward.getType().getResult(0).cast<mlir::RankedTensorType>();
  llvm::ArrayRef<int64_t> sample = input.getShape().drop_front();
  int64_t classes = logits.getShape().back();

  kiln_array_t *array = nullptr;
  if (kiln_status_t status = kiln_npy_read_f32(options.inputsPath.c_str(), &array)) {
    error = takeMessage(status);
    return mlir::failure();
  }
  data.inputs.reset(array);
  // The arrays' leading dimensions are the rows: [rows, sample...] or, as
  // the training fixtures store them, [batches, batch, sample...].
  llvm::ArrayRef<int64_t> shape(kiln_array_shape(array), kiln_array_rank(array));
  if (shape.size() <= sample.size() ||
      shape.take_back(sample.size()) != sample) {
    error = options.inputsPath + ": inputs of shape " + shapeText(shape) +
            " are not samples of the model's input " + shapeText(input.getShape(), true) +
            ": the last dimensions must be " + shapeText(sample) +
            ", after one or more leading dimensions of samples";
    return mlir::failure();
  }
  data.rows = 1;
  for (int64_t extent : shape.drop_back(sample.size()))
    data.rows *= extent;
  for (int64_t extent : sample)
    data.sampleSize *= extent;
  if (data.rows == 0) {
    error = options.inputsPath + ": inputs of shape " + shapeText(shape) + " hold no samples";
    return mlir::failure();
  }

  if (kiln_status_t status = kiln_npy_read_i64(options.labelsPath.c_str(), &array)) {
    std::string message = takeMessage(status);
    if (message.find("is not supported") != std::string::npos)
      message += "; labels must be int64 class indices";
    error = message;
    return mlir::failure();
  }
  data.labels.reset(array);
  int64_t count = static_cast<int64_t>(kiln_array_count(array));
  if (count != data.rows) {
    error = options.labelsPath + ": " + std::to_string(count) + " labels for the " +
            std::to_string(data.rows) + " samples of " + options.inputsPath +
            " (one label per sample)";
    return mlir::failure();
  }
  const int64_t *labels = static_cast<const int64_t *>(kiln_array_const_data(array));
  for (int64_t i = 0; i < count; ++i)
    if (labels[i] < 0 || labels[i] >= classes) {
      error = options.labelsPath + ": label " + std::to_string(labels[i]) + " of sample " +
              std::to_string(i) + " is out of range: the model has " +
              std::to_string(classes) + " classes (0 to " + std::to_string(classes - 1) + ")";
      return mlir::failure();
    }
  if (options.batch > data.rows) {
    error = "--batch " + std::to_string(options.batch) + " is larger than the data: " +
            options.inputsPath + " has " + std::to_string(data.rows) + " samples";
    return mlir::failure();
  }
  return mlir::success();
}

/// The rows of step `i` (from 0): passes over the data in order, `batch`
/// rows at a time, the last batch of a pass holding what is left.
std::pair<int64_t, int64_t> batchOf(int64_t i, int64_t rows, int64_t batch) {
  int64_t perPass = (rows + batch - 1) / batch;
  int64_t first = (i % perPass) * batch;
  return {first, std::min(batch, rows - first)};
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
                            {"generator", "kilnc train"},
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
  Data data;
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
  int64_t lastBatch = data.rows % options.batch;
  if (lastBatch != 0 && lastBatch < step->smallestBatch() &&
      options.steps > data.rows / options.batch) {
    error = "--batch " + std::to_string(options.batch) + " over " + std::to_string(data.rows) +
            " samples leaves a last batch of " + std::to_string(lastBatch) +
            ", and train-mode BatchNorm1d needs more than 1 value per channel; pick another "
            "--batch";
    return mlir::failure();
  }

  const float *inputs = static_cast<const float *>(kiln_array_const_data(data.inputs.get()));
  const int64_t *labels = static_cast<const int64_t *>(kiln_array_const_data(data.labels.get()));
  StepMetrics metrics;
  for (int64_t i = 0; i < options.steps; ++i) {
    auto [first, size] = batchOf(i, data.rows, options.batch);
    if (!step->step(inputs + first * data.sampleSize, labels + first, size, metrics, error)) {
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
  int64_t perPass = (data.rows + options.batch - 1) / options.batch;
  int64_t passes = (options.steps + perPass - 1) / perPass;
  log << "trained " << options.steps << " steps of batch " << options.batch << " over "
      << data.rows << " samples (" << passes << (passes == 1 ? " pass" : " passes")
      << "); last loss " << llvm::format("%.6f", metrics.loss) << "; wrote "
      << step->stateKeys().size() << " tensors to " << options.outputPath << "\n";
  return mlir::success();
}

} // namespace kiln

//===- TrainStep.cpp - the compiled training step as a C++ call -----------===//
#include "kiln/Driver/TrainStep.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/thread_pool.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"

#include <cstdlib>
#include <cstring>
#include <map>

namespace kiln {

namespace {

std::vector<int> halideExtents(const std::vector<int64_t> &shape, int64_t batch) {
  std::vector<int> extents;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it)
    extents.push_back(static_cast<int>(*it < 0 ? batch : *it));
  return extents;
}

Halide::Buffer<> zeros(const codegen::EntryTensor &tensor) {
  Halide::Buffer<> buffer(tensor.type, halideExtents(tensor.shape, 1));
  std::memset(buffer.data(), 0, buffer.size_in_bytes());
  return buffer;
}

/// The step's parallel loops on Kiln's thread pool (runtime/src/ThreadPool.c,
/// the one generated programs use), whose workers spin between loops:
/// with Halide's JIT pool, whose workers sleep at once, a second thread
/// took mlp_bn's step at batch 256 from 2.38 to only 2.17 ms (Intel Xeon,
/// 14.3 s of CPU for 14.4 s of wall time: the second thread was mostly
/// asleep).
int parallelFor(Halide::JITUserContext *context, int (*task)(Halide::JITUserContext *, int, uint8_t *),
                int min, int size, uint8_t *closure) {
  return kiln_thread_pool_run(context, reinterpret_cast<kiln_thread_pool_task_t>(task), min, size,
                              closure);
}

std::string message(kiln_status_t status) {
  std::string text = kiln_status_message(status);
  kiln_status_free(status);
  return text;
}

} // namespace

TrainStepLayout trainStepLayout(mlir::ModuleOp module, const codegen::LoweredModel &model) {
  TrainStepLayout layout;
  std::map<std::string, size_t> outputs;
  for (size_t i = 0; i < model.outputs.size(); ++i) {
    const std::string &key = model.outputs[i].key;
    if (key == "loss")
      layout.loss = i;
    else if (key == "correct")
      layout.correct = i;
    else
      outputs[key] = i;
  }
  for (size_t i = 0; i < model.inputs.size(); ++i) {
    const codegen::EntryTensor &in = model.inputs[i];
    auto out = outputs.find(in.key);
    if (in.batched || out == outputs.end())
      continue;
    layout.slots.push_back({in.key, i, out->second});
  }
  mlir::FuncOp function = module.lookupSymbol<mlir::FuncOp>(nn::kTrainStepFunc);
  function.walk([&](nn::CrossEntropyOp ce) {
    layout.classes = ce.logits().getType().cast<mlir::RankedTensorType>().getShape()[1];
  });
  function.walk([&](nn::BatchNormStatsOp stats) {
    auto shape = stats.input().getType().cast<mlir::RankedTensorType>().getShape();
    if (shape.size() == 2)
      layout.smallestBatch = 2;
  });
  return layout;
}

bool isOptimizerState(const std::string &key, const std::vector<std::string> &keys) {
  if (key == "step")
    return true;
  for (const char *suffix : {".momentum_buffer", ".exp_avg", ".exp_avg_sq"}) {
    size_t n = std::strlen(suffix);
    if (key.size() > n && key.compare(key.size() - n, n, suffix) == 0 &&
        llvm::is_contained(keys, key.substr(0, key.size() - n)))
      return true;
  }
  return false;
}

std::unique_ptr<TrainStep> TrainStep::create(mlir::ModuleOp module,
                                             const codegen::LoweringOptions &options) {
  mlir::FailureOr<codegen::LoweredModel> lowered =
      codegen::lowerToHalide(module, options, nn::kTrainStepFunc);
  if (failed(lowered))
    return nullptr;
  std::unique_ptr<TrainStep> step(new TrainStep());
  step->model = std::move(*lowered);
  step->target = options.target.target;
  codegen::LoweredModel &model = step->model;
  TrainStepLayout layout = trainStepLayout(module, model);
  for (const TrainStepLayout::Slot &slot : layout.slots)
    step->slots.push_back(Slot{slot.key, slot.input, slot.output, zeros(model.inputs[slot.input])});
  step->lossOutput = layout.loss;
  step->correctOutput = layout.correct;
  step->numClasses = layout.classes;
  step->minBatch = layout.smallestBatch;
  step->loss = Halide::Buffer<float>::make_scalar();
  step->correct = Halide::Buffer<int64_t>::make_scalar();
  step->allocator->context()->handlers.custom_do_par_for = parallelFor;
  // HL_NUM_THREADS, as Halide's own pool reads it (kilnc train --threads
  // sets it); else every core the process may run on.
  const char *threads = getenv("HL_NUM_THREADS");
  kiln_thread_pool_set_threads(threads ? std::atoi(threads) : 0);
  try {
    model.compileJit(step->target);
  } catch (const Halide::Error &error) {
    module.lookupSymbol<mlir::FuncOp>(nn::kTrainStepFunc).emitError() << "Halide: " << error.what();
    return nullptr;
  }
  return step;
}

std::vector<std::string> TrainStep::stateKeys() const {
  std::vector<std::string> keys;
  for (const Slot &slot : slots)
    keys.push_back(slot.key);
  return keys;
}

Halide::Buffer<> *TrainStep::state(const std::string &key) {
  for (Slot &slot : slots)
    if (slot.key == key)
      return &slot.value;
  return nullptr;
}

int64_t TrainStep::sampleSize() const {
  int64_t count = 1;
  for (size_t d = 1; d < model.inputs[0].shape.size(); ++d)
    count *= model.inputs[0].shape[d];
  return count;
}

bool TrainStep::loadState(const std::string &path, std::string &error) {
  kiln_safetensors_t *file = nullptr;
  if (kiln_status_t status = kiln_safetensors_open(path.c_str(), &file)) {
    error = message(status);
    return false;
  }
  std::unique_ptr<kiln_safetensors_t, void (*)(kiln_safetensors_t *)> closer(
      file, kiln_safetensors_close);
  std::vector<std::string> keys = stateKeys();
  std::vector<Halide::Buffer<>> loaded;
  for (const Slot &slot : slots) {
    const codegen::EntryTensor &tensor = model.inputs[slot.input];
    Halide::Buffer<> buffer = zeros(tensor);
    kiln_tensor_info_t info;
    if (kiln_status_t status = kiln_safetensors_find(file, slot.key.c_str(), &info)) {
      kiln_status_free(status);
      if (!isOptimizerState(slot.key, keys)) {
        error = path + ": no tensor '" + slot.key + "'";
        return false;
      }
      loaded.push_back(buffer);
      continue;
    }
    bool shapeMatches = info.rank == tensor.shape.size();
    for (size_t d = 0; shapeMatches && d < info.rank; ++d)
      shapeMatches = info.shape[d] == tensor.shape[d];
    if (!shapeMatches) {
      error = path + ": tensor '" + slot.key + "' has another shape than the model's";
      return false;
    }
    kiln_status_t status =
        tensor.type == Halide::Float(32)
            ? kiln_safetensors_read_f32(file, slot.key.c_str(), info.count,
                                        static_cast<float *>(buffer.data()))
            : kiln_safetensors_read_i64(file, slot.key.c_str(), info.count,
                                        static_cast<int64_t *>(buffer.data()));
    if (status) {
      error = message(status);
      return false;
    }
    loaded.push_back(buffer);
  }
  for (size_t i = 0; i < slots.size(); ++i)
    std::memcpy(slots[i].value.data(), loaded[i].data(), loaded[i].size_in_bytes());
  stateLost = false;
  return true;
}

bool TrainStep::step(const float *inputs, const int64_t *labels, int64_t batch, StepMetrics &out,
                     std::string &error) {
  if (stateLost) {
    error = "an earlier step failed while it updated the state: load a state first";
    return false;
  }
  if (batch < minBatch) {
    error = "expected more than 1 value per channel when training, got a batch of " +
            std::to_string(batch);
    return false;
  }
  for (int64_t i = 0; i < batch; ++i)
    if (labels[i] < 0 || labels[i] >= numClasses) {
      error = "label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
              " is out of bounds: the model has " + std::to_string(numClasses) + " classes";
      return false;
    }
  Halide::Buffer<float> x(const_cast<float *>(inputs), halideExtents(model.inputs[0].shape, batch));
  Halide::Buffer<int64_t> y(const_cast<int64_t *>(labels), static_cast<int>(batch));
  model.inputs[0].param.set(x);
  model.inputs[1].param.set(y);
  std::vector<Halide::Buffer<>> results(model.outputs.size());
  results[lossOutput] = loss;
  results[correctOutput] = correct;
  for (Slot &slot : slots) {
    model.inputs[slot.input].param.set(slot.value);
    results[slot.output] = slot.value;
  }
  try {
    model.realize(Halide::Realization(results), target, allocator->context());
  } catch (const Halide::Error &e) {
    error = std::string("Halide: ") + e.what();
    // The stages before the update write only buffers of their own.
    if (model.stagesRun + 1 == model.stages.size()) {
      stateLost = true;
      error += " (the state is partly updated: load a state before the next step)";
    }
    return false;
  }
  out.loss = loss();
  out.correct = correct();
  return true;
}

} // namespace kiln

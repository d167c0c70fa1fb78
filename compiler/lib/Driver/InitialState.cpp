//===- InitialState.cpp - PyTorch's default initialisation, from a seed ---===//
#include "kiln/Driver/InitialState.h"

#include "kiln/runtime/initial_state.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Driver/TrainStep.h"

#include "llvm/ADT/StringMap.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln {

namespace {

/// The state_dict key of the nn.param or nn.buffer that defines `value`,
/// or "" (an absent optional operand, or a bound constant).
llvm::StringRef stateKey(mlir::Value value) {
  if (!value)
    return "";
  if (auto param = value.getDefiningOp<nn::ParamOp>())
    return param.name();
  if (auto buffer = value.getDefiningOp<nn::BufferOp>())
    return buffer.name();
  return "";
}

/// torch.nn.init._calculate_fan_in_and_fan_out's fan_in: size(1) times
/// the receptive field (the sizes after it).
int64_t fanIn(mlir::Value weight) {
  llvm::ArrayRef<int64_t> shape = weight.getType().cast<mlir::RankedTensorType>().getShape();
  int64_t fan = 1;
  for (size_t d = 1; d < shape.size(); ++d)
    fan *= shape[d];
  return shape.size() >= 2 ? fan : 0;
}

/// Linear's and Conv2d's reset_parameters: weight and bias U(−b, b) with
/// b = 1/√fan_in (PyTorch's bias bound is 0 when fan_in is 0).
void addLayer(llvm::StringMap<InitialTensor> &rules, mlir::Value weight, mlir::Value bias) {
  int64_t fan = fanIn(weight);
  InitialTensor uniform;
  uniform.kind = fan > 0 ? InitialTensor::Kind::Uniform : InitialTensor::Kind::Fill;
  uniform.bound = fan > 0 ? 1.0 / std::sqrt(static_cast<double>(fan)) : 0.0;
  for (mlir::Value v : {weight, bias})
    if (llvm::StringRef key = stateKey(v); !key.empty())
      rules.try_emplace(key, uniform);
}

void addFill(llvm::StringMap<InitialTensor> &rules, mlir::Value state, double value) {
  InitialTensor fill;
  fill.value = value;
  if (llvm::StringRef key = stateKey(state); !key.empty())
    rules.try_emplace(key, fill);
}

} // namespace

mlir::FailureOr<std::vector<InitialTensor>> defaultInitialisation(mlir::ModuleOp module) {
  auto forward = module.lookupSymbol<mlir::FuncOp>("forward");
  if (!forward) {
    module.emitError("the module has no @forward to initialise");
    return mlir::failure();
  }
  // A shared layer's parameters are met more than once, with the same rule.
  llvm::StringMap<InitialTensor> rules;
  forward.walk([&](mlir::Operation *op) {
    if (auto linear = llvm::dyn_cast<nn::LinearOp>(op)) {
      addLayer(rules, linear.weight(), linear.bias());
    } else if (auto conv = llvm::dyn_cast<nn::Conv2DOp>(op)) {
      addLayer(rules, conv.weight(), conv.bias());
    } else if (auto bn = llvm::dyn_cast<nn::BatchNormOp>(op)) {
      // torch.nn.BatchNorm's reset_parameters and reset_running_stats.
      addFill(rules, bn.weight(), 1);
      addFill(rules, bn.bias(), 0);
      addFill(rules, bn.running_mean(), 0);
      addFill(rules, bn.running_var(), 1);
      addFill(rules, bn.num_batches_tracked(), 0);
    }
  });
  std::vector<InitialTensor> tensors;
  bool failed = false;
  forward.walk([&](mlir::Operation *op) {
    if (!llvm::isa<nn::ParamOp, nn::BufferOp>(op) || failed)
      return;
    llvm::StringRef key = stateKey(op->getResult(0));
    auto rule = rules.find(key);
    if (rule == rules.end()) {
      op->emitError() << "'" << key
                      << "' has no default initialisation (PyTorch's, for Linear, Conv2d and "
                         "BatchNorm layers); give the initial state with --init";
      failed = true;
      return;
    }
    tensors.push_back(rule->second);
    tensors.back().key = key.str();
  });
  if (failed)
    return mlir::failure();
  return tensors;
}

uint64_t initialStream(llvm::StringRef key) { return kiln_initial_stream(key.str().c_str()); }

float initialUniform(uint64_t seed, uint64_t stream, uint64_t k, double bound) {
  return kiln_initial_uniform(seed, stream, k, bound);
}

void fillInitial(const InitialTensor &tensor, uint64_t seed, float *data, int64_t count) {
  if (tensor.kind == InitialTensor::Kind::Fill) {
    std::fill(data, data + count, static_cast<float>(tensor.value));
    return;
  }
  uint64_t stream = initialStream(tensor.key);
  for (int64_t k = 0; k < count; ++k)
    data[k] = initialUniform(seed, stream, static_cast<uint64_t>(k), tensor.bound);
}

void fillInitial(const InitialTensor &tensor, int64_t *data, int64_t count) {
  std::fill(data, data + count, static_cast<int64_t>(tensor.value));
}

bool initialiseState(const std::vector<InitialTensor> &tensors, uint64_t seed, TrainStep &step,
                     std::string &error) {
  // Every check before the first write: nothing is changed on failure.
  llvm::StringMap<const InitialTensor *> byKey;
  for (const InitialTensor &tensor : tensors) {
    Halide::Buffer<> *buffer = step.state(tensor.key);
    if (!buffer) {
      error = "the training step has no state '" + tensor.key + "'";
      return false;
    }
    bool isFloat = buffer->type() == Halide::Float(32);
    if (!isFloat && (buffer->type() != Halide::Int(64) ||
                     tensor.kind == InitialTensor::Kind::Uniform)) {
      error = "state '" + tensor.key + "' is of type " + (isFloat ? "f32" : "i64") +
              ", which its initialisation cannot fill";
      return false;
    }
    byKey[tensor.key] = &tensor;
  }
  for (const std::string &key : step.stateKeys()) {
    Halide::Buffer<> *buffer = step.state(key);
    int64_t count = static_cast<int64_t>(buffer->number_of_elements());
    auto rule = byKey.find(key);
    if (rule == byKey.end()) // optimizer state and the step: a fresh optimizer's
      std::memset(buffer->data(), 0, buffer->size_in_bytes());
    else if (buffer->type() == Halide::Float(32))
      fillInitial(*rule->second, seed, static_cast<float *>(buffer->data()), count);
    else
      fillInitial(*rule->second, static_cast<int64_t *>(buffer->data()), count);
  }
  return true;
}

} // namespace kiln

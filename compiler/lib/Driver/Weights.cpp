//===- Weights.cpp - binding a checkpoint to a model's parameters ---------===//
#include "kiln/Driver/Weights.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/runtime/safetensors.h"

#include "llvm/ADT/StringSet.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

using namespace mlir;

namespace kiln {

namespace {

struct SafetensorsCloser {
  void operator()(kiln_safetensors_t *file) const { kiln_safetensors_close(file); }
};
using SafetensorsFile = std::unique_ptr<kiln_safetensors_t, SafetensorsCloser>;

/// Takes a runtime status: its message if it failed, and frees it.
bool failedWith(kiln_status_t status, std::string &message) {
  if (!status)
    return false;
  message = kiln_status_message(status);
  kiln_status_free(status);
  return true;
}

/// Whether `op` (a buffer) is a BatchNorm's running variance: the fold
/// takes sqrt(var + eps), so a value below -eps gives NaN (PyTorch too).
bool isRunningVar(Operation *op) {
  return llvm::any_of(op->getResult(0).getUsers(), [&](Operation *user) {
    auto bn = dyn_cast<nn::BatchNormOp>(user);
    return bn && bn.running_var() == op->getResult(0);
  });
}

/// As Python and PyTorch print them: nan, inf, -inf, 1e-07.
std::string formatValue(float value) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value > 0 ? "inf" : "-inf";
  char text[32];
  snprintf(text, sizeof text, "%g", value);
  return text;
}

/// NaN or Inf in a weight, or a negative running variance, changes what
/// the model computes everywhere downstream: an error naming the file, the
/// tensor and the first bad element, or with `allowNonfinite` a warning
/// (the code then computes what PyTorch computes with those values).
LogicalResult checkValues(Operation *op, StringRef key, StringRef path,
                          ArrayRef<float> values, bool allowNonfinite) {
  bool variance = isRunningVar(op);
  size_t nonfinite = 0, negative = 0, first = values.size();
  for (size_t i = 0; i < values.size(); ++i) {
    bool bad = !std::isfinite(values[i]);
    bool below = variance && values[i] < 0.0f;
    nonfinite += bad;
    negative += below;
    if ((bad || below) && first == values.size())
      first = i;
  }
  if (first == values.size())
    return success();
  auto report = [&](InFlightDiagnostic diag) -> LogicalResult {
    diag << path << ": tensor '" << key << "' has ";
    if (nonfinite)
      diag << nonfinite << " NaN or infinite value" << (nonfinite == 1 ? "" : "s");
    if (nonfinite && negative)
      diag << " and ";
    if (negative)
      diag << negative << " negative variance" << (negative == 1 ? "" : "s");
    diag << " (the first at element " << first << ": " << formatValue(values[first]) << ")";
    if (allowNonfinite)
      return diag << "; kept (--allow-nonfinite): outputs are what PyTorch computes with them";
    diag << "; --allow-nonfinite accepts them";
    return failure();
  };
  if (allowNonfinite) {
    (void)report(op->emitWarning()); // a warning: the tensor is kept
    return success();
  }
  return report(op->emitError());
}

/// The value of one state op read from the file, or an error.
FailureOr<DenseElementsAttr> readTensor(Operation *op, StringRef key,
                                        kiln_safetensors_t *file,
                                        StringRef path, bool allowNonfinite) {
  auto type = op->getResult(0).getType().cast<RankedTensorType>();
  kiln_tensor_info_t info;
  std::string message;
  if (failedWith(kiln_safetensors_find(file, key.str().c_str(), &info), message))
    return LogicalResult(op->emitError() << path << ": no tensor '" << key
                                         << "' for this model's "
                                         << (isa<nn::ParamOp>(op) ? "parameter" : "buffer"));
  ArrayRef<int64_t> shape(info.shape, info.rank);
  if (shape != type.getShape())
    return LogicalResult(op->emitError()
                         << path << ": tensor '" << key << "' has shape "
                         << nn::formatShape(shape) << ", the model expects "
                         << nn::formatShape(type.getShape()));
  if (type.getElementType().isInteger(64)) {
    std::vector<int64_t> values(info.count);
    if (failedWith(kiln_safetensors_read_i64(file, info.name, info.count, values.data()),
                   message))
      return LogicalResult(op->emitError() << message);
    return DenseElementsAttr::get(type, llvm::makeArrayRef(values));
  }
  std::vector<float> values(info.count);
  if (failedWith(kiln_safetensors_read_f32(file, info.name, info.count, values.data()),
                 message))
    return LogicalResult(op->emitError() << message);
  if (failed(checkValues(op, key, path, values, allowNonfinite)))
    return failure();
  return DenseElementsAttr::get(type, llvm::makeArrayRef(values));
}

/// Optimizer state a training checkpoint holds beside the state_dict
/// (kilnc train's and torch.optim's names): not the model's, and no
/// mistake, so a checkpoint builds as it is. The runtime's weight loader
/// (WeightLoader.c) takes the same names.
bool isOptimizerStateOf(StringRef name, const llvm::StringSet<> &keys) {
  if (name == "step")
    return true;
  for (StringRef suffix : {".momentum_buffer", ".exp_avg", ".exp_avg_sq"})
    if (name.size() > suffix.size() && name.endswith(suffix) &&
        keys.count(name.drop_back(suffix.size())))
      return true;
  return false;
}

} // namespace

LogicalResult bindWeights(ModuleOp module, StringRef path, bool allowExtraKeys,
                          bool allowNonfinite) {
  kiln_safetensors_t *raw = nullptr;
  std::string message;
  if (failedWith(kiln_safetensors_open(path.str().c_str(), &raw), message))
    return emitError(module.getLoc()) << message;
  SafetensorsFile file(raw);

  // Read everything first: a failure must leave the module unbound.
  std::vector<std::pair<Operation *, DenseElementsAttr>> bound;
  llvm::StringSet<> keys;
  bool ok = true;
  module.walk([&](Operation *op) {
    if (!isa<nn::ParamOp, nn::BufferOp>(op))
      return;
    StringRef key = op->getAttrOfType<StringAttr>("name").getValue();
    keys.insert(key);
    FailureOr<DenseElementsAttr> value = readTensor(op, key, file.get(), path, allowNonfinite);
    if (failed(value))
      ok = false;
    else
      bound.emplace_back(op, *value);
  });
  for (size_t i = 0, e = kiln_safetensors_count(file.get()); i < e; ++i) {
    kiln_tensor_info_t info;
    if (kiln_safetensors_info(file.get(), i, &info) != nullptr || keys.count(info.name) ||
        isOptimizerStateOf(info.name, keys))
      continue;
    if (allowExtraKeys) {
      emitWarning(module.getLoc()) << path << ": tensor '" << info.name
                                   << "' is not a parameter of this model; ignored";
    } else {
      emitError(module.getLoc()) << path << ": tensor '" << info.name
                                 << "' is not a parameter of this model "
                                    "(--allow-extra-keys ignores it)";
      ok = false;
    }
  }
  if (!ok)
    return failure();
  for (auto &[op, value] : bound)
    op->setAttr("value", value);
  return success();
}

} // namespace kiln

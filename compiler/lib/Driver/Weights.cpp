//===- Weights.cpp - binding a checkpoint to a model's parameters ---------===//
#include "kiln/Driver/Weights.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/runtime/safetensors.h"

#include "llvm/ADT/StringSet.h"

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

/// The value of one state op read from the file, or an error.
FailureOr<DenseElementsAttr> readTensor(Operation *op, StringRef key,
                                        kiln_safetensors_t *file,
                                        StringRef path) {
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
  return DenseElementsAttr::get(type, llvm::makeArrayRef(values));
}

} // namespace

LogicalResult bindWeights(ModuleOp module, StringRef path, bool allowExtraKeys) {
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
    FailureOr<DenseElementsAttr> value = readTensor(op, key, file.get(), path);
    if (failed(value))
      ok = false;
    else
      bound.emplace_back(op, *value);
  });
  for (size_t i = 0, e = kiln_safetensors_count(file.get()); i < e; ++i) {
    kiln_tensor_info_t info;
    if (kiln_safetensors_info(file.get(), i, &info) != nullptr || keys.count(info.name))
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

//===- Utils.cpp - questions passes ask of nn IR --------------------------===//
#include "kiln/Dialect/NN/IR/Utils.h"

#include "kiln/Dialect/NN/IR/NNOps.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"

using namespace mlir;

namespace kiln::nn {

DenseElementsAttr getBoundValue(Value value) {
  Operation *op = value.getDefiningOp();
  if (!op)
    return {};
  if (auto param = dyn_cast<ParamOp>(op))
    return param.valueAttr().dyn_cast_or_null<DenseElementsAttr>();
  if (auto buffer = dyn_cast<BufferOp>(op))
    return buffer.valueAttr().dyn_cast_or_null<DenseElementsAttr>();
  if (auto constant = dyn_cast<arith::ConstantOp>(op))
    return constant.getValue().dyn_cast<DenseElementsAttr>();
  return {};
}

static std::string nameIn(Location loc) {
  if (auto name = loc.dyn_cast<NameLoc>())
    return name.getName().str();
  if (auto fused = loc.dyn_cast<FusedLoc>())
    for (Location part : fused.getLocations())
      if (std::string name = nameIn(part); !name.empty())
        return name;
  return "";
}

std::string layerNameOf(Operation *op) { return nameIn(op->getLoc()); }

std::string describeLayer(Operation *op) {
  std::string kind = op->getName().stripDialect().str();
  std::string name = layerNameOf(op);
  return name.empty() ? kind : "'" + name + "' (" + kind + ")";
}

} // namespace kiln::nn

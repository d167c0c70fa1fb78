//===- Summary.cpp - what `kilnc check` prints ----------------------------===//
//
// FLOPs count a multiply-add as 2, per sample (the batch dimension left out):
// linear 2·in·out (+out with bias) per row, conv2d 2·Cin·kH·kW per output
// element (+1 with bias), batch_norm 2 per element (a scale and a shift once
// its constants are folded), activations and '+' 1 per element, pooling
// kH·kW per output element, flatten and dropout 0.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Summary.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Import/Import.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"

namespace kiln {

using namespace mlir;

namespace {

int64_t elementCount(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

/// Elements of one sample of an activation: every dim but the batch.
int64_t perSample(Value value) {
  return elementCount(
      value.getType().cast<RankedTensorType>().getShape().drop_front());
}

int64_t elementCount(Value value) {
  return elementCount(value.getType().cast<RankedTensorType>().getShape());
}

int64_t flopsPerSample(Operation *op) {
  return llvm::TypeSwitch<Operation *, int64_t>(op)
      .Case([](nn::LinearOp linear) {
        auto weight = linear.weight().getType().cast<RankedTensorType>();
        int64_t rows = perSample(linear.output()) / weight.getDimSize(0);
        int64_t perRow = 2 * weight.getDimSize(0) * weight.getDimSize(1) +
                         (linear.bias() ? weight.getDimSize(0) : 0);
        return rows * perRow;
      })
      .Case([](nn::Conv2DOp conv) {
        auto weight = conv.weight().getType().cast<RankedTensorType>();
        int64_t macs = weight.getDimSize(1) * weight.getDimSize(2) *
                       weight.getDimSize(3);
        return perSample(conv.output()) * (2 * macs + (conv.bias() ? 1 : 0));
      })
      .Case([](nn::BatchNormOp bn) { return 2 * perSample(bn.output()); })
      .Case<nn::ReluOp, nn::SigmoidOp, nn::TanhOp, nn::AddOp>(
          [](Operation *op) { return perSample(op->getResult(0)); })
      .Case<nn::AvgPool2DOp, nn::MaxPool2DOp>([](Operation *op) {
        auto kernel = op->getAttrOfType<ArrayAttr>("kernel_size");
        int64_t window = kernel[0].cast<IntegerAttr>().getInt() *
                         kernel[1].cast<IntegerAttr>().getInt();
        return perSample(op->getResult(0)) * window;
      })
      .Default([](Operation *) { return int64_t(0); });
}

/// The layer's state_dict prefix from its NameLoc, or the op's name for a
/// functional call (relu(x) in forward).
std::string layerName(Operation *op) {
  std::string name = nn::layerNameOf(op);
  return name.empty() ? "(" + op->getName().stripDialect().str() + ")" : name;
}

/// Parameters, buffers and the constants folding makes of them.
bool isState(Operation *op) {
  return isa<nn::ParamOp, nn::BufferOp, arith::ConstantOp>(op);
}

std::string withCommas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

void printRow(llvm::raw_ostream &os, StringRef layer, StringRef op,
              StringRef output, StringRef params, StringRef flops) {
  os << llvm::left_justify(layer, 22) << ' ' << llvm::left_justify(op, 12)
     << ' ' << llvm::left_justify(output, 18) << ' '
     << llvm::right_justify(params, 12) << ' ' << llvm::right_justify(flops, 14)
     << '\n';
}

FuncOp forwardOf(ModuleOp module) {
  return module.lookupSymbol<FuncOp>(kForwardFunc);
}

} // namespace

void printSummary(ModuleOp module, llvm::raw_ostream &os) {
  FuncOp forward = forwardOf(module);
  auto modelName = module->getAttrOfType<StringAttr>(kModelNameAttr);
  os << "model " << (modelName ? modelName.getValue() : "?") << ": input "
     << nn::formatShape(forward.getType().getInput(0).cast<RankedTensorType>().getShape())
     << "\n";
  printRow(os, "layer", "op", "output", "params", "FLOPs/sample");
  os << std::string(82, '-') << "\n";
  llvm::DenseSet<Operation *> counted;
  int64_t totalFlops = 0;
  forward.walk([&](Operation *op) {
    if (op->getDialect() == nullptr || !isa<nn::NNDialect>(op->getDialect()) ||
        isState(op))
      return;
    int64_t params = 0;
    for (Value operand : op->getOperands())
      if (auto param = operand.getDefiningOp<nn::ParamOp>())
        if (counted.insert(param).second) // a shared layer counts once
          params += elementCount(param.result());
    int64_t flops = flopsPerSample(op);
    totalFlops += flops;
    printRow(os, layerName(op), op->getName().stripDialect(),
             nn::formatShape(
                 op->getResult(0).getType().cast<RankedTensorType>().getShape()),
             withCommas(params), withCommas(flops));
  });
  int64_t params = 0, buffers = 0, unused = 0;
  forward.walk([&](Operation *op) {
    if (auto param = dyn_cast<nn::ParamOp>(op)) {
      params += elementCount(param.result());
      if (!counted.count(op))
        unused += elementCount(param.result());
    } else if (auto buffer = dyn_cast<nn::BufferOp>(op)) {
      buffers += elementCount(buffer.result());
    }
  });
  os << std::string(82, '-') << "\n";
  os << "total parameters: " << withCommas(params);
  if (unused)
    os << " (" << withCommas(unused) << " in layers forward does not use)";
  os << "\n";
  os << "total buffers:    " << withCommas(buffers)
     << " (BatchNorm running statistics and counters)\n";
  os << "FLOPs per sample: " << withCommas(totalFlops) << "\n";
}

void printStateDict(ModuleOp module, llvm::raw_ostream &os) {
  int64_t params = 0;
  forwardOf(module).walk([&](Operation *op) {
    if (!isState(op))
      return;
    auto type = op->getResult(0).getType().cast<RankedTensorType>();
    bool trainable = isa<nn::ParamOp>(op);
    os << op->getAttrOfType<StringAttr>("name").getValue() << " "
       << (trainable ? "parameter" : "buffer") << " "
       << (type.getElementType().isF32() ? "f32" : "i64") << " [";
    llvm::interleaveComma(type.getShape(), os);
    os << "]\n";
    if (trainable)
      params += type.getNumElements();
  });
  os << "parameters " << params << "\n";
}

void printDot(ModuleOp module, llvm::raw_ostream &os) {
  FuncOp forward = forwardOf(module);
  auto modelName = module->getAttrOfType<StringAttr>(kModelNameAttr);
  os << "digraph \"" << (modelName ? modelName.getValue() : "model") << "\" {\n";
  os << "  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n";
  llvm::DenseMap<Value, std::string> nodeOf;
  Value input = forward.getArgument(0);
  nodeOf[input] = "input";
  os << "  input [label=\"input\\n"
     << nn::formatShape(input.getType().cast<RankedTensorType>().getShape())
     << "\", shape=ellipse];\n";
  unsigned next = 0;
  for (Operation &body : forward.getBody().front()) {
    Operation *op = &body;
    if (isState(op))
      continue;
    if (isa<ReturnOp>(op)) {
      os << "  output [shape=ellipse];\n";
      os << "  " << nodeOf.lookup(op->getOperand(0)) << " -> output;\n";
      continue;
    }
    std::string node = "n" + std::to_string(next++);
    nodeOf[op->getResult(0)] = node;
    os << "  " << node << " [label=\"" << layerName(op) << "\\n"
       << op->getName().stripDialect() << "\\n"
       << nn::formatShape(
              op->getResult(0).getType().cast<RankedTensorType>().getShape())
       << "\"];\n";
    for (Value operand : op->getOperands())
      if (nodeOf.count(operand))
        os << "  " << nodeOf.lookup(operand) << " -> " << node << ";\n";
  }
  os << "}\n";
}

} // namespace kiln

//===- Summary.cpp - what `kilnc check` prints ----------------------------===//
//
// FLOPs count a multiply-add as 2, per sample (the batch dimension left out):
// linear 2·in·out (+out with bias) per row, conv2d 2·Cin·kH·kW per output
// element (+1 with bias), batch_norm 2 per element (a scale and a shift once
// its constants are folded), activations and '+' 1 per element, pooling
// kH·kW per output element, softmax and log_softmax 5 per element (a
// comparison for the max, a subtraction, an exp, an addition to the sum, a
// division or subtraction), flatten and dropout 0.
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

/// A count (elements, parameters, FLOPs) whose arithmetic is checked: once
/// a step overflows int64 it stays invalid, and the summary reports the
/// layer rather than a wrapped-around number (linear(2147483648,
/// 2147483648) printed negative FLOPs).
struct Count {
  int64_t value = 0;
  bool valid = true;

  Count() = default;
  Count(int64_t value) : value(value) {}

  friend Count operator*(Count a, Count b) {
    Count out;
    out.valid = a.valid && b.valid && !__builtin_mul_overflow(a.value, b.value, &out.value);
    return out;
  }
  friend Count operator+(Count a, Count b) {
    Count out;
    out.valid = a.valid && b.valid && !__builtin_add_overflow(a.value, b.value, &out.value);
    return out;
  }
  Count &operator+=(Count other) { return *this = *this + other; }
};

Count elementCount(ArrayRef<int64_t> shape) {
  Count count = 1;
  for (int64_t dim : shape)
    count = count * dim;
  return count;
}

/// Elements of one sample of an activation: every dim but the batch.
Count perSample(Value value) {
  return elementCount(
      value.getType().cast<RankedTensorType>().getShape().drop_front());
}

Count elementCount(Value value) {
  return elementCount(value.getType().cast<RankedTensorType>().getShape());
}

Count flopsPerSample(Operation *op) {
  return llvm::TypeSwitch<Operation *, Count>(op)
      .Case([](nn::LinearOp linear) {
        auto weight = linear.weight().getType().cast<RankedTensorType>();
        Count rows = elementCount(linear.output().getType().cast<RankedTensorType>()
                                      .getShape().drop_front().drop_back());
        Count perRow = Count(2) * weight.getDimSize(0) * weight.getDimSize(1) +
                       (linear.bias() ? weight.getDimSize(0) : 0);
        return rows * perRow;
      })
      .Case([](nn::Conv2DOp conv) {
        auto weight = conv.weight().getType().cast<RankedTensorType>();
        Count macs = Count(weight.getDimSize(1)) * weight.getDimSize(2) * weight.getDimSize(3);
        return perSample(conv.output()) * (Count(2) * macs + (conv.bias() ? 1 : 0));
      })
      .Case([](nn::BatchNormOp bn) { return Count(2) * perSample(bn.output()); })
      .Case<nn::ReluOp, nn::SigmoidOp, nn::TanhOp, nn::AddOp>(
          [](Operation *op) { return perSample(op->getResult(0)); })
      .Case<nn::SoftmaxOp, nn::LogSoftmaxOp>(
          [](Operation *op) { return Count(5) * perSample(op->getResult(0)); })
      .Case<nn::AvgPool2DOp, nn::MaxPool2DOp>([](Operation *op) {
        auto kernel = op->getAttrOfType<ArrayAttr>("kernel_size");
        Count window = Count(kernel[0].cast<IntegerAttr>().getInt()) *
                       kernel[1].cast<IntegerAttr>().getInt();
        return perSample(op->getResult(0)) * window;
      })
      .Default([](Operation *) { return Count(0); });
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

std::string withCommas(Count count) {
  int64_t value = count.value;
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

LogicalResult printSummary(ModuleOp module, llvm::raw_ostream &out) {
  FuncOp forward = forwardOf(module);
  auto modelName = module->getAttrOfType<StringAttr>(kModelNameAttr);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "model " << (modelName ? modelName.getValue() : "?") << ": input "
     << nn::formatShape(forward.getType().getInput(0).cast<RankedTensorType>().getShape())
     << "\n";
  printRow(os, "layer", "op", "output", "params", "FLOPs/sample");
  os << std::string(82, '-') << "\n";
  auto tooLarge = [](Operation *op, StringRef what) {
    return op->emitError() << nn::describeLayer(op) << ": its " << what
                           << " do not fit in a 64-bit count";
  };
  llvm::DenseSet<Operation *> counted;
  Count totalFlops = 0, totalParams = 0;
  Operation *failedAt = nullptr;
  forward.walk([&](Operation *op) {
    if (failedAt || op->getDialect() == nullptr || !isa<nn::NNDialect>(op->getDialect()) ||
        isState(op))
      return;
    Count params = 0;
    for (Value operand : op->getOperands())
      if (auto param = operand.getDefiningOp<nn::ParamOp>())
        if (counted.insert(param).second) // a shared layer counts once
          params += elementCount(param.result());
    Count flops = flopsPerSample(op);
    totalFlops += flops;
    totalParams += params;
    if (!params.valid || !totalParams.valid) {
      tooLarge(op, params.valid ? "parameters, added to the layers before it," : "parameters");
      failedAt = op;
      return;
    }
    if (!flops.valid || !totalFlops.valid) {
      tooLarge(op, flops.valid ? "FLOPs per sample, added to the layers before it,"
                               : "FLOPs per sample");
      failedAt = op;
      return;
    }
    printRow(os, layerName(op), op->getName().stripDialect(),
             nn::formatShape(
                 op->getResult(0).getType().cast<RankedTensorType>().getShape()),
             withCommas(params), withCommas(flops));
  });
  if (failedAt)
    return failure();
  Count params = 0, buffers = 0, unused = 0;
  forward.walk([&](Operation *op) {
    if (auto param = dyn_cast<nn::ParamOp>(op)) {
      params += elementCount(param.result());
      if (!counted.count(op))
        unused += elementCount(param.result());
    } else if (auto buffer = dyn_cast<nn::BufferOp>(op)) {
      buffers += elementCount(buffer.result());
    }
    if ((!params.valid || !buffers.valid) && !failedAt) {
      tooLarge(op, "elements, added to the model's other state,");
      failedAt = op;
    }
  });
  if (failedAt)
    return failure();
  os << std::string(82, '-') << "\n";
  os << "total parameters: " << withCommas(params);
  if (unused.value)
    os << " (" << withCommas(unused) << " in layers forward does not use)";
  os << "\n";
  os << "total buffers:    " << withCommas(buffers)
     << " (BatchNorm running statistics and counters)\n";
  os << "FLOPs per sample: " << withCommas(totalFlops) << "\n";
  out << os.str();
  return success();
}

LogicalResult printStateDict(ModuleOp module, llvm::raw_ostream &os) {
  Count params = 0;
  Operation *failedAt = nullptr;
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
      params += elementCount(type.getShape());
    if (!params.valid && !failedAt) {
      op->emitError() << "the parameters up to '" << op->getAttrOfType<StringAttr>("name").getValue()
                      << "' do not fit in a 64-bit count";
      failedAt = op;
    }
  });
  if (failedAt)
    return failure();
  os << "parameters " << params.value << "\n";
  return success();
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

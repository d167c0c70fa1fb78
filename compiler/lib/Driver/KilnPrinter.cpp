//===- KilnPrinter.cpp - an nn module as a Kiln DSL model -----------------===//
//
// The forward function's ops, in order, become layer declarations (the ops
// that own state, pools, dropout) and forward statements (calls of them,
// functionals, `+`). A plan made once (Plan) decides each op's layer and
// its state's keys, for the source and for the weights file alike.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/KilnPrinter.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Import/Import.h"
#include "kiln/runtime/safetensors.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <map>
#include <vector>

using namespace mlir;

namespace kiln {

namespace {

bool isStateOp(Operation *op) { return isa<nn::ParamOp, nn::BufferOp, arith::ConstantOp>(op); }

std::vector<int64_t> shapeOf(Value value) {
  auto type = value.getType().cast<RankedTensorType>();
  return {type.getShape().begin(), type.getShape().end()};
}

/// The state_dict keys of the state an op reads, in operand order.
std::vector<std::string> stateKeysOf(Operation *op) {
  std::vector<std::string> keys;
  for (Value operand : op->getOperands())
    if (Operation *def = operand.getDefiningOp())
      if (isa<nn::ParamOp, nn::BufferOp>(def))
        keys.push_back(def->getAttrOfType<StringAttr>("name").getValue().str());
  return keys;
}

/// The PyTorch name of the state `value` is to `op` ("weight", "bias",
/// "running_mean", ...), whatever its key.
std::string roleOf(Operation *op, Value value) {
  if (auto bn = dyn_cast<nn::BatchNormOp>(op)) {
    if (value == bn.weight())
      return "weight";
    if (value == bn.bias())
      return "bias";
    if (value == bn.running_mean())
      return "running_mean";
    if (value == bn.running_var())
      return "running_var";
    return "num_batches_tracked";
  }
  return value == op->getOperand(1) ? "weight" : "bias";
}

/// "layer1.0" of "layer1.0.weight"; "" for a key without a dot.
std::string prefixOf(const std::string &key) {
  size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

bool isIdentifier(StringRef name) {
  if (name.empty() || isdigit(static_cast<unsigned char>(name[0])))
    return false;
  return llvm::all_of(name, [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

const llvm::StringSet<> &reservedNames() {
  static const llvm::StringSet<> names = {"model",   "input",   "forward", "return",
                                          "train",   "sequential", "true", "false",
                                          "relu",    "sigmoid", "tanh",    "flatten",
                                          "softmax", "log_softmax", "x"};
  return names;
}

/// `text` as an identifier no keyword or functional takes.
std::string identifierFor(StringRef text) {
  std::string name;
  for (char c : text)
    name += isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
  if (name.empty() || isdigit(static_cast<unsigned char>(name[0])))
    name = "layer_" + name;
  if (reservedNames().count(name))
    name += "_";
  return name;
}

std::string number(double value) { return nn::formatNumber(value); }

/// An int-or-pair argument: `k`, or `(h, w)` where they differ.
std::string pairText(ArrayRef<int64_t> pair) {
  if (pair.size() == 2 && pair[0] != pair[1])
    return "(" + std::to_string(pair[0]) + ", " + std::to_string(pair[1]) + ")";
  return std::to_string(pair.empty() ? 0 : pair[0]);
}

std::vector<int64_t> ints(ArrayAttr attr) {
  std::vector<int64_t> values;
  if (attr)
    for (Attribute a : attr)
      values.push_back(a.cast<IntegerAttr>().getInt());
  return values;
}

bool allEqual(ArrayRef<int64_t> values, int64_t v) {
  return llvm::all_of(values, [&](int64_t x) { return x == v; });
}

/// What an op is in the DSL: a layer kind with its arguments ("linear(784,
/// 256)", "relu"), and whether it may also be written as a functional call.
struct Spelling {
  std::string layer;      // the declaration's right-hand side
  std::string functional; // "relu" / "flatten" / ...: callable without declaring, or ""
  std::string functionalArgs; // ", start_dim=1": the functional's keywords
};

FailureOr<Spelling> spell(Operation *op) {
  auto refuse = [&](const Twine &why) -> FailureOr<Spelling> {
    op->emitError() << nn::describeLayer(op) << " has no DSL spelling: " << why;
    return failure();
  };
  if (op->hasAttr("activation"))
    return refuse("a fused activation (print the model before fusion)");
  Spelling s;
  if (auto linear = dyn_cast<nn::LinearOp>(op)) {
    std::vector<int64_t> w = shapeOf(linear.weight());
    s.layer = "linear(" + std::to_string(w[1]) + ", " + std::to_string(w[0]) +
              (linear.bias() ? "" : ", bias=false") + ")";
    return s;
  }
  if (auto conv = dyn_cast<nn::Conv2DOp>(op)) {
    std::vector<int64_t> w = shapeOf(conv.weight());
    nn::WindowSpec window = nn::windowOf(op);
    if (!window.paddingEnd.empty() && window.paddingEnd != window.padding)
      return refuse("asymmetric padding");
    std::string text = "conv2d(" + std::to_string(w[1]) + ", " + std::to_string(w[0]) +
                       ", kernel_size=" + pairText({w[2], w[3]});
    if (!allEqual(window.stride, 1))
      text += ", stride=" + pairText(window.stride);
    if (!window.padding.empty() && !allEqual(window.padding, 0))
      text += ", padding=" + pairText(window.padding);
    if (!window.dilation.empty() && !allEqual(window.dilation, 1))
      text += ", dilation=" + pairText(window.dilation);
    s.layer = text + (conv.bias() ? "" : ", bias=false") + ")";
    return s;
  }
  if (auto bn = dyn_cast<nn::BatchNormOp>(op)) {
    std::vector<int64_t> in = shapeOf(bn.input());
    bool tracked = static_cast<bool>(bn.running_mean());
    if (bn.training() && tracked)
      return refuse("batch statistics in inference with running statistics tracked");
    std::string text = std::string(in.size() == 4 ? "batchnorm2d(" : "batchnorm1d(") +
                       std::to_string(in[1]);
    if (bn.eps().convertToDouble() != 1e-5)
      text += ", eps=" + number(bn.eps().convertToDouble());
    if (!bn.momentumAttr())
      text += ", momentum=None";
    else if (bn.momentumAttr().getValueAsDouble() != 0.1)
      text += ", momentum=" + number(bn.momentumAttr().getValueAsDouble());
    if (!bn.weight())
      text += ", affine=false";
    if (!tracked)
      text += ", track_running_stats=false";
    s.layer = text + ")";
    return s;
  }
  if (isa<nn::AvgPool2DOp, nn::MaxPool2DOp>(op)) {
    bool isMax = isa<nn::MaxPool2DOp>(op);
    nn::WindowSpec window = nn::windowOf(op);
    if (!window.paddingEnd.empty() && window.paddingEnd != window.padding)
      return refuse("asymmetric padding");
    std::vector<int64_t> kernel = ints(op->getAttrOfType<ArrayAttr>("kernel_size"));
    std::string text = std::string(isMax ? "maxpool2d(" : "avgpool2d(") +
                       "kernel_size=" + pairText(kernel);
    if (!llvm::equal(window.stride, kernel))
      text += ", stride=" + pairText(window.stride);
    if (!window.padding.empty() && !allEqual(window.padding, 0))
      text += ", padding=" + pairText(window.padding);
    if (isMax && !window.dilation.empty() && !allEqual(window.dilation, 1))
      text += ", dilation=" + pairText(window.dilation);
    if (window.ceilMode)
      text += ", ceil_mode=true";
    // Only windows that read padding count it or not.
    bool padded = (!window.padding.empty() && !allEqual(window.padding, 0)) || window.ceilMode;
    if (!isMax && padded && !op->hasAttr("count_include_pad"))
      text += ", count_include_pad=false";
    s.layer = text + ")";
    return s;
  }
  if (auto dropout = dyn_cast<nn::DropoutOp>(op)) {
    if (dropout.training())
      return refuse("dropout in training mode");
    s.layer = "dropout(" + number(dropout.p().convertToDouble()) + ")";
    return s;
  }
  if (auto flatten = dyn_cast<nn::FlattenOp>(op)) {
    std::string args;
    if (flatten.start_dim() != 1)
      args += "start_dim=" + std::to_string(flatten.start_dim());
    if (flatten.end_dim() != -1 &&
        flatten.end_dim() != static_cast<int64_t>(shapeOf(flatten.input()).size()) - 1)
      args += std::string(args.empty() ? "" : ", ") + "end_dim=" + std::to_string(flatten.end_dim());
    s.layer = args.empty() ? "flatten" : "flatten(" + args + ")";
    s.functional = "flatten";
    s.functionalArgs = args.empty() ? "" : ", " + args;
    return s;
  }
  if (isa<nn::SoftmaxOp, nn::LogSoftmaxOp>(op)) {
    std::string kind = isa<nn::SoftmaxOp>(op) ? "softmax" : "log_softmax";
    std::string dim = "dim=" + std::to_string(op->getAttrOfType<IntegerAttr>("axis").getInt());
    s.layer = kind + "(" + dim + ")";
    s.functional = kind;
    s.functionalArgs = ", " + dim;
    return s;
  }
  if (isa<nn::ReluOp, nn::SigmoidOp, nn::TanhOp>(op)) {
    s.layer = isa<nn::ReluOp>(op) ? "relu" : isa<nn::SigmoidOp>(op) ? "sigmoid" : "tanh";
    s.functional = s.layer;
    return s;
  }
  return refuse("the DSL has no such layer");
}

/// How the model is printed: each op's spelling, and its layer: a
/// sequential's item, a declared layer, or none (a functional or `+`).
struct Plan {
  struct Layer {
    std::string name;
    std::vector<Operation *> items; // one op, or a sequential's run
    bool sequential = false;
  };
  std::vector<Operation *> ops;            // the forward's, in order
  std::map<Operation *, Spelling> spelling;
  std::vector<Layer> layers;               // in declaration (state_dict) order
  std::map<Operation *, size_t> layerOf;   // op -> index in layers
  std::map<std::string, std::string> keys; // state_dict key -> the printed model's
  FuncOp forward;
};

/// Whether ops [first, last] of `ops` are a chain: each reads the previous
/// one's result as its data input (operand 0), which nothing else reads.
bool isChain(const std::vector<Operation *> &ops, size_t first, size_t last) {
  for (size_t i = first + 1; i <= last; ++i) {
    Operation *prev = ops[i - 1], *op = ops[i];
    if (op->getNumOperands() == 0 || op->getOperand(0) != prev->getResult(0) ||
        !prev->getResult(0).hasOneUse() || isa<nn::AddOp>(op))
      return false;
  }
  return !isa<nn::AddOp>(ops[first]);
}

/// Runs of layers keyed `name.<i>.*` as PyTorch's nn.Sequential numbers
/// them: item i at position p, so item j sits j − i ops later, and the
/// stateless ops between them are the items between. A run that is not a
/// chain, or that another layer's op interrupts, is left to flat layers.
void planSequentials(Plan &plan, const std::map<Operation *, std::string> &prefixes) {
  std::map<std::string, std::vector<std::pair<int64_t, size_t>>> groups; // name -> (index, pos)
  std::vector<std::string> order;
  for (size_t pos = 0; pos < plan.ops.size(); ++pos) {
    auto found = prefixes.find(plan.ops[pos]);
    if (found == prefixes.end())
      continue;
    StringRef prefix = found->second, name, index;
    std::tie(name, index) = prefix.rsplit('.');
    int64_t i = 0;
    if (index.empty() || !isIdentifier(name) || reservedNames().count(name) || index.getAsInteger(10, i))
      continue;
    if (!groups.count(name.str()))
      order.push_back(name.str());
    groups[name.str()].push_back({i, pos});
  }
  for (const std::string &name : order) {
    const auto &items = groups[name];
    bool ok = items.front().second >= static_cast<size_t>(items.front().first);
    for (size_t k = 1; ok && k < items.size(); ++k)
      ok = items[k].first > items[k - 1].first &&
           static_cast<int64_t>(items[k].second - items[k - 1].second) ==
               items[k].first - items[k - 1].first;
    if (!ok)
      continue;
    size_t first = items.front().second - items.front().first, last = items.back().second;
    for (size_t pos = first; ok && pos <= last; ++pos) {
      auto found = prefixes.find(plan.ops[pos]);
      ok = !plan.layerOf.count(plan.ops[pos]) &&
           (found == prefixes.end() || StringRef(found->second).startswith(name + "."));
    }
    if (!ok || !isChain(plan.ops, first, last))
      continue;
    Plan::Layer layer{name, {}, true};
    for (size_t pos = first; pos <= last; ++pos) {
      layer.items.push_back(plan.ops[pos]);
      plan.layerOf[plan.ops[pos]] = plan.layers.size();
    }
    plan.layers.push_back(layer);
  }
}

FailureOr<Plan> makePlan(ModuleOp module) {
  Plan plan;
  plan.forward = module.lookupSymbol<FuncOp>(kForwardFunc);
  if (!plan.forward || plan.forward.getNumArguments() != 1 ||
      plan.forward.getType().getNumResults() != 1)
    return LogicalResult(module.emitError()
                         << "only a model with one forward function of one input and one "
                            "output prints as DSL");
  std::map<Operation *, std::string> prefixes;
  bool failedAny = false;
  for (Operation &op : plan.forward.getBody().front()) {
    if (isStateOp(&op) || isa<ReturnOp>(op))
      continue;
    FailureOr<Spelling> s = spell(&op);
    if (failed(s)) {
      failedAny = true;
      continue;
    }
    plan.ops.push_back(&op);
    plan.spelling[&op] = *s;
    std::vector<std::string> keys = stateKeysOf(&op);
    if (!keys.empty()) {
      std::string prefix = prefixOf(keys.front());
      bool shared = llvm::all_of(keys, [&](const std::string &k) { return prefixOf(k) == prefix; });
      prefixes[&op] = shared ? prefix : "";
    }
  }
  if (failedAny)
    return failure();
  planSequentials(plan, prefixes);
  // Every other op that is a layer in the DSL: its own declaration, named
  // after its state (keys kept where the prefix is an identifier) or its
  // kind.
  llvm::StringSet<> taken;
  for (const Plan::Layer &layer : plan.layers)
    taken.insert(layer.name);
  std::map<std::string, int> counts;
  std::vector<Plan::Layer> flat;
  for (Operation *op : plan.ops) {
    if (plan.layerOf.count(op))
      continue;
    const Spelling &s = plan.spelling[op];
    bool stateful = prefixes.count(op);
    if (!stateful && (!s.functional.empty() || isa<nn::AddOp>(op)))
      continue; // a functional call
    std::string base;
    if (stateful)
      base = identifierFor(prefixes[op].empty() ? stateKeysOf(op).front() : prefixes[op]);
    else
      base = s.layer.substr(0, s.layer.find('('));
    std::string name = base;
    while (taken.count(name))
      name = base + "_" + std::to_string(++counts[base]);
    taken.insert(name);
    plan.layerOf[op] = plan.layers.size();
    plan.layers.push_back(Plan::Layer{name, {op}, false});
  }
  // State keys: PyTorch's <path>.<name>, the path the printed layer's.
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const Plan::Layer &layer = plan.layers[l];
    for (size_t i = 0; i < layer.items.size(); ++i)
      for (Value operand : layer.items[i]->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (!def || !isa<nn::ParamOp, nn::BufferOp>(def))
          continue;
        std::string key = def->getAttrOfType<StringAttr>("name").getValue().str();
        std::string path = layer.sequential ? layer.name + "." + std::to_string(i) : layer.name;
        plan.keys[key] = path + "." + roleOf(layer.items[i], operand);
      }
  }
  return plan;
}

/// The DSL's `f32[N, 1, 28, 28]`.
std::string inputType(Value input) {
  std::vector<int64_t> shape = shapeOf(input);
  std::string text = "f32[";
  for (size_t d = 0; d < shape.size(); ++d)
    text += (d ? ", " : "") + (d == 0 ? std::string("N") : std::to_string(shape[d]));
  return text + "]";
}

} // namespace

LogicalResult printKilnModel(ModuleOp module, llvm::raw_ostream &os) {
  FailureOr<Plan> planned = makePlan(module);
  if (failed(planned))
    return failure();
  Plan &plan = *planned;
  // Keys the printed model renames: say so, since checkpoints of the
  // original then need --weights-out's copy.
  std::string model = "Model";
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    model = identifierFor(name.getValue());
  os << "# Printed by kilnc emit --emit=kiln";
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    os << " from '" << name.getValue() << "'";
  os << ".\n";
  for (const auto &[from, to] : plan.keys)
    if (from != to)
      os << "# state '" << from << "' is '" << to << "' here\n";
  os << "model " << model << " {\n  input x: " << inputType(plan.forward.getArgument(0))
     << "\n\n";
  for (const Plan::Layer &layer : plan.layers) {
    if (!layer.sequential) {
      os << "  " << layer.name << " = " << plan.spelling[layer.items[0]].layer << "\n";
      continue;
    }
    os << "  " << layer.name << " = sequential {\n";
    for (Operation *item : layer.items)
      os << "    " << plan.spelling[item].layer << "\n";
    os << "  }\n";
  }
  os << "\n  forward {\n";
  llvm::DenseMap<Value, std::string> names;
  names[plan.forward.getArgument(0)] = "x";
  int next = 0;
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    Operation *op = plan.ops[i];
    auto layer = plan.layerOf.find(op);
    std::string name = "h" + std::to_string(++next), expr;
    if (layer != plan.layerOf.end()) {
      const Plan::Layer &l = plan.layers[layer->second];
      expr = l.name + "(" + names[op->getOperand(0)] + ")";
      if (l.sequential)
        i += l.items.size() - 1;
      op = plan.ops[i];
    } else if (isa<nn::AddOp>(op)) {
      expr = names[op->getOperand(0)] + " + " + names[op->getOperand(1)];
    } else {
      const Spelling &s = plan.spelling[op];
      expr = s.functional + "(" + names[op->getOperand(0)] + s.functionalArgs + ")";
    }
    names[op->getResult(0)] = name;
    os << "    " << name << " = " << expr << "\n";
  }
  Value result = plan.forward.getBody().front().getTerminator()->getOperand(0);
  os << "    return " << names[result] << "\n  }\n}\n";
  return success();
}

LogicalResult writeKilnWeights(ModuleOp module, const std::string &path) {
  FailureOr<Plan> planned = makePlan(module);
  if (failed(planned))
    return failure();
  kiln_safetensors_writer_t *writer = nullptr;
  kiln_status_t status = kiln_safetensors_writer_create(&writer);
  std::vector<std::vector<float>> floats;
  std::vector<std::vector<int64_t>> integers;
  std::string missing;
  module.walk([&](Operation *op) {
    if (status || !missing.empty() || !isa<nn::ParamOp, nn::BufferOp>(op))
      return;
    std::string key = op->getAttrOfType<StringAttr>("name").getValue().str();
    DenseElementsAttr value = nn::getBoundValue(op->getResult(0));
    if (!value) {
      missing = key;
      return;
    }
    auto found = planned->keys.find(key);
    std::string name = found != planned->keys.end() ? found->second : key;
    std::vector<int64_t> shape = shapeOf(op->getResult(0));
    if (value.getElementType().isInteger(64)) {
      integers.emplace_back(value.getValues<int64_t>().begin(), value.getValues<int64_t>().end());
      status = kiln_safetensors_writer_add(writer, name.c_str(), KILN_DTYPE_I64, shape.size(),
                                           shape.data(), integers.back().data());
    } else {
      floats.emplace_back(value.getValues<float>().begin(), value.getValues<float>().end());
      status = kiln_safetensors_writer_add(writer, name.c_str(), KILN_DTYPE_F32, shape.size(),
                                           shape.data(), floats.back().data());
    }
  });
  if (!missing.empty()) {
    kiln_safetensors_writer_free(writer);
    kiln_status_free(status);
    return emitError(module.getLoc())
           << "--weights-out: state '" << missing
           << "' has no value to write (a DSL model's weights come from a checkpoint)";
  }
  if (!status)
    status = kiln_safetensors_writer_set_metadata(writer, "format", "pt");
  if (!status)
    status = kiln_safetensors_writer_write(writer, path.c_str());
  kiln_safetensors_writer_free(writer);
  if (status) {
    emitError(module.getLoc()) << "--weights-out: " << kiln_status_message(status);
    kiln_status_free(status);
    return failure();
  }
  return success();
}

} // namespace kiln

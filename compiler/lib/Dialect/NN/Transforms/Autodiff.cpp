//===- Autodiff.cpp - build the training step from the forward function ---===//
//
// nn-autodiff (Passes.td has the signature it builds). The forward function
// is cloned in train mode into @train_step, its parameters and buffers
// becoming arguments; the loss is appended; then the forward ops are walked
// in reverse and each emits the explicit gradient ops of NNTrainOps.td for
// the operands that need a gradient (those that depend on a parameter: the
// batch gets none). A value with several uses (a residual's skip, a layer
// applied twice) sums the gradients of its uses with nn.add, in reverse
// program order. Last, one optimizer update per parameter, PyTorch's
// formulas being the ops' (NNTrainOps.td).
//
//===----------------------------------------------------------------------===//
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "mlir/IR/BlockAndValueMapping.h"
#include "mlir/IR/Builders.h"

#include <cmath>

using namespace mlir;

namespace kiln::nn {
namespace {

#define GEN_PASS_CLASSES
#include "kiln/Dialect/NN/Transforms/Passes.h.inc"

/// The optimizer and its hyper-parameters, torch.optim's names and defaults.
struct Optimizer {
  std::string name;
  double lr = -1, momentum = 0, dampening = 0, weightDecay = 0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool nesterov = false;

  /// The optimizer-state tensors of one parameter, by suffix of its key.
  SmallVector<StringRef, 2> stateSuffixes() const {
    if (name == "sgd")
      return momentum > 0 ? SmallVector<StringRef, 2>{"momentum_buffer"}
                          : SmallVector<StringRef, 2>{};
    return {"exp_avg", "exp_avg_sq"};
  }
};

/// One argument or result of @train_step that is state: its key and type.
struct StateSlot {
  std::string key;
  Type type;
};

class Autodiff : public AutodiffBase<Autodiff> {
public:
  Autodiff() = default;
  explicit Autodiff(const AutodiffOptions &options) {
    optimizer = options.optimizer;
    lr = options.lr;
    momentum = options.momentum;
    weightDecay = options.weightDecay;
    seed = options.seed;
  }
  void runOnOperation() override;

private:
  FailureOr<Optimizer> readTrainConfig(ModuleOp module, int64_t &seed);
  LogicalResult checkForward(FuncOp forward);
  void buildTrainStep(ModuleOp module, FuncOp forward, const Optimizer &opt,
                      int64_t seed);
};

double number(DictionaryAttr dict, StringRef key, double fallback) {
  if (auto value = dict.getAs<FloatAttr>(key))
    return value.getValueAsDouble();
  if (auto value = dict.getAs<IntegerAttr>(key))
    return static_cast<double>(value.getInt());
  return fallback;
}

FailureOr<Optimizer> Autodiff::readTrainConfig(ModuleOp module,
                                               int64_t &dropoutSeed) {
  auto train = module->getAttrOfType<DictionaryAttr>("kiln.train");
  // A model without a train section (an ONNX import, a DSL model written
  // for inference) trains with the defaults of one (cross-entropy, the
  // optimizer named by the options) when an optimizer is named.
  if (!train && optimizer.empty()) {
    module.emitError("nn-autodiff needs the module's 'kiln.train' attribute: "
                     "the model has no train section; name an optimizer (kilnc: "
                     "--optimizer sgd|adam|adamw, with --lr for sgd) to train it with a "
                     "train section's defaults");
    return failure();
  }
  auto loss = train ? train.getAs<StringAttr>("loss") : StringAttr();
  if (train && (!loss || loss.getValue() != "cross_entropy")) {
    module.emitError() << "nn-autodiff: unknown loss '"
                       << (loss ? loss.getValue() : StringRef("")) << "' in kiln.train; expected "
                          "cross_entropy";
    return failure();
  }
  dropoutSeed = trainingSeed(module, static_cast<int64_t>(seed));
  auto section = train ? train.getAs<DictionaryAttr>("optimizer") : DictionaryAttr();
  StringRef sectionName;
  if (section)
    if (auto name = section.getAs<StringAttr>("name"))
      sectionName = name.getValue();
  Optimizer opt;
  opt.name = optimizer.empty() ? sectionName.str() : optimizer;
  if (opt.name != "sgd" && opt.name != "adam" && opt.name != "adamw") {
    module.emitError() << "nn-autodiff: unknown optimizer '" << opt.name
                       << "'; expected sgd, adam or adamw";
    return failure();
  }
  if (opt.name == "adamw")
    opt.weightDecay = 1e-2; // torch.optim.AdamW's default
  // Another optimizer than the section's starts from PyTorch's defaults.
  if (section && sectionName == opt.name) {
    opt.lr = number(section, "lr", opt.lr);
    opt.momentum = number(section, "momentum", opt.momentum);
    opt.dampening = number(section, "dampening", opt.dampening);
    opt.weightDecay = number(section, "weight_decay", opt.weightDecay);
    opt.eps = number(section, "eps", opt.eps);
    if (auto nesterov = section.getAs<BoolAttr>("nesterov"))
      opt.nesterov = nesterov.getValue();
    if (auto betas = section.getAs<ArrayAttr>("betas"); betas && betas.size() == 2) {
      opt.beta1 = betas[0].cast<FloatAttr>().getValueAsDouble();
      opt.beta2 = betas[1].cast<FloatAttr>().getValueAsDouble();
    }
  }
  if (lr >= 0)
    opt.lr = lr;
  if (momentum >= 0)
    opt.momentum = momentum;
  if (weightDecay >= 0)
    opt.weightDecay = weightDecay;
  if (opt.name == "adam" || opt.name == "adamw")
    opt.lr = opt.lr < 0 ? 1e-3 : opt.lr;
  if (!(opt.lr > 0)) {
    module.emitError() << "nn-autodiff: " << opt.name << " needs a learning rate > 0";
    return failure();
  }
  if (opt.name != "sgd" && opt.momentum > 0) {
    module.emitError() << "nn-autodiff: momentum is an sgd setting, not " << opt.name << "'s";
    return failure();
  }
  if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0)) {
    module.emitError("nn-autodiff: sgd with nesterov needs momentum > 0 and dampening = 0");
    return failure();
  }
  return opt;
}

/// The forward ops StepBuilder::backwardOp has a gradient for, and those
/// that need none (state, constants, the return). Any other op would
/// silently pass no gradient on, so nn-autodiff refuses it.
bool isDifferentiable(Operation *op) {
  return isa<LinearOp, Conv2DOp, BatchNormOp, ReluOp, SigmoidOp, TanhOp, AddOp, DropoutOp,
             FlattenOp, AvgPool2DOp, MaxPool2DOp, SoftmaxOp, LogSoftmaxOp, ParamOp, BufferOp,
             arith::ConstantOp, ReturnOp>(op);
}

/// What the training step cannot be built from: IR after inference passes,
/// ops without a gradient, and train-mode BatchNorm with one value per
/// channel.
LogicalResult Autodiff::checkForward(FuncOp forward) {
  if (forward.getNumArguments() != 1 || forward.getNumResults() != 1) {
    forward.emitError("nn-autodiff needs @forward with one input and one result");
    return failure();
  }
  auto logits = forward.getType().getResult(0).dyn_cast<RankedTensorType>();
  if (!logits || logits.getRank() != 2 || !logits.getElementType().isF32()) {
    forward.emitError() << "nn-autodiff: cross_entropy needs logits of shape [N, C], "
                           "but @forward returns "
                        << forward.getType().getResult(0);
    return failure();
  }
  WalkResult result = forward.walk([&](Operation *op) {
    bool fused = false;
    if (auto linear = dyn_cast<LinearOp>(op))
      fused = linear.activation().hasValue();
    else if (auto conv = dyn_cast<Conv2DOp>(op))
      fused = conv.activation().hasValue();
    if (fused || isa<ScaleShiftOp, FoldBatchNormOp>(op)) {
      op->emitError() << "nn-autodiff runs on the imported forward, before the "
                         "inference passes; found "
                      << describeLayer(op)
                      << (fused ? " with a fused activation" : "");
      return WalkResult::interrupt();
    }
    if (op != forward.getOperation() && !isDifferentiable(op)) {
      op->emitError() << "nn-autodiff has no gradient for " << describeLayer(op)
                      << " (" << op->getName() << "): the model cannot be trained";
      return WalkResult::interrupt();
    }
    if (auto bn = dyn_cast<BatchNormOp>(op)) {
      ShapeRef in = bn.input().getType().cast<RankedTensorType>().getShape();
      int64_t perChannel = 1;
      for (size_t i = 2; i < in.size(); ++i)
        perChannel *= in[i];
      if (in[0] != kDynamic && in[0] * perChannel == 1) {
        std::string name = layerNameOf(op);
        InFlightDiagnostic diag = op->emitError();
        if (!name.empty())
          diag << "in '" << name << "': ";
        diag << "expected more than 1 value per channel when training, got "
                "input shape "
             << formatShape(in);
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

/// The train-mode clone of @forward and its backward, built op by op.
class StepBuilder {
public:
  StepBuilder(OpBuilder &b, const Optimizer &opt, int64_t seed)
      : b(b), opt(opt), seed(seed) {}

  void forwardOp(Operation *op);
  void backwardOp(Operation *op);
  Value gradientOf(Value forwardValue) { return grads.lookup(forwardValue); }
  void seedGradient(Value forwardValue, Value grad) { grads[forwardValue] = grad; }

  BlockAndValueMapping map;
  Value step;                            // after the increment
  llvm::DenseSet<Value> needsGrad;       // forward values that depend on a parameter
  llvm::DenseMap<Value, Value> newState; // forward state value -> its new value

private:
  void accumulate(Value forwardValue, Value grad, Location loc);
  Value mapped(Value v) { return map.lookupOrDefault(v); }

  OpBuilder &b;
  const Optimizer &opt;
  int64_t seed;
  int64_t dropoutStream = 0;
  llvm::DenseMap<Value, Value> grads;
  // Per train-mode BatchNorm its batch statistics; per dropout its mask.
  llvm::DenseMap<Operation *, std::pair<Value, Value>> batchStats;
  llvm::DenseMap<Operation *, Value> masks;
};

void StepBuilder::forwardOp(Operation *op) {
  Location loc = op->getLoc();
  if (auto bn = dyn_cast<BatchNormOp>(op)) {
    Value x = mapped(bn.input());
    auto xType = x.getType().cast<RankedTensorType>();
    auto cType = RankedTensorType::get({xType.getDimSize(1)}, b.getF32Type());
    auto stats = b.create<BatchNormStatsOp>(loc, TypeRange{cType, cType}, x);
    Value weight = bn.weight() ? mapped(bn.weight()) : Value();
    Value bias = bn.bias() ? mapped(bn.bias()) : Value();
    Value y = b.create<BatchNormNormalizeOp>(loc, xType, x, stats.mean(),
                                             stats.var(), weight, bias, bn.epsAttr());
    map.map(bn.output(), y);
    batchStats[op] = {stats.mean(), stats.var()};
    if (bn.tracksRunningStats()) {
      auto update = b.create<RunningStatsUpdateOp>(
          loc, TypeRange{cType, cType, bn.num_batches_tracked().getType()}, x,
          stats.mean(), stats.var(), mapped(bn.running_mean()),
          mapped(bn.running_var()), mapped(bn.num_batches_tracked()),
          bn.momentumAttr());
      newState[bn.running_mean()] = update.new_running_mean();
      newState[bn.running_var()] = update.new_running_var();
      newState[bn.num_batches_tracked()] = update.new_num_batches_tracked();
    }
  } else if (auto dropout = dyn_cast<DropoutOp>(op)) {
    Value x = mapped(dropout.input());
    Value mask = b.create<DropoutMaskOp>(
        loc, x.getType(), x, step, dropout.pAttr(), b.getI64IntegerAttr(seed),
        b.getI64IntegerAttr(dropoutStream++));
    map.map(dropout.output(), b.create<MulOp>(loc, x.getType(), x, mask));
    masks[op] = mask;
  } else {
    b.clone(*op, map);
  }
  if (llvm::any_of(op->getOperands(), [&](Value v) { return needsGrad.count(v); }))
    for (Value result : op->getResults())
      needsGrad.insert(result);
}

void StepBuilder::accumulate(Value forwardValue, Value grad, Location loc) {
  if (!needsGrad.count(forwardValue))
    return;
  Value &slot = grads[forwardValue];
  slot = slot ? b.create<AddOp>(loc, grad.getType(), slot, grad).getResult() : grad;
}

void StepBuilder::backwardOp(Operation *op) {
  if (op->getNumResults() != 1)
    return;
  Value dy = grads.lookup(op->getResult(0));
  if (!dy)
    return;
  Location loc = op->getLoc();
  auto typeOf = [&](Value forwardValue) { return forwardValue.getType(); };
  auto wants = [&](Value forwardValue) {
    return forwardValue && needsGrad.count(forwardValue);
  };
  if (auto linear = dyn_cast<LinearOp>(op)) {
    if (wants(linear.input()))
      accumulate(linear.input(),
                 b.create<LinearGradInputOp>(loc, typeOf(linear.input()), dy,
                                             mapped(linear.weight())),
                 loc);
    if (wants(linear.weight()))
      accumulate(linear.weight(),
                 b.create<LinearGradWeightOp>(loc, typeOf(linear.weight()), dy,
                                              mapped(linear.input())),
                 loc);
    if (wants(linear.bias()))
      accumulate(linear.bias(),
                 b.create<LinearGradBiasOp>(loc, typeOf(linear.bias()), dy), loc);
  } else if (auto conv = dyn_cast<Conv2DOp>(op)) {
    if (wants(conv.input()))
      accumulate(conv.input(),
                 b.create<Conv2DGradInputOp>(loc, typeOf(conv.input()), dy,
                                             mapped(conv.weight()), conv.strideAttr(),
                                             conv.paddingAttr(), conv.padding_endAttr(),
                                             conv.dilationAttr()),
                 loc);
    if (wants(conv.weight()))
      accumulate(conv.weight(),
                 b.create<Conv2DGradWeightOp>(loc, typeOf(conv.weight()), dy,
                                              mapped(conv.input()), conv.strideAttr(),
                                              conv.paddingAttr(), conv.padding_endAttr(),
                                              conv.dilationAttr()),
                 loc);
    if (wants(conv.bias()))
      accumulate(conv.bias(),
                 b.create<Conv2DGradBiasOp>(loc, typeOf(conv.bias()), dy), loc);
  } else if (auto bn = dyn_cast<BatchNormOp>(op)) {
    auto [mean, var] = batchStats.lookup(op);
    Type cType = mean.getType();
    auto grad = b.create<BatchNormGradOp>(
        loc, TypeRange{typeOf(bn.input()), cType, cType}, dy, mapped(bn.input()),
        mean, var, bn.weight() ? mapped(bn.weight()) : Value(), bn.epsAttr());
    accumulate(bn.input(), grad.input_grad(), loc);
    if (bn.isAffine()) {
      accumulate(bn.weight(), grad.weight_grad(), loc);
      accumulate(bn.bias(), grad.bias_grad(), loc);
    }
  } else if (isa<ReluOp>(op)) {
    accumulate(op->getOperand(0),
               b.create<ReluGradOp>(loc, dy.getType(), dy, mapped(op->getResult(0))), loc);
  } else if (isa<SigmoidOp>(op)) {
    accumulate(op->getOperand(0),
               b.create<SigmoidGradOp>(loc, dy.getType(), dy, mapped(op->getResult(0))), loc);
  } else if (isa<TanhOp>(op)) {
    accumulate(op->getOperand(0),
               b.create<TanhGradOp>(loc, dy.getType(), dy, mapped(op->getResult(0))), loc);
  } else if (auto add = dyn_cast<AddOp>(op)) {
    // The gradient goes to both operands (twice to x in x + x).
    accumulate(add.lhs(), dy, loc);
    accumulate(add.rhs(), dy, loc);
  } else if (auto dropout = dyn_cast<DropoutOp>(op)) {
    accumulate(dropout.input(), b.create<MulOp>(loc, dy.getType(), dy, masks.lookup(op)),
               loc);
  } else if (auto flatten = dyn_cast<FlattenOp>(op)) {
    accumulate(flatten.input(),
               b.create<ReshapeOp>(loc, typeOf(flatten.input()), dy), loc);
  } else if (auto pool = dyn_cast<AvgPool2DOp>(op)) {
    accumulate(pool.input(),
               b.create<AvgPool2DGradOp>(loc, typeOf(pool.input()), dy,
                                         pool.kernel_sizeAttr(), pool.strideAttr(),
                                         pool.paddingAttr(), pool.padding_endAttr(),
                                         pool.ceil_modeAttr(), pool.count_include_padAttr()),
               loc);
  } else if (auto pool = dyn_cast<MaxPool2DOp>(op)) {
    accumulate(pool.input(),
               b.create<MaxPool2DGradOp>(loc, typeOf(pool.input()), dy,
                                         mapped(pool.input()), pool.kernel_sizeAttr(),
                                         pool.strideAttr(), pool.paddingAttr(),
                                         pool.padding_endAttr(), pool.dilationAttr(),
                                         pool.ceil_modeAttr()),
               loc);
  } else if (auto softmax = dyn_cast<SoftmaxOp>(op)) {
    accumulate(softmax.input(),
               b.create<SoftmaxGradOp>(loc, dy.getType(), dy, mapped(softmax.output()),
                                       softmax.axisAttr()),
               loc);
  } else if (auto logSoftmax = dyn_cast<LogSoftmaxOp>(op)) {
    accumulate(logSoftmax.input(),
               b.create<LogSoftmaxGradOp>(loc, dy.getType(), dy, mapped(logSoftmax.output()),
                                          logSoftmax.axisAttr()),
               loc);
  }
}

void setAttrOn(FuncOp func, bool result, unsigned index, StringRef name,
               Attribute value) {
  if (result)
    func.setResultAttr(index, name, value);
  else
    func.setArgAttr(index, name, value);
}

void Autodiff::buildTrainStep(ModuleOp module, FuncOp forward,
                              const Optimizer &opt, int64_t seed) {
  OpBuilder b(module.getContext());
  Block &body = forward.front();
  Operation *terminator = body.getTerminator();
  Value logits = terminator->getOperand(0);

  // The ops the result depends on; a parameter one of them uses gets a
  // gradient (and optimizer state).
  llvm::DenseSet<Operation *> live;
  SmallVector<Operation *> work;
  if (Operation *def = logits.getDefiningOp())
    work.push_back(def);
  while (!work.empty()) {
    Operation *op = work.pop_back_val();
    if (!live.insert(op).second)
      continue;
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp())
        work.push_back(def);
  }

  // The signature: batch, state in state_dict order, optimizer state, step.
  Value input = body.getArgument(0);
  auto inputType = input.getType().cast<RankedTensorType>();
  auto labelsType = RankedTensorType::get({inputType.getDimSize(0)}, b.getI64Type());
  auto stepType = RankedTensorType::get({}, b.getI64Type());
  SmallVector<Operation *> stateOps;
  SmallVector<ParamOp> trained;
  for (Operation &op : body) {
    if (!isa<ParamOp, BufferOp>(op))
      continue;
    stateOps.push_back(&op);
    if (auto param = dyn_cast<ParamOp>(op))
      if (llvm::any_of(param->getUsers(), [&](Operation *user) { return live.count(user); }))
        trained.push_back(param);
  }
  SmallVector<StateSlot> slots;
  for (Operation *op : stateOps)
    slots.push_back({op->getAttrOfType<StringAttr>("name").getValue().str(),
                     op->getResult(0).getType()});
  SmallVector<StringRef, 2> suffixes = opt.stateSuffixes();
  for (ParamOp param : trained)
    for (StringRef suffix : suffixes)
      slots.push_back({(param.name() + "." + suffix).str(), param.getType()});
  slots.push_back({"step", stepType});

  SmallVector<Type> argTypes = {inputType, labelsType}, resultTypes;
  resultTypes.push_back(RankedTensorType::get({}, b.getF32Type()));
  resultTypes.push_back(stepType);
  for (const StateSlot &slot : slots) {
    argTypes.push_back(slot.type);
    resultTypes.push_back(slot.type);
  }
  b.setInsertionPointAfter(forward);
  auto step = b.create<FuncOp>(forward.getLoc(), kTrainStepFunc,
                               b.getFunctionType(argTypes, resultTypes));
  for (unsigned i = 0; i < 2; ++i) {
    StringAttr role = b.getStringAttr(i == 0 ? "input" : "labels");
    step.setArgAttr(i, kBatchAttr, role);
  }
  step.setResultAttr(0, kMetricAttr, b.getStringAttr("loss"));
  step.setResultAttr(1, kMetricAttr, b.getStringAttr("correct"));
  for (unsigned i = 0; i < slots.size(); ++i)
    for (bool result : {false, true})
      setAttrOn(step, result, i + 2, kStateKeyAttr, b.getStringAttr(slots[i].key));

  Block *entry = step.addEntryBlock();
  b.setInsertionPointToStart(entry);
  StepBuilder sb(b, opt, seed);
  sb.map.map(input, entry->getArgument(0));
  Value labels = entry->getArgument(1);
  llvm::StringMap<Value> stateArgs;
  for (unsigned i = 0; i < slots.size(); ++i)
    stateArgs[slots[i].key] = entry->getArgument(i + 2);
  for (unsigned i = 0; i < stateOps.size(); ++i) {
    sb.map.map(stateOps[i]->getResult(0), entry->getArgument(2 + i));
    if (isa<ParamOp>(stateOps[i]))
      sb.needsGrad.insert(stateOps[i]->getResult(0));
  }
  Value oldStep = stateArgs["step"];
  sb.step = b.create<IncrementOp>(forward.getLoc(), stepType, oldStep);

  // Forward in train mode, then the loss.
  SmallVector<Operation *> forwardOps;
  for (Operation &op : body)
    if (!isa<ParamOp, BufferOp>(op) && &op != terminator)
      forwardOps.push_back(&op);
  for (Operation *op : forwardOps)
    sb.forwardOp(op);
  Location lossLoc = terminator->getLoc();
  Value trainLogits = sb.map.lookup(logits);
  auto loss = b.create<CrossEntropyOp>(lossLoc, TypeRange{resultTypes[0], stepType},
                                       trainLogits, labels);

  // Backward: from d(loss)/d(logits), each op in reverse.
  if (sb.needsGrad.count(logits))
    sb.seedGradient(logits, b.create<CrossEntropyGradOp>(
                                lossLoc, trainLogits.getType(), trainLogits, labels));
  for (Operation *op : llvm::reverse(forwardOps))
    if (live.count(op))
      sb.backwardOp(op);

  // The optimizer update, one op per parameter, in state_dict order.
  llvm::DenseMap<Value, Value> newValues;
  for (ParamOp param : trained) {
    Value p = sb.map.lookup(param.getResult());
    Value g = sb.gradientOf(param.getResult());
    Location loc = param.getLoc();
    std::string key = param.name().str();
    if (opt.name == "sgd") {
      Value buffer = opt.momentum > 0 ? stateArgs[key + ".momentum_buffer"] : Value();
      auto update = b.create<SGDUpdateOp>(
          loc, p.getType(), buffer ? p.getType() : Type(), p, g, buffer, sb.step,
          b.getF64FloatAttr(opt.lr), b.getF64FloatAttr(opt.momentum),
          b.getF64FloatAttr(opt.dampening), b.getF64FloatAttr(opt.weightDecay),
          b.getBoolAttr(opt.nesterov));
      newValues[p] = update.new_param();
      if (buffer)
        newValues[buffer] = update.new_momentum_buffer();
      continue;
    }
    Value m = stateArgs[key + ".exp_avg"], v = stateArgs[key + ".exp_avg_sq"];
    SmallVector<Type, 3> types(3, p.getType());
    Operation *update =
        opt.name == "adam"
            ? b.create<AdamUpdateOp>(loc, types, p, g, m, v, sb.step,
                                     b.getF64FloatAttr(opt.lr), b.getF64FloatAttr(opt.beta1),
                                     b.getF64FloatAttr(opt.beta2), b.getF64FloatAttr(opt.eps),
                                     b.getF64FloatAttr(opt.weightDecay))
                  .getOperation()
            : b.create<AdamWUpdateOp>(loc, types, p, g, m, v, sb.step,
                                      b.getF64FloatAttr(opt.lr), b.getF64FloatAttr(opt.beta1),
                                      b.getF64FloatAttr(opt.beta2), b.getF64FloatAttr(opt.eps),
                                      b.getF64FloatAttr(opt.weightDecay))
                  .getOperation();
    newValues[p] = update->getResult(0);
    newValues[m] = update->getResult(1);
    newValues[v] = update->getResult(2);
  }
  for (auto [state, value] : sb.newState)
    newValues[sb.map.lookup(state)] = value;
  newValues[oldStep] = sb.step;

  SmallVector<Value> results = {loss.loss(), loss.correct()};
  for (unsigned i = 0; i < slots.size(); ++i) {
    Value arg = entry->getArgument(i + 2);
    Value updated = newValues.lookup(arg);
    results.push_back(updated ? updated : arg);
  }
  b.create<ReturnOp>(lossLoc, results);
}

void Autodiff::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<FuncOp>("forward");
  if (!forward || forward.isExternal()) {
    module.emitError("nn-autodiff needs a function @forward");
    return signalPassFailure();
  }
  if (module.lookupSymbol(kTrainStepFunc)) {
    module.emitError("nn-autodiff: the module already has @train_step");
    return signalPassFailure();
  }
  int64_t dropoutSeed = 0;
  FailureOr<Optimizer> opt = readTrainConfig(module, dropoutSeed);
  if (failed(opt) || failed(checkForward(forward)))
    return signalPassFailure();
  buildTrainStep(module, forward, *opt, dropoutSeed);
}

} // namespace

int64_t trainingSeed(ModuleOp module, int64_t override) {
  if (override >= 0)
    return override;
  auto train = module->getAttrOfType<DictionaryAttr>("kiln.train");
  return train ? static_cast<int64_t>(number(train, "seed", 0)) : 0;
}

std::unique_ptr<Pass> createAutodiffPass() { return std::make_unique<Autodiff>(); }

std::unique_ptr<Pass> createAutodiffPass(const AutodiffOptions &options) {
  return std::make_unique<Autodiff>(options);
}

} // namespace kiln::nn

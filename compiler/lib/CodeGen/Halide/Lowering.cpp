//===- Lowering.cpp - nn graph to one Halide pipeline ---------------------===//
//
// Tensors become Halide Funcs with the dimensions reversed: a [N, C, H, W]
// tensor is f(w, h, c, n), innermost first, as Halide (and memory) see it.
// Every weight goes one way: the state_dict tensor (or a BatchNorm fold of
// them) is a Func, and a layout Func over it gives the layout the schedule
// wants (panels of the target's vector width for linear layers). With
// weights known at build time (embedded), the layouts are realized then and
// AOT compilation embeds the resulting Buffers as constant data; with
// external weights they are the outputs of a second pipeline (the load
// pipeline) that the program runs when it loads a checkpoint, and inputs of
// the inference pipeline.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"

#include "TrainLowering.h"

#include "kiln/Dialect/NN/IR/BatchNormFold.h"
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Import/Import.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <map>
#include <set>

using namespace mlir;

namespace kiln::codegen {

namespace {

/// A tensor as Halide sees it.
struct Tensor {
  Halide::Func func;
  std::vector<int64_t> shape; // tensor order; shape[0] is the batch
  /// Which of func's values, for a Func of several (EntryTensor::component).
  int component = -1;
};

std::vector<Halide::Var> makeVars(size_t rank) {
  std::vector<Halide::Var> vars;
  for (size_t i = 0; i < rank; ++i)
    vars.emplace_back("d" + std::to_string(i));
  return vars;
}

std::vector<Halide::Expr> toExprs(const std::vector<Halide::Var> &vars) {
  return std::vector<Halide::Expr>(vars.begin(), vars.end());
}

std::vector<int64_t> shapeOf(Value value) {
  auto shape = value.getType().cast<RankedTensorType>().getShape();
  return std::vector<int64_t>(shape.begin(), shape.end());
}

int64_t roundUp(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

/// ln(FLT_MAX): exp of anything larger overflows to +inf in float.
constexpr float kLogFloatMax = 88.7228394f;

// Activations with PyTorch's results at the edges. Vector max instructions
// drop a NaN operand (maxps returns its second operand), so relu selects
// explicitly: relu(NaN) = NaN, as torch.relu. Halide's float exp reduces
// its argument with a 32-bit integer (wrong past about ±1.5e9: sigmoid of
// -1e9 came out 1), so sigmoid's exp gets a clamped argument and is exactly
// 0 where torch's exp(-x) overflows to inf (x < -88.72), exactly 1 where
// 1 + exp(-x) rounds to 1, NaN for NaN. tanh is libm's tanhf (exact at the
// edges).
//
// NaN is tested on the bits: Halide compiles float arithmetic with LLVM's
// no-NaNs flag, so an is_nan() of a fused layer's accumulator (the FMA's
// result) is folded to false (relu(linear(x)) gave 0 where PyTorch gives
// NaN for 0 · Inf); integer operations carry no such assumption.
} // namespace

Halide::Expr isNan(Halide::Expr x) {
  Halide::Expr bits = Halide::reinterpret(Halide::Int(32), x) & 0x7fffffff;
  return bits > 0x7f800000;
}

Halide::Expr relu(Halide::Expr x) {
  return Halide::select(x > 0.0f || isNan(x), x, 0.0f);
}

Halide::Expr sigmoid(Halide::Expr x) {
  Halide::Expr t = Halide::clamp(-x, -104.0f, kLogFloatMax);
  Halide::Expr y = 1.0f / (1.0f + Halide::exp(t));
  y = Halide::select(-x > kLogFloatMax, 0.0f, y);
  return Halide::select(isNan(x), x, y);
}

// Halide's float exp is wrong far below its range (the 32-bit argument
// reduction, as for sigmoid above), so arguments below −104, where float's
// exp is 0 (its smallest denormal is e^−103.3), give 0 without asking it;
// −Inf gives 0 and NaN stays NaN, tested on the bits.
Halide::Expr expNonPositive(Halide::Expr t) {
  Halide::Expr e = Halide::select(t < -104.0f, 0.0f, Halide::exp(Halide::max(t, -104.0f)));
  return Halide::select(isNan(t), t, e);
}

bool readsOutside(const nn::WindowSpec &window, int64_t kh, int64_t kw,
                  const std::vector<int64_t> &in, const std::vector<int64_t> &out) {
  int64_t kernel[2] = {kh, kw};
  for (int d = 0; d < 2; ++d) {
    int64_t lastTap = (out[2 + d] - 1) * window.stride[d] - window.padBegin(d) +
                      (kernel[d] - 1) * window.dilationOf(d);
    if (window.padBegin(d) > 0 || lastTap >= in[2 + d])
      return true;
  }
  return false;
}

// As PyTorch's CPU kernel: the window clipped to the padded extent
// (count_include_pad), or its in-bounds part.
Halide::Expr poolDivisorExtent(Halide::Expr o, const nn::WindowSpec &window, int d,
                               int64_t kernel, int64_t size, bool countIncludePad) {
  Halide::Expr start = o * static_cast<int>(window.stride[d]) -
                       static_cast<int>(window.padBegin(d));
  Halide::Expr end = Halide::min(start + static_cast<int>(kernel),
                                 static_cast<int>(size + window.padEnd(d)));
  if (countIncludePad)
    return end - start;
  return Halide::max(Halide::min(end, static_cast<int>(size)) - Halide::max(start, 0), 0);
}

namespace {

/// max with torch.max_pool2d's NaN rule: a NaN wins.
Halide::Expr maxPropagatingNan(Halide::Expr current, Halide::Expr tap) {
  return Halide::select(tap > current || isNan(tap), tap, current);
}

Halide::Expr applyActivation(Halide::Expr value, Optional<StringRef> activation) {
  if (!activation)
    return value;
  if (*activation == "relu")
    return relu(value);
  if (*activation == "sigmoid")
    return sigmoid(value);
  return Halide::tanh(value);
}

Optional<StringRef> activationOf(Operation *op) {
  if (auto attr = op->getAttrOfType<StringAttr>("activation"))
    return attr.getValue();
  return llvm::None;
}

/// A bound weight tensor as a Func (for the external-weights path, where
/// layouts are Funcs of Funcs).
Halide::Func wrap(const Halide::Buffer<float> &buffer) {
  std::vector<Halide::Var> vars = makeVars(buffer.dimensions());
  Halide::Func f(buffer.name() + "_data");
  f(vars) = buffer(toExprs(vars));
  return f;
}

/// Dense strides and static extents (Halide order) for a weight input.
void constrainWeight(Halide::ImageParam &param, const std::vector<int> &extents) {
  int stride = 1;
  for (size_t d = 0; d < extents.size(); ++d) {
    param.dim(d).set_bounds(0, extents[d]).set_stride(stride);
    stride *= extents[d];
  }
  param.set_host_alignment(64);
}

/// Halide indexes buffers with 32-bit extents and offsets: every tensor
/// (and weight layout) of the generated code must have fewer elements.
constexpr int64_t kMaxElements = INT32_MAX;

/// Elements of one sample (all dimensions but a dynamic batch), or -1 past
/// kMaxElements.
int64_t elementsOf(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0)
      continue;
    if (extent != 0 && count > kMaxElements / extent)
      return -1;
    count *= extent;
  }
  return count;
}

/// An error at `op` if one of its tensors is too large for the generated
/// code to index.
LogicalResult checkIndexable(Operation *op) {
  auto check = [&](Value value) -> LogicalResult {
    auto type = value.getType().dyn_cast<RankedTensorType>();
    if (!type || elementsOf(type.getShape()) >= 0)
      return success();
    Operation *def = value.getDefiningOp();
    std::string what = "input";
    if (def && isa<nn::ParamOp, nn::BufferOp>(def))
      what = "tensor '" + def->getAttrOfType<StringAttr>("name").getValue().str() + "'";
    else if (value.getDefiningOp() == op)
      what = "output";
    std::string shape;
    llvm::raw_string_ostream os(shape);
    llvm::interleaveComma(type.getShape(), os, [&](int64_t d) {
      if (d < 0)
        os << "N";
      else
        os << d;
    });
    return op->emitError() << nn::describeLayer(op) << " is too large for the generated code: its "
                           << what << " [" << os.str() << "] has more than " << kMaxElements
                           << " elements" << (type.hasStaticShape() ? "" : " per sample")
                           << ", the most Halide's 32-bit buffer indexing allows";
  };
  for (Value operand : op->getOperands())
    if (failed(check(operand)))
      return failure();
  for (Value result : op->getResults())
    if (failed(check(result)))
      return failure();
  return success();
}

class Builder {
public:
  Builder(LoweredModel &model, const LoweringOptions &options)
      : model(model), options(options), target(options.target) {}

  LogicalResult run(FuncOp function);

private:
  LoweredStage &stage() { return model.stages.back(); }
  /// Ends the current stage after `value` (its one output) and starts the
  /// next, which reads it from a buffer.
  void cutStage(Value value);
  /// Embedded weights: computes the current stage's layouts now, into the
  /// Buffers its pipeline reads (one JIT-compiled pipeline for all of them).
  /// Per stage: one pipeline for every layout of a 100-layer MLP made its
  /// build take 96.9 s instead of 27.6 (bench/build-time.sh).
  void realizeLayouts();
  FailureOr<Tensor> build(Operation *op);
  /// A training-step op (TrainLowering.cpp): a Func per result.
  LogicalResult buildTrain(Operation *op);
  /// `func`, where a training-step op of `stage` computes it whole and no
  /// output is it yet: it can be the stage's output itself.
  Halide::Func ownedResult(const LoweredStage &stage, Halide::Func func);
  /// Ends a training step's gradients stage and builds `updates` in an
  /// update stage (LoweredStage) of their own.
  LogicalResult buildUpdateStage(FuncOp function, ArrayRef<Operation *> updates);
  /// In the update stage: `value`, computed by the gradients stage, as one
  /// of its outputs and an input of the update stage (once per value).
  Halide::Func linkToUpdate(Value value);
  /// The Funcs of `function`'s results, each an output of the stage that
  /// computes it (the update stage's: the state and what it passes on).
  LogicalResult buildResults(FuncOp function, ReturnOp ret, bool split);
  FailureOr<Halide::Func> weightTensor(Operation *user, Value value);
  FailureOr<Halide::Func> foldedTensor(nn::FoldBatchNormOp fold, unsigned result);
  Halide::Func packed(Operation *op, StringRef role, Halide::Func layout,
                      std::vector<int> extents);
  /// Whether `layout` reads an argument of the entry point.
  bool dependsOnArguments(Halide::Func layout);
  std::string nameFor(Operation *op, StringRef role);
  /// The stage's hyper-parameter `name` (TrainContext::hyperParameter).
  Halide::Expr hyperParameter(Operation *op, StringRef name, double value);
  std::string uniqueName(std::string name);
  Tensor record(Operation *op, LayerFuncs::Kind kind, Halide::Func out,
                Halide::Func reduction = {}, int64_t reductionSize = 0);

  FailureOr<Tensor> linear(nn::LinearOp op);
  FailureOr<Tensor> conv2d(nn::Conv2DOp op);
  FailureOr<Tensor> batchNorm(nn::BatchNormOp op);
  FailureOr<Tensor> scaleShift(Operation *op, Value input, Halide::Func scale,
                               Halide::Func shift);
  FailureOr<Tensor> pool(Operation *op, bool isMax);
  FailureOr<Tensor> softmax(Operation *op, int64_t axis, bool isLog);
  FailureOr<Tensor> flatten(nn::FlattenOp op);
  FailureOr<Tensor> elementwise(Operation *op);

  const Tensor &valueOf(Value value) { return values.find(value)->second; }
  /// A Func of the tensor's value alone (of one of a tuple's values).
  Halide::Func valueFunc(const Tensor &tensor);
  /// The Func of `op`'s operand `value`: a value lowered before, or a
  /// constant or weight (an importer's per-channel constants), read as
  /// layers read weights; undefined (the error reported) if neither.
  Halide::Func operandFunc(Operation *op, Value value) {
    if (updateStage && fromGradients(value))
      return linkToUpdate(value);
    if (updateStage)
      takeArgument(value);
    auto lowered = values.find(value);
    if (lowered != values.end())
      return valueFunc(lowered->second);
    FailureOr<Halide::Func> tensor = weightTensor(op, value);
    return succeeded(tensor) ? *tensor : Halide::Func();
  }

  LoweredModel &model;
  const LoweringOptions &options;
  const TargetInfo &target;
  llvm::DenseMap<Value, Tensor> values;
  llvm::DenseMap<Value, Halide::Func> weightTensors;
  /// Embedded weights: the layouts to realize at build time, and where.
  std::vector<Halide::Func> layouts;
  std::vector<Halide::Buffer<>> layoutBuffers;
  llvm::StringMap<unsigned> nameCounts;
  /// The Funcs of entry-point arguments used as weights.
  std::set<std::string> argumentFuncs;
  /// A training step's update stage is being built; the gradients stage
  /// (its index), and its Func of each value the update stage reads.
  bool updateStage = false;
  size_t gradientsStage = 0;
  llvm::DenseMap<Value, Halide::Func> linked;
  /// Whether the update stage reads `value` from the gradients stage.
  bool fromGradients(Value value);
  /// In the update stage: where `value` is an argument of the entry point,
  /// makes it an input of the stage (once), which reads only those it
  /// needs: its updates' state is theirs already (TrainContext::inPlace).
  void takeArgument(Value value);
  /// Checks that each of `op`'s results that the update stage stores in
  /// place (inPlaceState) is returned as the state it replaces: an entry
  /// point argument whose key the result has.
  LogicalResult checkInPlace(Operation *op, ReturnOp ret);
};

std::string Builder::nameFor(Operation *op, StringRef role) {
  std::string base = nn::layerNameOf(op);
  if (base.empty())
    base = op->getName().stripDialect().str();
  return uniqueName(base + (role.empty() ? "" : "_" + role.str()));
}

std::string Builder::uniqueName(std::string name) {
  for (char &c : name)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
  unsigned count = nameCounts[name]++;
  return count ? name + "_" + std::to_string(count) : name;
}

Tensor Builder::record(Operation *op, LayerFuncs::Kind kind, Halide::Func out,
                       Halide::Func reduction, int64_t reductionSize) {
  std::vector<int64_t> shape = shapeOf(op->getResult(0));
  stage().layers.push_back(
      LayerFuncs{kind, out.name(), out, reduction, shape, reductionSize});
  return Tensor{out, shape};
}

/// `value` (a weight) as a Func in Halide order: a bound tensor's values, a
/// state_dict tensor the load pipeline reads (external weights), an
/// argument of the entry point (state passed in), or a BatchNorm fold of
/// them.
FailureOr<Halide::Func> Builder::weightTensor(Operation *user, Value value) {
  auto cached = weightTensors.find(value);
  if (cached != weightTensors.end())
    return cached->second;
  std::vector<int64_t> shape = shapeOf(value);
  std::vector<Halide::Var> vars = makeVars(shape.size());
  Operation *def = value.getDefiningOp();
  Halide::Func tensor;
  if (DenseElementsAttr attr = nn::getBoundValue(value)) {
    std::vector<int> extents(shape.rbegin(), shape.rend());
    Halide::Buffer<float> buffer(extents, uniqueName("constant"));
    auto it = attr.getValues<float>().begin();
    // C order: the last tensor dimension (Halide's first) fastest.
    buffer.for_each_element([&](const int *pos) {
      int64_t flat = 0;
      for (size_t i = 0; i < shape.size(); ++i)
        flat = flat * shape[i] + pos[shape.size() - 1 - i];
      buffer(pos) = *(it + flat);
    });
    tensor = wrap(buffer);
  } else if (isa_and_nonnull<nn::ParamOp, nn::BufferOp>(def)) {
    StringRef key = def->getAttrOfType<StringAttr>("name").getValue();
    if (!options.externalWeights)
      return LogicalResult(user->emitError()
                           << "parameter '" << key
                           << "' has no value: bind weights (--weights) before code generation");
    Halide::ImageParam param(Halide::Float(32), static_cast<int>(shape.size()),
                             uniqueName("state_" + key.str()));
    std::vector<int> extents(shape.rbegin(), shape.rend());
    constrainWeight(param, extents);
    stage().stateTensors.push_back(StateTensor{key.str(), shape, param});
    tensor = Halide::Func(param.name() + "_tensor");
    tensor(vars) = param(toExprs(vars));
  } else if (value.isa<BlockArgument>() && values.count(value)) {
    // State passed into the entry point (a training step's parameters): the
    // argument's buffer, read as the layout Funcs read any weight.
    tensor = values.find(value)->second.func;
    argumentFuncs.insert(tensor.name());
  } else if (auto fold = dyn_cast_or_null<nn::FoldBatchNormOp>(def)) {
    FailureOr<Halide::Func> folded =
        foldedTensor(fold, value.cast<OpResult>().getResultNumber());
    if (failed(folded))
      return failure();
    tensor = *folded;
  } else {
    return LogicalResult(user->emitError("code generation cannot compute this weight"));
  }
  weightTensors[value] = tensor;
  return tensor;
}

// nn.fold_batch_norm: the formulas of BatchNormFold.h, in double, in the
// order nn-fold-batchnorm computes them on constants, under strict_float:
// external and embedded weights give the same bits.
FailureOr<Halide::Func> Builder::foldedTensor(nn::FoldBatchNormOp fold, unsigned result) {
  auto optional = [&](Value value) -> FailureOr<Halide::Func> {
    if (!value)
      return Halide::Func();
    return weightTensor(fold, value);
  };
  FailureOr<Halide::Func> weight = optional(fold.weight()), bias = optional(fold.bias()),
                          mean = optional(fold.running_mean()),
                          var = optional(fold.running_var()),
                          gamma = optional(fold.gamma()), beta = optional(fold.beta());
  for (auto *f : {&weight, &bias, &mean, &var, &gamma, &beta})
    if (failed(*f))
      return failure();
  auto f64 = [](Halide::Expr e) { return Halide::cast<double>(e); };
  Halide::Expr eps(fold.eps().convertToDouble());
  auto scale = [&](Halide::Expr c) {
    Halide::Expr g = gamma->defined() ? f64((*gamma)(c)) : Halide::Expr(1.0);
    return nn::fold::scale(g, f64((*var)(c)), eps);
  };
  auto shift = [&](Halide::Expr c) {
    Halide::Expr b = beta->defined() ? f64((*beta)(c)) : Halide::Expr(0.0);
    return nn::fold::shift(b, f64((*mean)(c)), scale(c));
  };
  Halide::Func out(uniqueName("folded"));
  if (result == 1) {
    Halide::Var c("c");
    Halide::Expr b = bias->defined() ? f64((*bias)(c)) : Halide::Expr(0.0);
    out(c) = Halide::strict_float(Halide::cast<float>(nn::fold::bias(b, scale(c), shift(c))));
  } else if (weight->defined()) {
    std::vector<Halide::Var> vars = makeVars(shapeOf(fold.weight()).size());
    out(vars) = Halide::strict_float(Halide::cast<float>(
        nn::fold::weight(f64((*weight)(toExprs(vars))), scale(vars.back()))));
  } else {
    Halide::Var c("c");
    out(c) = Halide::strict_float(Halide::cast<float>(scale(c)));
  }
  return out;
}

/// The weight `layout` computes (extents in Halide order), as the pipeline
/// reads it: with external weights an input of the pipeline that the load
/// pipeline fills; otherwise a Buffer realizeLayouts() fills at build time,
/// embedded in the object.
Halide::Func Builder::packed(Operation *op, StringRef role, Halide::Func layout,
                             std::vector<int> extents) {
  std::string name = nameFor(op, role);
  int64_t count = 1;
  for (int extent : extents)
    count *= extent;
  model.weightBytes += count * static_cast<int64_t>(sizeof(float));
  std::vector<Halide::Var> vars = makeVars(extents.size());
  Halide::Func f(name + "_in");
  if (dependsOnArguments(layout)) {
    // State passed into the entry point changes from call to call (a
    // training step's parameters): its layout is computed in the pipeline.
    model.weightBytes -= count * static_cast<int64_t>(sizeof(float));
    stage().layers.push_back(LayerFuncs{LayerFuncs::Kind::WeightLayout, layout.name(), layout,
                                      {}, std::vector<int64_t>(extents.rbegin(), extents.rend()),
                                      0});
    f(vars) = layout(toExprs(vars));
  } else if (options.externalWeights) {
    Halide::ImageParam param(Halide::Float(32), static_cast<int>(extents.size()), name);
    constrainWeight(param, extents);
    stage().packedWeights.push_back(PackedWeight{extents, param, layout});
    f(vars) = param(toExprs(vars));
  } else {
    Halide::Buffer<float> buffer(extents, name);
    layouts.push_back(layout);
    layoutBuffers.push_back(buffer);
    f(vars) = buffer(toExprs(vars));
  }
  return f;
}

bool Builder::dependsOnArguments(Halide::Func layout) {
  std::map<std::string, Halide::Internal::Function> calls =
      Halide::Internal::find_transitive_calls(layout.function());
  return llvm::any_of(argumentFuncs, [&](const std::string &name) { return calls.count(name); });
}

void Builder::realizeLayouts() {
  if (layouts.empty())
    return;
  for (Halide::Func &layout : layouts)
    layout.compute_root();
  Halide::Pipeline(layouts).realize(Halide::Realization(layoutBuffers), jitTarget());
  layouts.clear();
  layoutBuffers.clear();
}

void Builder::cutStage(Value value) {
  const Tensor &tensor = valueOf(value);
  std::string name = "stage" + std::to_string(model.stages.size());
  EntryTensor in{name + "_in", tensor.shape, true,
                 Halide::ImageParam(Halide::Float(32), static_cast<int>(tensor.shape.size()),
                                    name + "_in"),
                 Halide::Func()};
  // The layer's own Func is the stage's output: no copy between stages.
  stage().outputs.push_back(EntryTensor{name, tensor.shape, true, in.param, tensor.func});
  stage().results.push_back(-1);
  realizeLayouts();
  model.stages.emplace_back();
  std::vector<Halide::Var> vars = makeVars(tensor.shape.size());
  Halide::Func read(name + "_tensor");
  read(vars) = in.param(toExprs(vars));
  stage().inputs.push_back(in);
  values[value] = Tensor{read, tensor.shape};
  // Each stage reads (and with external weights loads) its own weights.
  weightTensors.clear();
}

Halide::Func Builder::ownedResult(const LoweredStage &stage, Halide::Func func) {
  // Training-step Funcs the schedule computes whole (Schedule.cpp).
  bool owned = llvm::any_of(stage.layers, [&](const LayerFuncs &layer) {
    bool whole = layer.kind == LayerFuncs::Kind::Train ||
                 layer.kind == LayerFuncs::Kind::MatrixProduct ||
                 layer.kind == LayerFuncs::Kind::ConvWeightGrad;
    return whole && layer.output.function().same_as(func.function());
  });
  bool taken = llvm::any_of(stage.outputs,
                            [&](const EntryTensor &out) { return out.func.defined() && out.func.function().same_as(func.function()); });
  return owned && !taken ? func : Halide::Func();
}

Halide::Expr Builder::hyperParameter(Operation *op, StringRef name, double value) {
  for (const HyperParameter &hyper : stage().hyperParameters)
    if (hyper.name == name) {
      // One step has one optimizer: every update op has the same values.
      if (hyper.value != value && !(std::isnan(hyper.value) && std::isnan(value))) {
        op->emitError() << "hyper-parameter " << name << " is " << value
                        << " here but " << hyper.value
                        << " in an earlier update of the same step";
        return Halide::Expr();
      }
      return hyper.param;
    }
  HyperParameter hyper{name.str(), Halide::Param<double>("hyper_" + name.str(), value), value};
  stage().hyperParameters.push_back(hyper);
  return hyper.param;
}

LogicalResult Builder::buildTrain(Operation *op) {
  stage().training = true;
  TrainContext context{[&, op](Value value) { return operandFunc(op, value); },
                       [&, op](StringRef role) { return nameFor(op, role); },
                       [&, op](StringRef name, double value) {
                         return hyperParameter(op, name, value);
                       },
                       stage().batch(), &stage().layers, target.lanes, updateStage};
  FailureOr<std::vector<Halide::Func>> funcs = buildTrainOp(op, context);
  if (failed(funcs))
    return failure();
  // A Func of several values gives them to the results in order.
  for (unsigned i = 0; i < op->getNumResults(); ++i) {
    Halide::Func func = (*funcs)[i];
    int component = -1;
    if (func.outputs() > 1)
      component = static_cast<int>(std::count_if(funcs->begin(), funcs->begin() + i,
                                                 [&](const Halide::Func &f) {
                                                   return f.function().same_as(func.function());
                                                 }));
    values[op->getResult(i)] = Tensor{func, shapeOf(op->getResult(i)), component};
  }
  return success();
}

Halide::Func Builder::valueFunc(const Tensor &tensor) {
  if (tensor.component < 0)
    return tensor.func;
  std::vector<Halide::Var> vars = makeVars(tensor.shape.size());
  Halide::Func value(uniqueName(tensor.func.name() + "_" + std::to_string(tensor.component)));
  value(vars) = tensor.func(vars)[tensor.component];
  return value;
}

/// The Halide type of a tensor type's elements: f32, or i64 (labels and
/// counters).
FailureOr<Halide::Type> elementTypeOf(FuncOp function, Type type) {
  Type element = type.cast<ShapedType>().getElementType();
  if (element.isF32())
    return Halide::Float(32);
  if (element.isInteger(64))
    return Halide::Int(64);
  return LogicalResult(function.emitError() << "code generation supports f32 and i64 tensors, not "
                                            << type);
}

/// The key an argument or result's attributes give it (EntryTensor::key).
std::string keyOf(DictionaryAttr attrs) {
  if (!attrs)
    return "";
  for (StringRef name : {"nn.state_key", "nn.metric", "nn.batch"})
    if (auto key = attrs.getAs<StringAttr>(name))
      return key.getValue().str();
  return "";
}

/// Whether `op` is one of the layers LoweringOptions::stageLayers counts.
bool isHeavy(Operation &op) { return isa<nn::LinearOp, nn::Conv2DOp>(op); }

/// Whether `op` defines a weight (read through weightTensor), not a layer.
bool isWeight(Operation &op) {
  return isa<nn::ParamOp, nn::BufferOp, arith::ConstantOp, nn::FoldBatchNormOp>(op);
}

LogicalResult Builder::run(FuncOp function) {
  model.entry = function.getName().str();
  model.stages.emplace_back();
  for (BlockArgument argument : function.getArguments()) {
    std::vector<int64_t> shape = shapeOf(argument);
    std::string name = function.getNumArguments() == 1
                           ? "input"
                           : "input" + std::to_string(argument.getArgNumber());
    FailureOr<Halide::Type> type = elementTypeOf(function, argument.getType());
    if (failed(type))
      return failure();
    EntryTensor entry{name, shape, !shape.empty() && shape[0] < 0,
                      Halide::ImageParam(*type, static_cast<int>(shape.size()), name),
                      Halide::Func(), *type, keyOf(function.getArgAttrDict(argument.getArgNumber()))};
    if (elementsOf(shape) < 0)
      return function.emitError() << "argument " << argument.getArgNumber()
                                  << " is too large for the generated code (over 2^31 - 1 "
                                     "elements per sample)";
    std::vector<Halide::Var> vars = makeVars(shape.size());
    Halide::Func tensor(name + "_tensor");
    tensor(vars) = entry.param(toExprs(vars));
    values[argument] = Tensor{tensor, shape};
    stage().inputs.push_back(entry);
  }
  model.inputs = stage().inputs;
  if (model.inputs.empty() || !model.inputs[0].batched)
    return function.emitError("the entry point's first argument must be a batch (tensor<?x...>)");

  // Stages: only an entry point with one argument (no state passed in) and
  // more layers than LoweringOptions::unstagedLayers is cut, before a layer
  // where the tensor it reads is the only one live.
  Block &body = function.getBody().front();
  int heavy = static_cast<int>(llvm::count_if(body, isHeavy));
  bool staged = function.getNumArguments() == 1 && options.stageLayers > 0 &&
                heavy > std::max(options.stageLayers, options.unstagedLayers);
  llvm::DenseMap<Value, Operation *> lastUse;
  for (Operation &op : body)
    for (Value operand : op.getOperands())
      lastUse[operand] = &op;
  llvm::DenseSet<Value> live;
  for (BlockArgument argument : function.getArguments())
    if (lastUse.count(argument))
      live.insert(argument);
  int heavyInStage = 0;
  // A training step's updates wait for the update stage; an increment that
  // the gradients read too (dropout's step) is computed in both.
  std::vector<Operation *> updates;
  for (Operation &op : body)
    if (isUpdateOp(&op))
      updates.push_back(&op);
  auto readByGradients = [](Operation &op) {
    return llvm::any_of(op.getUsers(),
                        [](Operation *user) { return !isUpdateOp(user) && !isa<ReturnOp>(user); });
  };

  for (Operation &op : body) {
    if (isWeight(op) || (isUpdateOp(&op) && !readByGradients(op)))
      continue;
    if (staged && isHeavy(op) && heavyInStage >= options.stageLayers && live.size() == 1 &&
        op.getOperand(0) == *live.begin() && valueOf(*live.begin()).shape[0] < 0) {
      cutStage(*live.begin());
      heavyInStage = 0;
    }
    heavyInStage += isHeavy(op) ? 1 : 0;
    if (auto ret = dyn_cast<ReturnOp>(op)) {
      if (!updates.empty() && failed(buildUpdateStage(function, updates)))
        return failure();
      if (failed(buildResults(function, ret, !updates.empty())))
        return failure();
      realizeLayouts();
      return success();
    }
    if (failed(checkIndexable(&op)))
      return failure();
    if (isTrainOp(&op)) {
      if (failed(buildTrain(&op)))
        return failure();
    } else {
      FailureOr<Tensor> tensor = build(&op);
      if (failed(tensor))
        return failure();
      values[op.getResult(0)] = *tensor;
    }
    for (Value operand : op.getOperands())
      if (lastUse.lookup(operand) == &op)
        live.erase(operand);
    if (lastUse.count(op.getResult(0)))
      live.insert(op.getResult(0));
  }
  return function.emitError("the entry point has no return");
}

LogicalResult Builder::buildUpdateStage(FuncOp function, ArrayRef<Operation *> updates) {
  gradientsStage = model.stages.size() - 1;
  model.stages.emplace_back();
  stage().update = true;
  auto ret = cast<ReturnOp>(function.getBody().front().getTerminator());
  for (Operation *op : updates)
    if (failed(checkInPlace(op, ret)))
      return failure();
  // The batch, for its extent (the running variance's n/(n − 1)).
  stage().inputs.push_back(model.inputs.front());
  // Funcs of its own for the arguments: the gradients stage's are scheduled
  // as part of its pipeline.
  for (BlockArgument argument : function.getArguments()) {
    const EntryTensor &entry = model.inputs[argument.getArgNumber()];
    std::vector<Halide::Var> vars = makeVars(entry.shape.size());
    Halide::Func tensor(uniqueName(entry.name + "_state"));
    tensor(vars) = entry.param(toExprs(vars));
    values[argument] = Tensor{tensor, entry.shape};
  }
  updateStage = true;
  for (Operation *op : updates)
    if (failed(checkIndexable(op)) || failed(buildTrain(op)))
      return failure();
  return success();
}

void Builder::takeArgument(Value value) {
  auto argument = value.dyn_cast<BlockArgument>();
  if (!argument)
    return;
  const EntryTensor &entry = model.inputs[argument.getArgNumber()];
  bool taken = llvm::any_of(stage().inputs, [&](const EntryTensor &in) {
    return in.param.name() == entry.param.name();
  });
  if (!taken)
    stage().inputs.push_back(entry);
}

LogicalResult Builder::checkInPlace(Operation *op, ReturnOp ret) {
  FuncOp function = op->getParentOfType<FuncOp>();
  for (auto [result, state] : inPlaceState(op)) {
    auto argument = state.dyn_cast<BlockArgument>();
    std::string key =
        argument ? keyOf(function.getArgAttrDict(argument.getArgNumber())) : std::string();
    unsigned returned = 0;
    bool sameKey = true;
    for (OpOperand &use : op->getResult(result).getUses()) {
      if (use.getOwner() != ret.getOperation())
        continue;
      ++returned;
      sameKey &= keyOf(function.getResultAttrDict(use.getOperandNumber())) == key;
    }
    if (!argument || key.empty() || returned != 1 || !sameKey)
      return op->emitError() << "internal error: result " << result
                             << " of the update is not returned once as the state it replaces, "
                                "which the update stage stores it over";
  }
  return success();
}

bool Builder::fromGradients(Value value) {
  Operation *def = value.getDefiningOp();
  return def && !isUpdateOp(def) && !isWeight(*def) && values.count(value);
}

Halide::Func Builder::linkToUpdate(Value value) {
  if (linked.count(value))
    return valueOf(value).func;
  LoweredStage &from = model.stages[gradientsStage];
  const Tensor tensor = valueOf(value);
  Halide::Type type = value.getType().cast<ShapedType>().getElementType().isF32()
                          ? Halide::Float(32)
                          : Halide::Int(64);
  bool batched = !tensor.shape.empty() && tensor.shape[0] < 0;
  int rank = static_cast<int>(tensor.shape.size());
  std::vector<Halide::Var> vars = makeVars(tensor.shape.size());
  std::string name = tensor.func.name();
  // A gradient computed whole is the output itself: no copy.
  Halide::Func out = ownedResult(from, tensor.func);
  if (!out.defined()) {
    out = Halide::Func(uniqueName(name + "_out"));
    out(vars) = tensor.func(vars);
  }
  Halide::ImageParam param(type, rank, uniqueName(name + "_in"));
  from.outputs.push_back(EntryTensor{out.name(), tensor.shape, batched, param, out, type});
  from.results.push_back(-1);
  stage().inputs.push_back(
      EntryTensor{param.name(), tensor.shape, batched, param, Halide::Func(), type});
  Halide::Func read(uniqueName(name + "_read"));
  read(vars) = param(toExprs(vars));
  linked[value] = tensor.func;
  values[value] = Tensor{read, tensor.shape};
  return read;
}

LogicalResult Builder::buildResults(FuncOp function, ReturnOp ret, bool split) {
  unsigned count = ret.getNumOperands();
  model.outputs.assign(count, EntryTensor());
  std::vector<bool> done(count, false);
  auto add = [&](LoweredStage &owner, unsigned i, Halide::Func func, int component) {
    Value value = ret.getOperand(i);
    std::vector<int64_t> shape = shapeOf(value);
    FailureOr<Halide::Type> type = elementTypeOf(function, value.getType());
    if (failed(type))
      return failure();
    std::string name = count == 1 ? "output" : "output" + std::to_string(i);
    EntryTensor result{name, shape, !shape.empty() && shape[0] < 0, Halide::ImageParam(), func,
                       *type, keyOf(function.getResultAttrDict(i)), component};
    owner.outputs.push_back(result);
    owner.results.push_back(static_cast<int>(i));
    model.outputs[i] = result;
    done[i] = true;
    return success();
  };
  for (unsigned i = 0; i < count; ++i) {
    if (done[i])
      continue;
    Value value = ret.getOperand(i);
    Operation *def = value.getDefiningOp();
    // With an update stage, it gives the state (what it computes, and what
    // the step passes on unchanged); the gradients stage the metrics.
    bool fromUpdate = split && (!def || isUpdateOp(def));
    LoweredStage &owner = fromUpdate || !split ? stage() : model.stages[gradientsStage];
    Tensor tensor = valueOf(value);
    if (split && !fromUpdate && linked.count(value))
      tensor = Tensor{linked.lookup(value), tensor.shape};
    // A Func of several values (an optimizer's update) is the output of
    // each, where the step returns them all.
    if (tensor.component >= 0 && ownedResult(owner, tensor.func).defined()) {
      std::vector<unsigned> holders;
      for (int k = 0; k < tensor.func.outputs(); ++k)
        for (unsigned j = i; j < count; ++j) {
          const Tensor &other = valueOf(ret.getOperand(j));
          if (!done[j] && other.component == k &&
              other.func.function().same_as(tensor.func.function())) {
            holders.push_back(j);
            break;
          }
        }
      if (holders.size() == static_cast<size_t>(tensor.func.outputs())) {
        for (size_t k = 0; k < holders.size(); ++k)
          if (failed(add(owner, holders[k], tensor.func, static_cast<int>(k))))
            return failure();
        continue;
      }
    }
    // Each output is a Func of its own, so the schedule of the layer that
    // computes it stays free (it may be consumed elsewhere too); in a
    // training step a result that one of its ops computes whole is written
    // straight into the output (the new parameters and optimizer state: a
    // copy of each was 11% of mlp_bn's step).
    if (fromUpdate && !def) {
      // State the step passes on unchanged: the update stage stores
      // nothing over it (undef; TrainContext::inPlace).
      std::vector<Halide::Var> vars = makeVars(tensor.shape.size());
      Halide::Func same(uniqueName(keyOf(function.getResultAttrDict(i)) + "_unchanged"));
      FailureOr<Halide::Type> type = elementTypeOf(function, value.getType());
      if (failed(type))
        return failure();
      same(vars) = Halide::undef(*type);
      if (failed(add(owner, i, same, -1)))
        return failure();
      continue;
    }
    Halide::Func func = valueFunc(tensor);
    Halide::Func out = ownedResult(owner, func);
    if (!out.defined()) {
      std::vector<Halide::Var> vars = makeVars(tensor.shape.size());
      out = Halide::Func(count == 1 ? "output" : "output" + std::to_string(i));
      out(vars) = func(vars);
    }
    if (failed(add(owner, i, out, -1)))
      return failure();
  }
  return success();
}

FailureOr<Tensor> Builder::build(Operation *op) {
  return llvm::TypeSwitch<Operation *, FailureOr<Tensor>>(op)
      .Case([&](nn::LinearOp linearOp) { return linear(linearOp); })
      .Case([&](nn::Conv2DOp convOp) { return conv2d(convOp); })
      .Case([&](nn::BatchNormOp bn) { return batchNorm(bn); })
      .Case([&](nn::ScaleShiftOp ss) -> FailureOr<Tensor> {
        int channels = static_cast<int>(shapeOf(ss.scale())[0]);
        FailureOr<Halide::Func> scale = weightTensor(op, ss.scale());
        FailureOr<Halide::Func> shift = weightTensor(op, ss.shift());
        if (failed(scale) || failed(shift))
          return failure();
        return scaleShift(op, ss.input(), packed(op, "scale", *scale, {channels}),
                          packed(op, "shift", *shift, {channels}));
      })
      .Case([&](nn::AvgPool2DOp) { return pool(op, /*isMax=*/false); })
      .Case([&](nn::MaxPool2DOp) { return pool(op, /*isMax=*/true); })
      .Case([&](nn::FlattenOp flattenOp) { return flatten(flattenOp); })
      .Case([&](nn::SoftmaxOp sm) { return softmax(op, sm.axisAttr().getInt(), false); })
      .Case([&](nn::LogSoftmaxOp sm) { return softmax(op, sm.axisAttr().getInt(), true); })
      .Case([&](nn::DropoutOp dropout) -> FailureOr<Tensor> {
        // Eval mode is the identity; train mode draws a mask per call.
        if (dropout.training())
          return LogicalResult(op->emitError("a training-mode dropout has no inference code"));
        return elementwise(op);
      })
      .Case<nn::ReluOp, nn::SigmoidOp, nn::TanhOp, nn::AddOp>(
          [&](Operation *) { return elementwise(op); })
      .Default([&](Operation *) -> FailureOr<Tensor> {
        return LogicalResult(op->emitError("code generation does not support this op"));
      });
}

// y(o, rest) = act(b(o) + Σ_k w(o, k) · x(k, rest))
//
// The weights are read packed into panels of L output channels (L: the
// target's f32 lanes), w(oi, k, oo) = W[oo·L + oi, k], zero-padded to whole
// panels: the inner loop reads one contiguous vector per k and streams
// through the panel. Whole groups of the register block's panels
// (TargetInfo::linearPanels), so no block reads past the buffer; the
// small-batch groups divide that padded count (TargetInfo::smallBatchGroup). A rank-2 layer has a second accumulator with the
// same definition for batches below TargetInfo::smallBatch(), so that its
// schedule can block it differently (the select is simplified away under
// the schedule's specializations on the batch).
FailureOr<Tensor> Builder::linear(nn::LinearOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t out = wShape[0], in = wShape[1];
  int lanes = target.lanes;
  int64_t panels = roundUp(roundUp(out, lanes) / lanes, target.linearPanels);
  if (panels * lanes * in > kMaxElements)
    return LogicalResult(op.emitError()
                         << nn::describeLayer(op)
                         << " is too large for the generated code: its weights, packed in panels of "
                         << lanes << " channels, would have " << panels * lanes * in
                         << " elements, more than the " << kMaxElements
                         << " Halide's 32-bit buffer indexing allows");
  FailureOr<Halide::Func> w = weightTensor(op, op.weight()); // (k, o)
  FailureOr<Halide::Func> b = op.bias() ? weightTensor(op, op.bias()) : Halide::Func();
  if (failed(w) || failed(b))
    return failure();
  Halide::Var i("i"), kv("k"), p("p");
  Halide::Expr o = p * lanes + i, valid = o < static_cast<int>(out);
  Halide::Expr clamped = Halide::min(o, static_cast<int>(out) - 1);
  Halide::Func wLayout(nameFor(op, "w_layout")), bLayout(nameFor(op, "b_layout"));
  wLayout(i, kv, p) = Halide::select(valid, (*w)(kv, clamped), 0.0f);
  bLayout(i, p) = b->defined() ? Halide::select(valid, (*b)(clamped), 0.0f) : Halide::Expr(0.0f);
  int inputs = static_cast<int>(in), groups = static_cast<int>(panels);
  Halide::Func weights = packed(op, "w", wLayout, {lanes, inputs, groups});
  Halide::Func biases = packed(op, "b", bLayout, {lanes, groups});

  // acc(oi, oo, rest...) is the layer per panel; y(o, rest...) reads it back.
  std::vector<Halide::Var> vars = makeVars(x.shape.size());
  Halide::Var oi("oi"), oo("oo");
  std::vector<Halide::Var> accVars = {oi, oo};
  accVars.insert(accVars.end(), vars.begin() + 1, vars.end());
  std::vector<Halide::Expr> xArgs = toExprs(vars);
  Halide::RDom k(0, inputs, "k");
  xArgs[0] = k;
  auto accumulator = [&](StringRef role) {
    Halide::Func acc(nameFor(op, role));
    acc(accVars) = biases(oi, oo);
    acc(accVars) += weights(oi, k, oo) * x.func(xArgs);
    return acc;
  };
  if (target.gpu()) {
    // One output channel per GPU thread (ScheduleGpu.cpp): the accumulator
    // is indexed by the channel itself, since Halide 14's bounds of
    // `o % lanes` at one o span the whole panel (each thread computed 32).
    Halide::Func acc(nameFor(op, "acc"));
    Halide::Expr panel = vars[0] / lanes, lane = vars[0] % lanes;
    acc(vars) = biases(lane, panel);
    acc(vars) += weights(lane, k, panel) * x.func(xArgs);
    Halide::Func y(nameFor(op, ""));
    y(vars) = applyActivation(acc(vars), activationOf(op));
    return record(op, LayerFuncs::Kind::Linear, y, acc, in);
  }
  Halide::Func acc = accumulator("acc");
  std::vector<Halide::Expr> accArgs = toExprs(vars);
  accArgs[0] = vars[0] % lanes;
  accArgs.insert(accArgs.begin() + 1, vars[0] / lanes);
  Halide::Expr sum = acc(accArgs);
  Halide::Func small;
  if (x.shape.size() == 2) {
    small = accumulator("acc_small");
    sum = Halide::select(stage().batch() >= target.smallBatch(), sum, small(accArgs));
  }
  Halide::Func y(nameFor(op, ""));
  y(vars) = applyActivation(sum, activationOf(op));
  Tensor result = record(op, LayerFuncs::Kind::Linear, y, acc, in);
  stage().layers.back().smallBatchReduction = small;
  return result;
}

// y(x, y, c, n) = act(b(c) + Σ w(c, kx, ky, ci) · in(x·s + kx·d − p, y·s + ky·d − p, ci, n))
// with p the begin padding (the end padding only decides the output size)
// and d the dilation. The weights are read with the output channels
// innermost: a vector of channels per tap.
FailureOr<Tensor> Builder::conv2d(nn::Conv2DOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t cout = wShape[0], cin = wShape[1], kh = wShape[2], kw = wShape[3];
  FailureOr<Halide::Func> w = weightTensor(op, op.weight()); // (kx, ky, ci, c)
  FailureOr<Halide::Func> b = op.bias() ? weightTensor(op, op.bias()) : Halide::Func();
  if (failed(w) || failed(b))
    return failure();
  Halide::Var cv("c"), kxv("kx"), kyv("ky"), civ("ci");
  Halide::Func wLayout(nameFor(op, "w_layout")), bLayout(nameFor(op, "b_layout"));
  wLayout(cv, kxv, kyv, civ) = (*w)(kxv, kyv, civ, cv);
  bLayout(cv) = b->defined() ? (*b)(cv) : Halide::Expr(0.0f);
  Halide::Func weights =
      packed(op, "w", wLayout,
             {static_cast<int>(cout), static_cast<int>(kw), static_cast<int>(kh),
              static_cast<int>(cin)});
  Halide::Func biases = packed(op, "b", bLayout, {static_cast<int>(cout)});
  nn::WindowSpec window = op.window();
  int strideH = static_cast<int>(window.stride[0]), strideW = static_cast<int>(window.stride[1]);
  int padH = static_cast<int>(window.padBegin(0)), padW = static_cast<int>(window.padBegin(1));
  int dilationH = static_cast<int>(window.dilationOf(0)),
      dilationW = static_cast<int>(window.dilationOf(1));
  Halide::Func in = x.func;
  if (readsOutside(window, kh, kw, x.shape, shapeOf(op.output())))
    in = Halide::BoundaryConditions::constant_exterior(
        x.func, 0.0f,
        {{0, static_cast<int>(x.shape[3])}, {0, static_cast<int>(x.shape[2])}});
  Halide::Var xx("d0"), yy("d1"), c("d2"), n("d3");
  Halide::RDom r(0, static_cast<int>(kw), 0, static_cast<int>(kh), 0,
                 static_cast<int>(cin), "r");
  Halide::Func acc(nameFor(op, "acc"));
  acc(xx, yy, c, n) = biases(c);
  acc(xx, yy, c, n) += weights(c, r.x, r.y, r.z) * in(xx * strideW + r.x * dilationW - padW,
                                                      yy * strideH + r.y * dilationH - padH,
                                                      r.z, n);
  Halide::Func y(nameFor(op, ""));
  y(xx, yy, c, n) = applyActivation(acc(xx, yy, c, n), activationOf(op));
  Tensor result = record(op, LayerFuncs::Kind::Conv2D, y, acc, cin * kh * kw);
  LayerFuncs &layer = stage().layers.back();
  layer.stride = std::max(strideH, strideW);
  layer.reach[0] = (kw - 1) * dilationW + 1;
  layer.reach[1] = (kh - 1) * dilationH + 1;
  return result;
}

// Per channel (dimension 1): y = x · scale[c] + shift[c], then activation.
FailureOr<Tensor> Builder::scaleShift(Operation *op, Value inputValue,
                                      Halide::Func scaleBuf, Halide::Func shiftBuf) {
  const Tensor &x = valueOf(inputValue);
  size_t rank = x.shape.size();
  std::vector<Halide::Var> vars = makeVars(rank);
  Halide::Var c = vars[rank - 2];
  Halide::Func y(nameFor(op, ""));
  y(vars) = applyActivation(x.func(vars) * scaleBuf(c) + shiftBuf(c),
                            activationOf(op));
  return record(op, LayerFuncs::Kind::Elementwise, y);
}

// Eval mode with running statistics: the same per-channel affine map as
// PyTorch's CPU kernel (alpha = γ / sqrt(var + eps), beta = β − mean · alpha,
// in float). Without running statistics: batch statistics, biased
// variance, as PyTorch.
FailureOr<Tensor> Builder::batchNorm(nn::BatchNormOp op) {
  if (op.training())
    return LogicalResult(op.emitError("a training-mode BatchNorm has no inference code"));
  const Tensor &x = valueOf(op.input());
  size_t rank = x.shape.size();
  int64_t channels = x.shape[1];
  int channelCount = static_cast<int>(channels);
  float eps = static_cast<float>(op.eps().convertToDouble());
  Halide::Var cv("c");
  Halide::Func one(nameFor(op, "one")), zero(nameFor(op, "zero"));
  one(cv) = 1.0f;
  zero(cv) = 0.0f;
  FailureOr<Halide::Func> g = op.isAffine() ? weightTensor(op, op.weight()) : one;
  FailureOr<Halide::Func> bt = op.isAffine() ? weightTensor(op, op.bias()) : zero;
  if (failed(g) || failed(bt))
    return failure();
  if (op.tracksRunningStats()) {
    FailureOr<Halide::Func> mean = weightTensor(op, op.running_mean());
    FailureOr<Halide::Func> var = weightTensor(op, op.running_var());
    if (failed(mean) || failed(var))
      return failure();
    Halide::Func scale(nameFor(op, "scale_layout")), shift(nameFor(op, "shift_layout"));
    Halide::Expr alpha = nn::fold::scale<Halide::Expr>((*g)(cv), (*var)(cv), eps);
    scale(cv) = Halide::strict_float(alpha);
    shift(cv) = Halide::strict_float(nn::fold::shift<Halide::Expr>((*bt)(cv), (*mean)(cv), alpha));
    return scaleShift(op, op.input(), packed(op, "scale", scale, {channelCount}),
                      packed(op, "shift", shift, {channelCount}));
  }
  Halide::Func gammaBuf = packed(op, "gamma", *g, {channelCount});
  Halide::Func betaBuf = packed(op, "beta", *bt, {channelCount});
  // Batch statistics over every dimension but the channel.
  std::vector<Halide::Var> vars = makeVars(rank);
  Halide::Var c = vars[rank - 2];
  Halide::Expr batch = stage().batch();
  Halide::Region extents;
  Halide::Expr count = batch;
  for (size_t i = 0; i + 2 < rank; ++i) {
    extents.push_back({0, static_cast<int>(x.shape[rank - 1 - i])});
    count *= static_cast<int>(x.shape[rank - 1 - i]);
  }
  extents.push_back({0, batch});
  Halide::RDom r(extents, nameFor(op, "r"));
  std::vector<Halide::Expr> at;
  for (size_t i = 0; i + 2 < rank; ++i)
    at.push_back(r[i]);
  at.push_back(c);
  at.push_back(r[rank - 2]);
  Halide::Func mean(nameFor(op, "mean")), var(nameFor(op, "var"));
  Halide::Expr countF = Halide::cast<float>(count);
  mean(c) = Halide::sum(x.func(at)) / countF;
  Halide::Expr centered = x.func(at) - mean(c);
  var(c) = Halide::sum(centered * centered) / countF;
  Halide::Func y(nameFor(op, ""));
  y(vars) = (x.func(vars) - mean(c)) / Halide::sqrt(var(c) + eps) * gammaBuf(c) + betaBuf(c);
  Tensor result = record(op, LayerFuncs::Kind::BatchStats, y);
  stage().layers.back().reduction = var;
  stage().layers.push_back(LayerFuncs{LayerFuncs::Kind::BatchStats, mean.name(),
                                    mean, {}, {channels}, 0});
  return result;
}

// Windows of kernel_size every stride, taps dilation apart, from the begin
// padding (NNOps.td). Where a window reads outside the input, the input is
// extended with −Inf (max: padded taps never win) or 0 (average), and the
// average divides by nn.avg_pool2d's divisor for its position (0 for a
// window with nothing in bounds); elsewhere every window is whole and the
// average is the plain kH·kW mean.
FailureOr<Tensor> Builder::pool(Operation *op, bool isMax) {
  const Tensor &x = valueOf(op->getOperand(0));
  auto kernel = op->getAttrOfType<ArrayAttr>("kernel_size");
  int kh = static_cast<int>(kernel[0].cast<IntegerAttr>().getInt());
  int kw = static_cast<int>(kernel[1].cast<IntegerAttr>().getInt());
  nn::WindowSpec window = nn::windowOf(op);
  int sh = static_cast<int>(window.stride[0]), sw = static_cast<int>(window.stride[1]);
  int ph = static_cast<int>(window.padBegin(0)), pw = static_cast<int>(window.padBegin(1));
  int dh = static_cast<int>(window.dilationOf(0)), dw = static_cast<int>(window.dilationOf(1));
  bool outside = readsOutside(window, kh, kw, x.shape, shapeOf(op->getResult(0)));
  Halide::Func in = x.func;
  if (outside)
    in = Halide::BoundaryConditions::constant_exterior(
        x.func, isMax ? -INFINITY : 0.0f,
        {{0, static_cast<int>(x.shape[3])}, {0, static_cast<int>(x.shape[2])}});
  Halide::Var xx("d0"), yy("d1"), c("d2"), n("d3");
  // Small windows written out tap by tap, large ones reduced over an RDom
  // (kMaxUnrolledWindowTaps); both visit the taps in row-major order.
  Halide::Expr result;
  if (static_cast<int64_t>(kh) * kw <= kMaxUnrolledWindowTaps) {
    for (int ky = 0; ky < kh; ++ky)
      for (int kx = 0; kx < kw; ++kx) {
        Halide::Expr tap = in(xx * sw + kx * dw - pw, yy * sh + ky * dh - ph, c, n);
        result = !result.defined() ? tap : isMax ? maxPropagatingNan(result, tap) : result + tap;
      }
  } else {
    Halide::RDom r(0, kw, 0, kh, nameFor(op, "taps"));
    Halide::Func window(nameFor(op, "window"));
    window(xx, yy, c, n) = isMax ? -INFINITY : 0.0f;
    Halide::Expr tap = in(xx * sw + r.x * dw - pw, yy * sh + r.y * dh - ph, c, n);
    Halide::Expr current = window(xx, yy, c, n);
    window(xx, yy, c, n) = isMax ? maxPropagatingNan(current, tap) : current + tap;
    result = window(xx, yy, c, n);
  }
  Halide::Func y(nameFor(op, ""));
  if (isMax) {
    y(xx, yy, c, n) = result;
  } else if (!outside) {
    y(xx, yy, c, n) = result * (1.0f / static_cast<float>(kh * kw));
  } else {
    bool includePad = op->hasAttr("count_include_pad");
    Halide::Expr divisor = poolDivisorExtent(yy, window, 0, kh, x.shape[2], includePad) *
                           poolDivisorExtent(xx, window, 1, kw, x.shape[3], includePad);
    y(xx, yy, c, n) =
        Halide::select(divisor > 0, result / Halide::cast<float>(divisor), 0.0f);
  }
  return record(op, LayerFuncs::Kind::Pool, y);
}

// softmax / log_softmax along one axis, as PyTorch's CPU kernels (NNOps.td):
// m = max along the axis (a NaN wins, so a slice with a NaN is NaN
// throughout), t = x − m (at most 0), s = Σ exp(t); softmax = exp(t) / s,
// log_softmax = t − log(s). +Inf gives inf − inf = NaN, an all −Inf slice
// NaN, a −Inf element 0 (−Inf). log of a NaN sum is taken as NaN on the
// bits rather than trusted to Halide's log.
FailureOr<Tensor> Builder::softmax(Operation *op, int64_t axis, bool isLog) {
  const Tensor &x = valueOf(op->getOperand(0));
  size_t rank = x.shape.size();
  size_t dim = rank - 1 - static_cast<size_t>(axis); // Halide's order
  std::vector<Halide::Var> vars = makeVars(rank), rest;
  for (size_t d = 0; d < rank; ++d)
    if (d != dim)
      rest.push_back(vars[d]);
  int64_t size = x.shape[axis];
  Halide::Expr extent = size < 0 ? stage().batch() : Halide::Expr(static_cast<int>(size));
  std::vector<Halide::Expr> at = toExprs(vars);
  Halide::Func rowMax(nameFor(op, "max")), sumExp(nameFor(op, "sum"));
  at[dim] = 0;
  rowMax(rest) = x.func(at);
  if (size != 1) {
    Halide::RDom r(1, extent - 1, nameFor(op, "rm"));
    at[dim] = r;
    rowMax(rest) = maxPropagatingNan(rowMax(rest), x.func(at));
  }
  Halide::RDom r(0, extent, nameFor(op, "rs"));
  at[dim] = r;
  sumExp(rest) = 0.0f;
  sumExp(rest) += expNonPositive(x.func(at) - rowMax(rest));
  Halide::Expr t = x.func(vars) - rowMax(rest), sum = sumExp(rest);
  Halide::Func y(nameFor(op, ""));
  if (isLog)
    // (x − max) − log Σ in that order, as PyTorch: strict, or Halide's
    // simplifier reassociates it to x − (max + log Σ), which rounds at the
    // magnitude of x (ONNX's test_logsoftmax_large_number: -0.4404297 for
    // -0.4401897 at x = 10003).
    y(vars) = Halide::select(isNan(sum), sum, Halide::strict_float(t - Halide::log(sum)));
  else
    y(vars) = expNonPositive(t) / sum;
  record(op, LayerFuncs::Kind::Softmax, y, sumExp, size);
  stage().layers.back().rowMax = rowMax;
  stage().layers.back().axis = axis;
  return Tensor{y, x.shape};
}

// Merges dimensions start..end: the merged index is split back by div/mod.
FailureOr<Tensor> Builder::flatten(nn::FlattenOp op) {
  const Tensor &x = valueOf(op.input());
  int64_t rank = x.shape.size();
  int64_t start = op.start_dimAttr().getInt(), end = op.end_dimAttr().getInt();
  if (start < 0)
    start += rank;
  if (end < 0)
    end += rank;
  std::vector<int64_t> outShape = shapeOf(op.output());
  int64_t outRank = outShape.size();
  std::vector<Halide::Var> vars = makeVars(outRank);
  // Tensor-order index expressions of the input.
  std::vector<Halide::Expr> index(rank);
  for (int64_t d = 0; d < start; ++d)
    index[d] = vars[outRank - 1 - d];
  Halide::Expr merged = vars[outRank - 1 - start];
  for (int64_t d = end; d >= start; --d) {
    int extent = static_cast<int>(x.shape[d]);
    index[d] = d == start ? merged : merged % extent;
    merged = merged / extent;
  }
  for (int64_t d = end + 1; d < rank; ++d)
    index[d] = vars[outRank - 1 - (d - (end - start))];
  std::vector<Halide::Expr> args(index.rbegin(), index.rend());
  Halide::Func y(nameFor(op, ""));
  y(vars) = x.func(args);
  return record(op, LayerFuncs::Kind::Flatten, y);
}

FailureOr<Tensor> Builder::elementwise(Operation *op) {
  const Tensor &x = valueOf(op->getOperand(0));
  std::vector<Halide::Var> vars = makeVars(x.shape.size());
  Halide::Expr value = x.func(vars);
  Halide::Func y(nameFor(op, ""));
  if (isa<nn::ReluOp>(op))
    y(vars) = applyActivation(value, StringRef("relu"));
  else if (isa<nn::SigmoidOp>(op))
    y(vars) = applyActivation(value, StringRef("sigmoid"));
  else if (isa<nn::TanhOp>(op))
    y(vars) = applyActivation(value, StringRef("tanh"));
  else if (isa<nn::AddOp>(op))
    y(vars) = value + operandFunc(op, op->getOperand(1))(vars);
  else // dropout: the identity in eval mode
    y(vars) = value;
  return record(op, LayerFuncs::Kind::Elementwise, y);
}

/// Static extents for every dimension but the batch, dense strides: lets
/// Halide drop bounds checks and vectorize loads.
/// `bounds`: false for a tuple's values after the first, whose bounds
/// Halide takes from the first's.
void constrainBuffer(Halide::OutputImageParam buffer, const std::vector<int64_t> &shape,
                     bool batched, bool bounds = true) {
  size_t rank = shape.size();
  Halide::Expr stride = 1;
  for (size_t i = 0; i < rank; ++i) {
    int64_t extent = shape[rank - 1 - i];
    buffer.dim(i).set_stride(stride);
    if (!bounds) {
      stride = stride * static_cast<int>(extent);
    } else if (i + 1 < rank || !batched) {
      buffer.dim(i).set_bounds(0, static_cast<int>(extent));
      stride = stride * static_cast<int>(extent);
    } else {
      buffer.dim(i).set_min(0);
    }
  }
}

} // namespace

Halide::Expr LoweredStage::batch() const {
  for (const EntryTensor &in : inputs)
    if (in.batched)
      return in.param.dim(static_cast<int>(in.shape.size()) - 1).extent();
  return Halide::Expr(1);
}

Halide::Pipeline LoweredStage::pipeline() const {
  std::vector<Halide::Func> funcs;
  for (const EntryTensor &out : outputs)
    if (out.component <= 0)
      funcs.push_back(out.func);
  return Halide::Pipeline(funcs);
}

std::vector<Halide::Argument> LoweredStage::arguments() const {
  std::vector<Halide::Argument> args;
  for (const EntryTensor &in : inputs)
    args.push_back(in.param);
  for (const HyperParameter &hyper : hyperParameters)
    args.push_back(hyper.param);
  for (const PackedWeight &weight : packedWeights)
    args.push_back(weight.param);
  return args;
}

Halide::Pipeline LoweredStage::loadPipeline() const {
  std::vector<Halide::Func> outputs;
  for (const PackedWeight &weight : packedWeights)
    outputs.push_back(weight.layout);
  return Halide::Pipeline(outputs);
}

std::vector<Halide::Argument> LoweredStage::loadArguments() const {
  std::vector<Halide::Argument> args;
  for (const StateTensor &tensor : stateTensors)
    args.push_back(tensor.param);
  return args;
}

std::vector<const LayerFuncs *> LoweredModel::layers() const {
  std::vector<const LayerFuncs *> all;
  for (const LoweredStage &stage : stages)
    for (const LayerFuncs &layer : stage.layers)
      all.push_back(&layer);
  return all;
}

void LoweredModel::compileJit(const Halide::Target &target) {
  jitCompiledFor = target;
  for (LoweredStage &stage : stages) {
    if (!stage.jit.defined())
      stage.jit = stage.pipeline();
    stage.jit.compile_jit(target);
  }
}

void LoweredModel::realize(Halide::Realization results, const Halide::Target &requested,
                           Halide::JITUserContext *context) {
  // Halide resolves an undefined target with get_jit_target_from_environment,
  // which may name features the CPU lacks (hostTarget(), TargetInfo.h).
  Halide::Target target = requested;
  if (target.arch == Halide::Target::ArchUnknown)
    target = jitCompiledFor.arch != Halide::Target::ArchUnknown ? jitCompiledFor : jitTarget();
  const Halide::Buffer<> &first = inputs.front().param.get();
  int batch = first.dim(first.dimensions() - 1).extent();
  stagesRun = 0;
  for (LoweredStage &stage : stages) {
    if (!stage.jit.defined())
      stage.jit = stage.pipeline();
    stage.between.resize(stage.outputs.size());
    std::vector<Halide::Buffer<>> buffers;
    for (size_t j = 0; j < stage.outputs.size(); ++j) {
      if (stage.results[j] >= 0) {
        buffers.push_back(results[stage.results[j]]);
        continue;
      }
      // A tensor a later stage reads: the batch is that of the first input.
      const EntryTensor &out = stage.outputs[j];
      std::vector<int> extents(out.shape.rbegin(), out.shape.rend());
      if (out.batched)
        extents.back() = batch;
      Halide::Buffer<> &kept = stage.between[j];
      bool fits = kept.defined() && kept.dimensions() == static_cast<int>(extents.size());
      for (size_t d = 0; fits && d < extents.size(); ++d)
        fits = kept.dim(static_cast<int>(d)).extent() == extents[d];
      if (!fits)
        kept = Halide::Buffer<>(out.type, extents);
      Halide::ImageParam param = out.param;
      param.set(kept);
      buffers.push_back(kept);
    }
    stage.jit.realize(context, Halide::Realization(buffers), target);
    ++stagesRun;
  }
}

namespace {

/// Buffers of a stage: static extents and dense strides.
void constrainStage(LoweredStage &stage) {
  for (EntryTensor &in : stage.inputs)
    constrainBuffer(in.param, in.shape, in.batched);
  for (EntryTensor &out : stage.outputs)
    constrainBuffer(out.func.output_buffers()[std::max(out.component, 0)], out.shape,
                    out.batched, out.component <= 0);
  // The load pipeline runs once per weights file: its layouts are computed
  // whole, straight into the buffers the inference pipeline then reads.
  for (PackedWeight &weight : stage.packedWeights) {
    Halide::OutputImageParam out = weight.layout.output_buffer();
    int stride = 1;
    for (size_t d = 0; d < weight.extents.size(); ++d) {
      out.dim(d).set_bounds(0, weight.extents[d]).set_stride(stride);
      stride *= weight.extents[d];
    }
  }
}

/// The reference: every layer computed whole, in order, serially, with no
/// vectorization (Halide would otherwise inline everything).
void scheduleReference(LoweredStage &stage) {
  for (LayerFuncs &layer : stage.layers) {
    layer.output.compute_root();
    if (layer.reduction.defined())
      layer.reduction.compute_root();
    if (layer.rowMax.defined())
      layer.rowMax.compute_root();
  }
}

} // namespace

FailureOr<LoweredModel> lowerToHalide(ModuleOp module, const LoweringOptions &options,
                                      StringRef entry) {
  FuncOp function = module.lookupSymbol<FuncOp>(entry);
  if (!function)
    return LogicalResult(module.emitError() << "module has no function '" << entry << "'");
  LoweredModel model;
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    model.name = name.getValue().str();
  model.externalWeights = options.externalWeights;
  model.target = options.target;
  try {
    Builder builder(model, options);
    if (failed(builder.run(function)))
      return failure();
    for (LoweredStage &stage : model.stages) {
      constrainStage(stage);
      std::string error;
      if (!options.schedule)
        scheduleReference(stage);
      else if (!model.target.gpu())
        scheduleForCpu(stage, model.target);
      else if (!scheduleForGpu(stage, model.target, error))
        return LogicalResult(function.emitError() << error);
    }
  } catch (const Halide::Error &error) {
    return LogicalResult(function.emitError() << "Halide: " << error.what());
  }
  return model;
}

} // namespace kiln::codegen

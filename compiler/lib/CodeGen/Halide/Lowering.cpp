//===- Lowering.cpp - nn graph to one Halide pipeline ---------------------===//
//
// Tensors become Halide Funcs with the dimensions reversed: a [N, C, H, W]
// tensor is f(w, h, c, n), innermost first, as Halide (and memory) see it.
// Bound weights become Halide Buffers in the layout the schedule wants
// (repacked at compile time); AOT compilation embeds them in the object as
// constant data. With external weights the same layouts are inputs of the
// pipeline, computed from the state_dict tensors by a second pipeline (the
// load pipeline) that also runs what nn.fold_batch_norm says.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Import/Import.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace kiln::codegen {

/// Vector lanes of f32 the weight layouts are padded to (AVX-512).
constexpr int kLanes = 16;
/// Panels of a linear layer's register block (Schedule.cpp).
constexpr int kPanelGroup = 4;

namespace {

/// A tensor as Halide sees it.
struct Tensor {
  Halide::Func func;
  std::vector<int64_t> shape; // tensor order; shape[0] is the batch
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

Halide::Expr applyActivation(Halide::Expr value, Optional<StringRef> activation) {
  if (!activation)
    return value;
  if (*activation == "relu")
    return Halide::max(value, 0.0f);
  if (*activation == "sigmoid")
    return 1.0f / (1.0f + Halide::exp(-value));
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

/// A constant per-channel vector as a Func.
Halide::Func channelConstant(const std::vector<float> &values, const std::string &name) {
  Halide::Buffer<float> buffer(static_cast<int>(values.size()), name);
  for (size_t c = 0; c < values.size(); ++c)
    buffer(c) = values[c];
  return wrap(buffer);
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

class Builder {
public:
  Builder(LoweredModel &model, const LoweringOptions &options)
      : model(model), options(options) {}

  LogicalResult run(FuncOp forward);

private:
  FailureOr<Tensor> build(Operation *op);
  FailureOr<std::vector<float>> constant(Operation *user, Value value);
  FailureOr<Halide::Func> weightTensor(Operation *user, Value value);
  FailureOr<Halide::Func> foldedTensor(nn::FoldBatchNormOp fold, unsigned result);
  Halide::Func packed(Operation *op, StringRef role, Halide::Func layout,
                      std::vector<int> extents);
  std::string nameFor(Operation *op, StringRef role);
  std::string uniqueName(std::string name);
  Tensor record(Operation *op, LayerFuncs::Kind kind, Halide::Func out,
                Halide::Func reduction = {}, int64_t reductionSize = 0);

  FailureOr<Tensor> linear(nn::LinearOp op);
  FailureOr<Tensor> conv2d(nn::Conv2DOp op);
  FailureOr<Tensor> batchNorm(nn::BatchNormOp op);
  FailureOr<Tensor> scaleShift(Operation *op, Value input, Halide::Func scale,
                               Halide::Func shift);
  FailureOr<Tensor> pool(Operation *op, bool isMax);
  FailureOr<Tensor> flatten(nn::FlattenOp op);
  FailureOr<Tensor> elementwise(Operation *op);

  const Tensor &valueOf(Value value) { return values.find(value)->second; }

  LoweredModel &model;
  const LoweringOptions &options;
  llvm::DenseMap<Value, Tensor> values;
  llvm::DenseMap<Value, Halide::Func> weightTensors; // external weights
  llvm::StringMap<unsigned> nameCounts;
};

std::string Builder::nameFor(Operation *op, StringRef role) {
  std::string base = nn::layerNameOf(op);
  if (base.empty())
    base = op->getName().stripDialect().str();
  for (char &c : base)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
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
  model.layers.push_back(
      LayerFuncs{kind, out.name(), out, reduction, shape, reductionSize});
  return Tensor{out, shape};
}

/// The values of a bound parameter or constant, as float.
FailureOr<std::vector<float>> Builder::constant(Operation *user, Value value) {
  DenseElementsAttr attr = nn::getBoundValue(value);
  if (!attr) {
    std::string what = "a weight";
    if (auto name = value.getDefiningOp() ? value.getDefiningOp()->getAttrOfType<StringAttr>("name") : StringAttr())
      what = "parameter '" + name.getValue().str() + "'";
    return LogicalResult(user->emitError()
                         << what << " has no value: bind weights (--weights) before code generation");
  }
  std::vector<float> values(attr.getValues<float>().begin(), attr.getValues<float>().end());
  model.weightBytes += values.size() * sizeof(float);
  return values;
}

/// External weights: `value` as a Func in Halide order, computed by the load
/// pipeline: a state_dict tensor read as it is, a folded one computed from
/// them, or a bound constant.
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
    Halide::ImageParam param(Halide::Float(32), static_cast<int>(shape.size()),
                             uniqueName("state_" + key.str()));
    std::vector<int> extents(shape.rbegin(), shape.rend());
    constrainWeight(param, extents);
    model.stateTensors.push_back(StateTensor{key.str(), shape, param});
    tensor = Halide::Func(param.name() + "_tensor");
    tensor(vars) = param(toExprs(vars));
  } else if (auto fold = dyn_cast_or_null<nn::FoldBatchNormOp>(def)) {
    FailureOr<Halide::Func> folded =
        foldedTensor(fold, value.cast<OpResult>().getResultNumber());
    if (failed(folded))
      return failure();
    tensor = *folded;
  } else {
    return LogicalResult(user->emitError("code generation cannot compute this weight "
                                         "when the weights are loaded"));
  }
  weightTensors[value] = tensor;
  return tensor;
}

// nn.fold_batch_norm, with the same double-precision arithmetic as
// nn-fold-batchnorm's constant folding, in the same order, under
// strict_float: external and embedded weights give the same bits.
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
    return g / Halide::sqrt(f64((*var)(c)) + eps);
  };
  auto shift = [&](Halide::Expr c) {
    Halide::Expr b = beta->defined() ? f64((*beta)(c)) : Halide::Expr(0.0);
    return b - f64((*mean)(c)) * scale(c);
  };
  Halide::Func out(uniqueName("folded"));
  if (result == 1) {
    Halide::Var c("c");
    Halide::Expr b = bias->defined() ? f64((*bias)(c)) : Halide::Expr(0.0);
    out(c) = Halide::strict_float(Halide::cast<float>(b * scale(c) + shift(c)));
  } else if (weight->defined()) {
    std::vector<Halide::Var> vars = makeVars(shapeOf(fold.weight()).size());
    out(vars) = Halide::strict_float(
        Halide::cast<float>(f64((*weight)(toExprs(vars))) * scale(vars.back())));
  } else {
    Halide::Var c("c");
    out(c) = Halide::strict_float(Halide::cast<float>(scale(c)));
  }
  return out;
}

/// External weights: a runtime input of the inference pipeline, in the
/// layout `layout` (extents in Halide order) computes in the load pipeline.
Halide::Func Builder::packed(Operation *op, StringRef role, Halide::Func layout,
                             std::vector<int> extents) {
  Halide::ImageParam param(Halide::Float(32), static_cast<int>(extents.size()),
                           nameFor(op, role));
  constrainWeight(param, extents);
  int64_t count = 1;
  for (int extent : extents)
    count *= extent;
  model.weightBytes += count * static_cast<int64_t>(sizeof(float));
  model.packedWeights.push_back(PackedWeight{extents, param, layout});
  std::vector<Halide::Var> vars = makeVars(extents.size());
  Halide::Func f(param.name() + "_in");
  f(vars) = param(toExprs(vars));
  return f;
}

LogicalResult Builder::run(FuncOp forward) {
  Value argument = forward.getArgument(0);
  model.inputShape = shapeOf(argument);
  size_t rank = model.inputShape.size();
  model.input = Halide::ImageParam(Halide::Float(32), rank, "input");
  std::vector<Halide::Var> vars = makeVars(rank);
  Halide::Func input("input_tensor");
  input(vars) = model.input(vars);
  values[argument] = Tensor{input, model.inputShape};

  for (Operation &op : forward.getBody().front()) {
    if (isa<nn::ParamOp, nn::BufferOp, arith::ConstantOp, nn::FoldBatchNormOp>(op))
      continue;
    if (auto ret = dyn_cast<ReturnOp>(op)) {
      const Tensor &result = valueOf(ret.getOperand(0));
      model.outputShape = result.shape;
      // The output is a Func of its own, so the schedule of the layer that
      // computes it stays free (it may be consumed elsewhere too).
      std::vector<Halide::Var> outVars = makeVars(result.shape.size());
      model.output = Halide::Func("output");
      model.output(outVars) = result.func(outVars);
      return success();
    }
    FailureOr<Tensor> tensor = build(&op);
    if (failed(tensor))
      return failure();
    values[op.getResult(0)] = *tensor;
  }
  return forward.emitError("forward function has no return");
}

FailureOr<Tensor> Builder::build(Operation *op) {
  return llvm::TypeSwitch<Operation *, FailureOr<Tensor>>(op)
      .Case([&](nn::LinearOp linearOp) { return linear(linearOp); })
      .Case([&](nn::Conv2DOp convOp) { return conv2d(convOp); })
      .Case([&](nn::BatchNormOp bn) { return batchNorm(bn); })
      .Case([&](nn::ScaleShiftOp ss) -> FailureOr<Tensor> {
        int channels = static_cast<int>(shapeOf(ss.scale())[0]);
        if (options.externalWeights) {
          FailureOr<Halide::Func> scale = weightTensor(op, ss.scale());
          FailureOr<Halide::Func> shift = weightTensor(op, ss.shift());
          if (failed(scale) || failed(shift))
            return failure();
          return scaleShift(op, ss.input(), packed(op, "scale", *scale, {channels}),
                            packed(op, "shift", *shift, {channels}));
        }
        FailureOr<std::vector<float>> scale = constant(op, ss.scale());
        FailureOr<std::vector<float>> shift = constant(op, ss.shift());
        if (failed(scale) || failed(shift))
          return failure();
        return scaleShift(op, ss.input(), channelConstant(*scale, nameFor(op, "scale")),
                          channelConstant(*shift, nameFor(op, "shift")));
      })
      .Case([&](nn::AvgPool2DOp) { return pool(op, /*isMax=*/false); })
      .Case([&](nn::MaxPool2DOp) { return pool(op, /*isMax=*/true); })
      .Case([&](nn::FlattenOp flattenOp) { return flatten(flattenOp); })
      .Case<nn::ReluOp, nn::SigmoidOp, nn::TanhOp, nn::AddOp, nn::DropoutOp>(
          [&](Operation *) { return elementwise(op); })
      .Default([&](Operation *) -> FailureOr<Tensor> {
        return LogicalResult(op->emitError("code generation does not support this op"));
      });
}

// y(o, rest) = act(b(o) + Σ_k w(o, k) · x(k, rest))
//
// The weights are read packed into panels of kLanes output channels,
// w(oi, k, oo) = W[oo·16 + oi, k], zero-padded to whole panels: the inner
// loop reads one contiguous vector per k and streams through the panel.
// Whole groups of kPanelGroup panels, so the register block (4 panels)
// never reads past the buffer.
FailureOr<Tensor> Builder::linear(nn::LinearOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t out = wShape[0], in = wShape[1];
  int64_t panels = roundUp(roundUp(out, kLanes) / kLanes, kPanelGroup);
  Halide::Func weights, biases;
  if (options.externalWeights) {
    FailureOr<Halide::Func> w = weightTensor(op, op.weight()); // (k, o)
    FailureOr<Halide::Func> b = op.bias() ? weightTensor(op, op.bias()) : Halide::Func();
    if (failed(w) || failed(b))
      return failure();
    Halide::Var i("i"), k("k"), p("p");
    Halide::Expr o = p * kLanes + i, valid = o < static_cast<int>(out);
    Halide::Expr clamped = Halide::min(o, static_cast<int>(out) - 1);
    Halide::Func wLayout(nameFor(op, "w_layout")), bLayout(nameFor(op, "b_layout"));
    wLayout(i, k, p) = Halide::select(valid, (*w)(k, clamped), 0.0f);
    bLayout(i, p) = b->defined() ? Halide::select(valid, (*b)(clamped), 0.0f) : Halide::Expr(0.0f);
    int lanes = kLanes, inputs = static_cast<int>(in), groups = static_cast<int>(panels);
    weights = packed(op, "w", wLayout, {lanes, inputs, groups});
    biases = packed(op, "b", bLayout, {lanes, groups});
  } else {
    FailureOr<std::vector<float>> w = constant(op, op.weight());
    if (failed(w))
      return failure();
    std::vector<float> b(out, 0.0f);
    if (op.bias()) {
      FailureOr<std::vector<float>> bias = constant(op, op.bias());
      if (failed(bias))
        return failure();
      b = *bias;
    }
    Halide::Buffer<float> wBuffer(kLanes, in, panels, nameFor(op, "w"));
    Halide::Buffer<float> bBuffer(kLanes, panels, nameFor(op, "b"));
    wBuffer.fill(0.0f);
    bBuffer.fill(0.0f);
    for (int64_t o = 0; o < out; ++o) {
      bBuffer(o % kLanes, o / kLanes) = b[o];
      for (int64_t k = 0; k < in; ++k)
        wBuffer(o % kLanes, k, o / kLanes) = (*w)[o * in + k];
    }
    weights = wrap(wBuffer);
    biases = wrap(bBuffer);
  }
  // acc(oi, oo, rest...) is the layer per panel; y(o, rest...) reads it back.
  std::vector<Halide::Var> vars = makeVars(x.shape.size());
  Halide::Var oi("oi"), oo("oo");
  std::vector<Halide::Var> accVars = {oi, oo};
  accVars.insert(accVars.end(), vars.begin() + 1, vars.end());
  std::vector<Halide::Expr> xArgs = toExprs(vars);
  Halide::RDom k(0, static_cast<int>(in), "k");
  xArgs[0] = k;
  Halide::Func acc(nameFor(op, "acc"));
  acc(accVars) = biases(oi, oo);
  acc(accVars) += weights(oi, k, oo) * x.func(xArgs);
  std::vector<Halide::Expr> accArgs = toExprs(vars);
  accArgs[0] = vars[0] % kLanes;
  accArgs.insert(accArgs.begin() + 1, vars[0] / kLanes);
  Halide::Func y(nameFor(op, ""));
  y(vars) = applyActivation(acc(accArgs), activationOf(op));
  return record(op, LayerFuncs::Kind::Linear, y, acc, in);
}

// y(x, y, c, n) = act(b(c) + Σ w(c, kx, ky, ci) · in(x·s + kx − p, y·s + ky − p, ci, n))
// The weights are read with the output channels innermost: a vector of
// channels per tap.
FailureOr<Tensor> Builder::conv2d(nn::Conv2DOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t cout = wShape[0], cin = wShape[1], kh = wShape[2], kw = wShape[3];
  Halide::Func weights, biases;
  if (options.externalWeights) {
    FailureOr<Halide::Func> w = weightTensor(op, op.weight()); // (kx, ky, ci, c)
    FailureOr<Halide::Func> b = op.bias() ? weightTensor(op, op.bias()) : Halide::Func();
    if (failed(w) || failed(b))
      return failure();
    Halide::Var c("c"), kx("kx"), ky("ky"), ci("ci");
    Halide::Func wLayout(nameFor(op, "w_layout")), bLayout(nameFor(op, "b_layout"));
    wLayout(c, kx, ky, ci) = (*w)(kx, ky, ci, c);
    bLayout(c) = b->defined() ? (*b)(c) : Halide::Expr(0.0f);
    weights = packed(op, "w", wLayout,
                     {static_cast<int>(cout), static_cast<int>(kw), static_cast<int>(kh),
                      static_cast<int>(cin)});
    biases = packed(op, "b", bLayout, {static_cast<int>(cout)});
  } else {
    FailureOr<std::vector<float>> w = constant(op, op.weight());
    if (failed(w))
      return failure();
    std::vector<float> b(cout, 0.0f);
    if (op.bias()) {
      FailureOr<std::vector<float>> bias = constant(op, op.bias());
      if (failed(bias))
        return failure();
      b = *bias;
    }
    Halide::Buffer<float> wBuffer(cout, kw, kh, cin, nameFor(op, "w"));
    for (int64_t c = 0; c < cout; ++c)
      for (int64_t ci = 0; ci < cin; ++ci)
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx)
            wBuffer(c, kx, ky, ci) = (*w)[((c * cin + ci) * kh + ky) * kw + kx];
    weights = wrap(wBuffer);
    biases = channelConstant(b, nameFor(op, "b"));
  }
  auto attrInts = [](ArrayAttr array) {
    return std::pair<int, int>(array[0].cast<IntegerAttr>().getInt(),
                               array[1].cast<IntegerAttr>().getInt());
  };
  auto [strideH, strideW] = attrInts(op.stride());
  auto [padH, padW] = attrInts(op.padding());
  Halide::Func in = x.func;
  if (padH || padW)
    in = Halide::BoundaryConditions::constant_exterior(
        x.func, 0.0f,
        {{0, static_cast<int>(x.shape[3])}, {0, static_cast<int>(x.shape[2])}});
  Halide::Var xx("d0"), yy("d1"), c("d2"), n("d3");
  Halide::RDom r(0, static_cast<int>(kw), 0, static_cast<int>(kh), 0,
                 static_cast<int>(cin), "r");
  Halide::Func acc(nameFor(op, "acc"));
  acc(xx, yy, c, n) = biases(c);
  acc(xx, yy, c, n) += weights(c, r.x, r.y, r.z) *
                       in(xx * strideW + r.x - padW, yy * strideH + r.y - padH, r.z, n);
  Halide::Func y(nameFor(op, ""));
  y(xx, yy, c, n) = applyActivation(acc(xx, yy, c, n), activationOf(op));
  return record(op, LayerFuncs::Kind::Conv2D, y, acc, cin * kh * kw);
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
// PyTorch's CPU kernel (alpha = γ / sqrt(var + eps), beta = β − mean · alpha).
// Without running statistics: batch statistics, biased variance, as PyTorch.
FailureOr<Tensor> Builder::batchNorm(nn::BatchNormOp op) {
  if (op.training())
    return LogicalResult(op.emitError("a training-mode BatchNorm has no inference code"));
  const Tensor &x = valueOf(op.input());
  size_t rank = x.shape.size();
  int64_t channels = x.shape[1];
  int channelCount = static_cast<int>(channels);
  double eps = op.eps().convertToDouble();
  Halide::Func gammaBuf, betaBuf;
  if (options.externalWeights) {
    Halide::Var c("c");
    Halide::Func one(nameFor(op, "one")), zero(nameFor(op, "zero"));
    one(c) = 1.0f;
    zero(c) = 0.0f;
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
      Halide::Expr alpha = (*g)(c) / Halide::sqrt((*var)(c) + static_cast<float>(eps));
      scale(c) = Halide::strict_float(alpha);
      shift(c) = Halide::strict_float((*bt)(c) - (*mean)(c) * alpha);
      return scaleShift(op, op.input(), packed(op, "scale", scale, {channelCount}),
                        packed(op, "shift", shift, {channelCount}));
    }
    gammaBuf = packed(op, "gamma", *g, {channelCount});
    betaBuf = packed(op, "beta", *bt, {channelCount});
  } else {
    std::vector<float> gamma(channels, 1.0f), beta(channels, 0.0f);
    if (op.isAffine()) {
      FailureOr<std::vector<float>> g = constant(op, op.weight());
      FailureOr<std::vector<float>> bt = constant(op, op.bias());
      if (failed(g) || failed(bt))
        return failure();
      gamma = *g;
      beta = *bt;
    }
    if (op.tracksRunningStats()) {
      FailureOr<std::vector<float>> mean = constant(op, op.running_mean());
      FailureOr<std::vector<float>> var = constant(op, op.running_var());
      if (failed(mean) || failed(var))
        return failure();
      std::vector<float> scale(channels), shift(channels);
      for (int64_t c = 0; c < channels; ++c) {
        float alpha = gamma[c] / std::sqrt((*var)[c] + static_cast<float>(eps));
        scale[c] = alpha;
        shift[c] = beta[c] - (*mean)[c] * alpha;
      }
      return scaleShift(op, op.input(), channelConstant(scale, nameFor(op, "scale")),
                        channelConstant(shift, nameFor(op, "shift")));
    }
    gammaBuf = channelConstant(gamma, nameFor(op, "gamma"));
    betaBuf = channelConstant(beta, nameFor(op, "beta"));
  }
  // Batch statistics over every dimension but the channel.
  std::vector<Halide::Var> vars = makeVars(rank);
  Halide::Var c = vars[rank - 2];
  Halide::Expr batch = model.input.dim(model.inputShape.size() - 1).extent();
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
  y(vars) = (x.func(vars) - mean(c)) / Halide::sqrt(var(c) + static_cast<float>(eps)) *
                gammaBuf(c) + betaBuf(c);
  Tensor result = record(op, LayerFuncs::Kind::BatchStats, y);
  model.layers.back().reduction = var;
  model.layers.push_back(LayerFuncs{LayerFuncs::Kind::BatchStats, mean.name(),
                                    mean, {}, {channels}, 0});
  return result;
}

// Windows of kernel_size, no padding (the DSL's pooling).
FailureOr<Tensor> Builder::pool(Operation *op, bool isMax) {
  const Tensor &x = valueOf(op->getOperand(0));
  auto ints = [&](StringRef name) {
    auto array = op->getAttrOfType<ArrayAttr>(name);
    return std::pair<int, int>(array[0].cast<IntegerAttr>().getInt(),
                               array[1].cast<IntegerAttr>().getInt());
  };
  auto [kh, kw] = ints("kernel_size");
  auto [sh, sw] = ints("stride");
  Halide::Var xx("d0"), yy("d1"), c("d2"), n("d3");
  // The window written out tap by tap: pooling kernels are small and known
  // at compile time, and an RDom would make Halide build an inner reduction
  // Func per output element (19% of LeNet's time at batch 64).
  Halide::Expr result;
  for (int ky = 0; ky < kh; ++ky)
    for (int kx = 0; kx < kw; ++kx) {
      Halide::Expr tap = x.func(xx * sw + kx, yy * sh + ky, c, n);
      result = !result.defined() ? tap : isMax ? Halide::max(result, tap) : result + tap;
    }
  Halide::Func y(nameFor(op, ""));
  y(xx, yy, c, n) = isMax ? result : result * (1.0f / static_cast<float>(kh * kw));
  return record(op, LayerFuncs::Kind::Pool, y);
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
    y(vars) = value + valueOf(op->getOperand(1)).func(vars);
  else // dropout: the identity in eval mode
    y(vars) = value;
  return record(op, LayerFuncs::Kind::Elementwise, y);
}

/// Static extents for every dimension but the batch, dense strides: lets
/// Halide drop bounds checks and vectorize loads.
void constrainBuffer(Halide::OutputImageParam buffer, const std::vector<int64_t> &shape) {
  size_t rank = shape.size();
  Halide::Expr stride = 1;
  for (size_t i = 0; i < rank; ++i) {
    int64_t extent = shape[rank - 1 - i];
    buffer.dim(i).set_stride(stride);
    if (i + 1 < rank) {
      buffer.dim(i).set_bounds(0, static_cast<int>(extent));
      stride = stride * static_cast<int>(extent);
    } else {
      buffer.dim(i).set_min(0);
    }
  }
}

} // namespace

std::vector<Halide::Argument> LoweredModel::arguments() const {
  std::vector<Halide::Argument> args = {input};
  for (const PackedWeight &weight : packedWeights)
    args.push_back(weight.param);
  return args;
}

Halide::Pipeline LoweredModel::loadPipeline() const {
  std::vector<Halide::Func> outputs;
  for (const PackedWeight &weight : packedWeights)
    outputs.push_back(weight.layout);
  return Halide::Pipeline(outputs);
}

std::vector<Halide::Argument> LoweredModel::loadArguments() const {
  std::vector<Halide::Argument> args;
  for (const StateTensor &tensor : stateTensors)
    args.push_back(tensor.param);
  return args;
}

FailureOr<LoweredModel> lowerToHalide(ModuleOp module, const LoweringOptions &options) {
  FuncOp forward = module.lookupSymbol<FuncOp>(kForwardFunc);
  if (!forward)
    return LogicalResult(module.emitError("module has no forward function"));
  LoweredModel model;
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    model.name = name.getValue().str();
  model.externalWeights = options.externalWeights;
  Builder builder(model, options);
  if (failed(builder.run(forward)))
    return failure();
  constrainBuffer(model.input, model.inputShape);
  constrainBuffer(model.output.output_buffer(), model.outputShape);
  // The load pipeline runs once per weights file: its layouts are computed
  // whole, straight into the buffers the inference pipeline then reads.
  for (PackedWeight &weight : model.packedWeights) {
    Halide::OutputImageParam out = weight.layout.output_buffer();
    int stride = 1;
    for (size_t d = 0; d < weight.extents.size(); ++d) {
      out.dim(d).set_bounds(0, weight.extents[d]).set_stride(stride);
      stride *= weight.extents[d];
    }
  }
  if (options.schedule) {
    scheduleForCpu(model);
  } else {
    // The reference: every layer computed whole, in order, serially, with
    // no vectorization (Halide would otherwise inline everything).
    for (LayerFuncs &layer : model.layers) {
      layer.output.compute_root();
      if (layer.reduction.defined())
        layer.reduction.compute_root();
    }
  }
  return model;
}

} // namespace kiln::codegen

//===- Lowering.cpp - nn graph to one Halide pipeline ---------------------===//
//
// Tensors become Halide Funcs with the dimensions reversed: a [N, C, H, W]
// tensor is f(w, h, c, n), innermost first, as Halide (and memory) see it.
// Weights are bound constants and become Halide Buffers in the layout the
// schedule wants (repacked at compile time); AOT compilation embeds them
// in the object as constant data.
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

class Builder {
public:
  Builder(LoweredModel &model) : model(model) {}

  LogicalResult run(FuncOp forward);

private:
  FailureOr<Tensor> build(Operation *op);
  FailureOr<std::vector<float>> constant(Operation *user, Value value);
  std::string nameFor(Operation *op, StringRef role);
  Tensor record(Operation *op, LayerFuncs::Kind kind, Halide::Func out,
                Halide::Func reduction = {}, int64_t reductionSize = 0);

  FailureOr<Tensor> linear(nn::LinearOp op);
  FailureOr<Tensor> conv2d(nn::Conv2DOp op);
  FailureOr<Tensor> batchNorm(nn::BatchNormOp op);
  FailureOr<Tensor> scaleShift(Operation *op, Value input,
                               const std::vector<float> &scale,
                               const std::vector<float> &shift);
  FailureOr<Tensor> pool(Operation *op, bool isMax);
  FailureOr<Tensor> flatten(nn::FlattenOp op);
  FailureOr<Tensor> elementwise(Operation *op);

  const Tensor &valueOf(Value value) { return values.find(value)->second; }

  LoweredModel &model;
  llvm::DenseMap<Value, Tensor> values;
  llvm::StringMap<unsigned> nameCounts;
};

std::string Builder::nameFor(Operation *op, StringRef role) {
  std::string base = nn::layerNameOf(op);
  if (base.empty())
    base = op->getName().stripDialect().str();
  for (char &c : base)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
  std::string name = base + (role.empty() ? "" : "_" + role.str());
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
    if (isa<nn::ParamOp, nn::BufferOp, arith::ConstantOp>(op))
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
        FailureOr<std::vector<float>> scale = constant(op, ss.scale());
        FailureOr<std::vector<float>> shift = constant(op, ss.shift());
        if (failed(scale) || failed(shift))
          return failure();
        return scaleShift(op, ss.input(), *scale, *shift);
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
FailureOr<Tensor> Builder::linear(nn::LinearOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t out = wShape[0], in = wShape[1];
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
  // Packed at compile time into panels of kLanes output channels,
  // w(oi, k, oo) = W[oo·16 + oi, k], zero-padded to whole panels: the inner
  // loop reads one contiguous vector per k and streams through the panel.
  // Whole groups of kPanelGroup panels, so the register block (4 panels)
  // never reads past the buffer.
  int64_t panels = roundUp(roundUp(out, kLanes) / kLanes, kPanelGroup);
  Halide::Buffer<float> weights(kLanes, in, panels, nameFor(op, "w"));
  Halide::Buffer<float> biases(kLanes, panels, nameFor(op, "b"));
  weights.fill(0.0f);
  biases.fill(0.0f);
  for (int64_t o = 0; o < out; ++o) {
    biases(o % kLanes, o / kLanes) = b[o];
    for (int64_t k = 0; k < in; ++k)
      weights(o % kLanes, k, o / kLanes) = (*w)[o * in + k];
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
FailureOr<Tensor> Builder::conv2d(nn::Conv2DOp op) {
  const Tensor &x = valueOf(op.input());
  std::vector<int64_t> wShape = shapeOf(op.weight());
  int64_t cout = wShape[0], cin = wShape[1], kh = wShape[2], kw = wShape[3];
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
  // Output channels innermost: a vector of channels per tap.
  Halide::Buffer<float> weights(cout, kw, kh, cin, nameFor(op, "w"));
  Halide::Buffer<float> biases(cout, nameFor(op, "b"));
  for (int64_t c = 0; c < cout; ++c) {
    biases(c) = b[c];
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          weights(c, kx, ky, ci) = (*w)[((c * cin + ci) * kh + ky) * kw + kx];
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
                                      const std::vector<float> &scale,
                                      const std::vector<float> &shift) {
  const Tensor &x = valueOf(inputValue);
  size_t rank = x.shape.size();
  int64_t channels = x.shape[1];
  Halide::Buffer<float> scaleBuf(channels, nameFor(op, "scale"));
  Halide::Buffer<float> shiftBuf(channels, nameFor(op, "shift"));
  for (int64_t c = 0; c < channels; ++c) {
    scaleBuf(c) = scale[c];
    shiftBuf(c) = shift[c];
  }
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
  std::vector<float> gamma(channels, 1.0f), beta(channels, 0.0f);
  if (op.isAffine()) {
    FailureOr<std::vector<float>> g = constant(op, op.weight());
    FailureOr<std::vector<float>> bt = constant(op, op.bias());
    if (failed(g) || failed(bt))
      return failure();
    gamma = *g;
    beta = *bt;
  }
  double eps = op.eps().convertToDouble();
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
    return scaleShift(op, op.input(), scale, shift);
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
  Halide::Buffer<float> gammaBuf(channels), betaBuf(channels);
  for (int64_t i = 0; i < channels; ++i) {
    gammaBuf(i) = gamma[i];
    betaBuf(i) = beta[i];
  }
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

FailureOr<LoweredModel> lowerToHalide(ModuleOp module, const LoweringOptions &options) {
  FuncOp forward = module.lookupSymbol<FuncOp>(kForwardFunc);
  if (!forward)
    return LogicalResult(module.emitError("module has no forward function"));
  LoweredModel model;
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    model.name = name.getValue().str();
  Builder builder(model);
  if (failed(builder.run(forward)))
    return failure();
  constrainBuffer(model.input, model.inputShape);
  constrainBuffer(model.output.output_buffer(), model.outputShape);
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

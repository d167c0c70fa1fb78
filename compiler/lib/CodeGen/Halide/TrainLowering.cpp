//===- TrainLowering.cpp - the training-step ops as Halide Funcs ----------===//
//
// One builder per op of NNTrainOps.td, each the formula its ODS description
// states (PyTorch 1.13's), tie and NaN rules included. Tensors are Funcs
// with the dimensions reversed, as in Lowering.cpp: [N, C, H, W] is
// f(w, h, c, n). Reductions are written as an initial value and an update
// over an RDom (not Halide::sum), so the schedule (Schedule.cpp, Kind::Train)
// can compute them whole and vectorize their update over the innermost pure
// dimension. Statistics and the scalar arithmetic of the optimizers and the
// running statistics are in double, rounded to f32 where they meet a tensor
// (NNTrainOps.td's header); the matrix products accumulate in f32 as
// PyTorch's BLAS does.
//
//===----------------------------------------------------------------------===//
#include "TrainLowering.h"

#include "kiln/Dialect/NN/IR/NNOps.h"

#include "llvm/ADT/TypeSwitch.h"

#include <tuple>

using namespace mlir;

namespace kiln::codegen {

namespace {

using Halide::Expr;
using Halide::Func;
using Halide::Var;

std::vector<int64_t> shapeOf(Value value) {
  auto shape = value.getType().cast<RankedTensorType>().getShape();
  return std::vector<int64_t>(shape.begin(), shape.end());
}

std::vector<Var> makeVars(size_t rank) {
  std::vector<Var> vars;
  for (size_t i = 0; i < rank; ++i)
    vars.emplace_back("d" + std::to_string(i));
  return vars;
}

std::vector<Expr> toExprs(const std::vector<Var> &vars) {
  return std::vector<Expr>(vars.begin(), vars.end());
}

std::pair<int, int> pairOf(ArrayAttr array) {
  return {static_cast<int>(array[0].cast<IntegerAttr>().getInt()),
          static_cast<int>(array[1].cast<IntegerAttr>().getInt())};
}

Expr f64(Expr e) { return Halide::cast<double>(e); }
Expr f32(Expr e) { return Halide::cast<float>(e); }

class TrainBuilder {
public:
  TrainBuilder(Operation *op, const TrainContext &context) : op(op), c(context) {}

  FailureOr<std::vector<Func>> build();

private:
  /// A Func the schedule computes whole, of tensor shape `shape`.
  Func root(StringRef role, std::vector<int64_t> shape) {
    Func f(c.nameFor(role));
    c.layers->push_back(LayerFuncs{LayerFuncs::Kind::Train, f.name(), f, {}, shape, 0});
    return f;
  }
  Func rootLike(StringRef role, Value value) { return root(role, shapeOf(value)); }
  /// The update stage's Func of `count` tensors shaped as `result` that
  /// its one update stores over their old values (inPlaceState): a pure
  /// definition of undef, so that the old values are the output buffers'
  /// (Halide's in-place form), which the update reads from the Func itself.
  Func inPlace(StringRef role, Value result, const std::vector<Var> &vars, int count) {
    Func f = rootLike(role, result);
    Halide::Type type = result.getType().cast<mlir::ShapedType>().getElementType().isF32()
                            ? Halide::Float(32)
                            : Halide::Int(64);
    std::vector<Expr> undefined(count, Halide::undef(type));
    if (count == 1)
      f(vars) = undefined[0];
    else
      f(vars) = Halide::Tuple(undefined);
    return f;
  }
  /// Whether `value`'s one use is a forward activation.
  static bool onlyFeedsActivation(Value value) {
    return value.hasOneUse() &&
           isa<nn::ReluOp, nn::SigmoidOp, nn::TanhOp>(*value.getUsers().begin());
  }
  /// The Func of `value`, a matrix product: `acc`'s reduction over k (Halide
  /// dimension 0 is the vector operand's contiguous one, dimension 1 the
  /// rows of the register block), which the schedule blocks in registers.
  /// `reduction`: the extent of k (-1: the batch).
  Func matrixProduct(Value value, Func acc, int64_t reduction) {
    Func f(c.nameFor(""));
    f(acc.args()) = acc(acc.args());
    c.layers->push_back(LayerFuncs{LayerFuncs::Kind::MatrixProduct, f.name(), f, acc,
                                   shapeOf(value), reduction});
    return f;
  }
  Func in(Value value) { return c.funcOf(value); }
  Expr hyper(StringRef name, double value) { return c.hyperParameter(name, value); }
  /// Runs `f`'s loops inside `with`'s outermost one (the two have one
  /// shape and read what they share in one pass).
  Expr extent(int64_t dim) { return dim < 0 ? c.batch : Expr(static_cast<int>(dim)); }
  /// An RDom over the Halide dimensions of `shape` (tensor order) except
  /// `keep` (Halide dimension indices), innermost first; `at` gets, per
  /// Halide dimension, the RVar, or the pure Var `vars[d]` for a kept one.
  Halide::RDom over(const std::vector<int64_t> &shape, std::vector<int> keep,
                    const std::vector<Var> &vars, std::vector<Expr> &at, StringRef role) {
    size_t rank = shape.size();
    Halide::Region region;
    std::vector<int> reduced;
    for (size_t d = 0; d < rank; ++d)
      if (!llvm::is_contained(keep, static_cast<int>(d))) {
        region.push_back({0, extent(shape[rank - 1 - d])});
        reduced.push_back(static_cast<int>(d));
      }
    Halide::RDom r(region, c.nameFor(role));
    at.assign(rank, Expr());
    size_t next = 0;
    for (size_t d = 0; d < rank; ++d)
      at[d] = next < reduced.size() && reduced[next] == static_cast<int>(d) ? Expr(r[next++])
                                                                           : Expr(vars[d]);
    return r;
  }
  /// invstd[c] = 1/sqrt(var[c] + eps) in f32 (PyTorch's CPU kernels),
  /// once per channel.
  Func inverseStd(Value var, FloatAttr eps, int64_t channels, Var ch) {
    Func invstd = root("invstd", {channels});
    invstd(ch) = 1.0f / Halide::sqrt(in(var)(ch) + static_cast<float>(eps.getValueAsDouble()));
    return invstd;
  }
  /// Values per channel (dimension 1) of `shape`: N (·L, ·H·W).
  Expr perChannel(const std::vector<int64_t> &shape) {
    Expr n = extent(shape[0]);
    for (size_t d = 2; d < shape.size(); ++d)
      n = n * static_cast<int>(shape[d]);
    return n;
  }

  FailureOr<std::vector<Func>> crossEntropy(nn::CrossEntropyOp ce);
  FailureOr<std::vector<Func>> crossEntropyGrad(nn::CrossEntropyGradOp ce);
  /// The row maximum and Σ exp(x − max) of logits (c, n), and the clamped
  /// label of each row.
  void logSumExp(Value logits, Value labels, Func &rowMax, Func &sumExp, Func &label);
  FailureOr<std::vector<Func>> batchNormStats(nn::BatchNormStatsOp op);
  FailureOr<std::vector<Func>> batchNormNormalize(nn::BatchNormNormalizeOp op);
  FailureOr<std::vector<Func>> batchNormGrad(nn::BatchNormGradOp op);
  FailureOr<std::vector<Func>> runningStats(nn::RunningStatsUpdateOp op);
  FailureOr<std::vector<Func>> linearGradInput(nn::LinearGradInputOp op);
  FailureOr<std::vector<Func>> linearGradWeight(nn::LinearGradWeightOp op);
  FailureOr<std::vector<Func>> sumAllBut(Value dy, int keep, Value result);
  FailureOr<std::vector<Func>> convGradInput(nn::Conv2DGradInputOp op);
  FailureOr<std::vector<Func>> convGradWeight(nn::Conv2DGradWeightOp op);
  FailureOr<std::vector<Func>> poolGrad(Operation *op, bool isMax);
  FailureOr<std::vector<Func>> softmaxGrad(Operation *op, bool isLog);
  FailureOr<std::vector<Func>> reshape(nn::ReshapeOp op);
  FailureOr<std::vector<Func>> elementwise(std::function<Expr(std::vector<Expr>)> f);
  FailureOr<std::vector<Func>> dropoutMask(nn::DropoutMaskOp op);
  FailureOr<std::vector<Func>> sgd(nn::SGDUpdateOp op);
  FailureOr<std::vector<Func>> adam(Operation *op, bool decoupled);

  Operation *op;
  const TrainContext &c;
};

FailureOr<std::vector<Func>> TrainBuilder::build() {
  using Result = FailureOr<std::vector<Func>>;
  return llvm::TypeSwitch<Operation *, Result>(op)
      .Case([&](nn::CrossEntropyOp o) { return crossEntropy(o); })
      .Case([&](nn::CrossEntropyGradOp o) { return crossEntropyGrad(o); })
      .Case([&](nn::BatchNormStatsOp o) { return batchNormStats(o); })
      .Case([&](nn::BatchNormNormalizeOp o) { return batchNormNormalize(o); })
      .Case([&](nn::BatchNormGradOp o) { return batchNormGrad(o); })
      .Case([&](nn::RunningStatsUpdateOp o) { return runningStats(o); })
      .Case([&](nn::LinearGradInputOp o) { return linearGradInput(o); })
      .Case([&](nn::LinearGradWeightOp o) { return linearGradWeight(o); })
      .Case([&](nn::LinearGradBiasOp o) {
        // db[o] = Σ dY over every dimension but the last.
        return sumAllBut(o.output_grad(), 0, o.bias_grad());
      })
      .Case([&](nn::Conv2DGradInputOp o) { return convGradInput(o); })
      .Case([&](nn::Conv2DGradWeightOp o) { return convGradWeight(o); })
      .Case([&](nn::Conv2DGradBiasOp o) {
        // db[o] = Σ_{n, h, w} dY[n, o, h, w]: Halide dimension 2 is kept.
        return sumAllBut(o.output_grad(), 2, o.bias_grad());
      })
      .Case([&](nn::ReluGradOp) {
        // threshold_backward(dy, y, 0): a select, so a NaN or infinite dy
        // where y <= 0 still gives 0; a NaN y passes dy.
        return elementwise([](std::vector<Expr> a) {
          return Halide::select(a[1] <= 0.0f && !isNan(a[1]), 0.0f, a[0]);
        });
      })
      .Case([&](nn::SigmoidGradOp) {
        return elementwise([](std::vector<Expr> a) { return a[0] * (1.0f - a[1]) * a[1]; });
      })
      .Case([&](nn::TanhGradOp) {
        return elementwise([](std::vector<Expr> a) { return a[0] * (1.0f - a[1] * a[1]); });
      })
      .Case([&](nn::AvgPool2DGradOp) { return poolGrad(op, /*isMax=*/false); })
      .Case([&](nn::MaxPool2DGradOp) { return poolGrad(op, /*isMax=*/true); })
      .Case([&](nn::SoftmaxGradOp) { return softmaxGrad(op, /*isLog=*/false); })
      .Case([&](nn::LogSoftmaxGradOp) { return softmaxGrad(op, /*isLog=*/true); })
      .Case([&](nn::ReshapeOp o) { return reshape(o); })
      .Case([&](nn::MulOp) {
        return elementwise([](std::vector<Expr> a) { return a[0] * a[1]; });
      })
      .Case([&](nn::DropoutMaskOp o) { return dropoutMask(o); })
      .Case([&](nn::IncrementOp o) -> Result {
        if (!c.inPlace) {
          Func out = rootLike("", o.output());
          out() = in(o.input())() + Halide::cast<int64_t>(1);
          return std::vector<Func>{out};
        }
        Func out = inPlace("", o.output(), {}, 1);
        out() = out() + Halide::cast<int64_t>(1);
        return std::vector<Func>{out};
      })
      .Case([&](nn::SGDUpdateOp o) { return sgd(o); })
      .Case([&](nn::AdamUpdateOp) { return adam(op, /*decoupled=*/false); })
      .Case([&](nn::AdamWUpdateOp) { return adam(op, /*decoupled=*/true); })
      .Default([&](Operation *) -> Result {
        return LogicalResult(op->emitError("code generation does not support this op"));
      });
}

void TrainBuilder::logSumExp(Value logits, Value labels, Func &rowMax, Func &sumExp,
                             Func &label) {
  int classes = static_cast<int>(shapeOf(logits)[1]);
  Func x = in(logits);
  Var cls("c"), n("n");
  Halide::RDom r(0, classes, c.nameFor("rc"));
  rowMax = root("max", {-1});
  rowMax(n) = x(0, n);
  rowMax(n) = Halide::max(rowMax(n), x(r, n));
  // exp of at most 0: no overflow for logits of ±1e4 (Halide's float exp
  // is exact to 0 below -88.7, and the argument never reaches the range
  // where its 32-bit reduction fails, since both terms are finite floats of
  // one row).
  sumExp = root("sum_exp", {-1});
  sumExp(n) = 0.0f;
  sumExp(n) += Halide::exp(x(r, n) - rowMax(n));
  label = Func(c.nameFor("label"));
  // A label outside [0, C) is the runtime's to refuse (NNTrainOps.td); the
  // clamp only keeps the read in bounds.
  label(n) = Halide::clamp(Halide::cast<int>(in(labels)(n)), 0, classes - 1);
  (void)cls;
}

// loss = (1/N) Σ_i (m_i + log Σ_c exp(x[i, c] − m_i) − x[i, label_i]);
// correct = #{i : argmax_c x[i, c] == label_i}, the FIRST maximum on ties
// and the first NaN, as torch.argmax (which takes NaN for the maximum).
FailureOr<std::vector<Func>> TrainBuilder::crossEntropy(nn::CrossEntropyOp ce) {
  Func rowMax, sumExp, label;
  logSumExp(ce.logits(), ce.labels(), rowMax, sumExp, label);
  Func x = in(ce.logits());
  int classes = static_cast<int>(shapeOf(ce.logits())[1]);
  Var n("n");
  Func rowLoss(c.nameFor("row_loss"));
  // −log_softmax as PyTorch rounds it, −((x − max) − log Σ): strict, since
  // Halide's simplifier would otherwise reassociate the float terms (see
  // Builder::softmax in Lowering.cpp).
  rowLoss(n) = -Halide::strict_float((x(label(n), n) - rowMax(n)) - Halide::log(sumExp(n)));
  Halide::RDom rn(0, c.batch, c.nameFor("rn"));
  Func loss = rootLike("loss", ce.loss());
  Func total(c.nameFor("loss_sum"));
  total() = Halide::cast<double>(0);
  total() += f64(rowLoss(rn));
  c.layers->push_back(LayerFuncs{LayerFuncs::Kind::Train, total.name(), total, {}, {}, 0});
  loss() = f32(total() / f64(c.batch));

  Func best = root("argmax", {-1});
  best(n) = Halide::Tuple(0, x(0, n));
  if (classes > 1) {
    Halide::RDom r(1, classes - 1, c.nameFor("ra"));
    Expr v = x(r, n), current = best(n)[1];
    Expr take = v > current || (isNan(v) && !isNan(current));
    best(n) = Halide::Tuple(Halide::select(take, r.x, best(n)[0]),
                            Halide::select(take, v, current));
  }
  Func correct = rootLike("correct", ce.correct());
  correct() = Halide::cast<int64_t>(0);
  correct() += Halide::cast<int64_t>(best(rn)[0] == label(rn));
  return std::vector<Func>{loss, correct};
}

// dlogits[i, c] = (exp(x[i, c] − m_i) / Σ − [c == label_i]) / N.
FailureOr<std::vector<Func>> TrainBuilder::crossEntropyGrad(nn::CrossEntropyGradOp ce) {
  Func rowMax, sumExp, label;
  logSumExp(ce.logits(), ce.labels(), rowMax, sumExp, label);
  Func x = in(ce.logits());
  Var cls("c"), n("n");
  Func dx = rootLike("", ce.logits_grad());
  Expr softmax = Halide::exp(x(cls, n) - rowMax(n)) / sumExp(n);
  dx(cls, n) = (softmax - Halide::select(cls == label(n), 1.0f, 0.0f)) / f32(c.batch);
  return std::vector<Func>{dx};
}

// mean[c] = Σ x / n, var[c] = Σ (x − mean[c])² / n (biased), the two-pass
// formula, accumulated in double: the statistics of channels whose mean is
// 1e4 keep their digits.
FailureOr<std::vector<Func>> TrainBuilder::batchNormStats(nn::BatchNormStatsOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  size_t rank = shape.size();
  Func x = in(op.input());
  std::vector<Var> vars = makeVars(rank);
  Var ch = vars[rank - 2];
  std::vector<Expr> at;
  Halide::RDom r = over(shape, {static_cast<int>(rank - 2)}, vars, at, "r");
  Expr n = f64(perChannel(shape));
  Func sum = root("sum", {shape[1]}), meanD(c.nameFor("mean_f64"));
  sum(ch) = Halide::cast<double>(0);
  sum(ch) += f64(x(at));
  meanD(ch) = sum(ch) / n;
  Func squares = root("squares", {shape[1]});
  squares(ch) = Halide::cast<double>(0);
  Expr centered = f64(x(at)) - meanD(ch);
  squares(ch) += centered * centered;
  Func mean = rootLike("mean", op.mean()), var = rootLike("var", op.var());
  mean(ch) = f32(meanD(ch));
  var(ch) = f32(squares(ch) / n);
  return std::vector<Func>{mean, var};
}

// y = (x − mean[c]) · invstd[c] · weight[c] + bias[c], invstd = 1/sqrt(var + eps).
FailureOr<std::vector<Func>> TrainBuilder::batchNormNormalize(nn::BatchNormNormalizeOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  size_t rank = shape.size();
  std::vector<Var> vars = makeVars(rank);
  Var ch = vars[rank - 2];
  Func invstd = inverseStd(op.var(), op.epsAttr(), shape[1], ch);
  Expr y = (in(op.input())(vars) - in(op.mean())(ch)) * invstd(ch);
  if (op.weight())
    y = y * in(op.weight())(ch) + in(op.bias())(ch);
  // Followed by its activation alone, it is computed inside the
  // activation's loop (the backward pass reads the activation's output and
  // BatchNorm's input, never this).
  Func out = onlyFeedsActivation(op.output()) ? Func(c.nameFor("")) : rootLike("", op.output());
  out(vars) = y;
  return std::vector<Func>{out};
}

// dx = γ · invstd · (dy − mean(dy) − x̂ · mean(dy · x̂)), dγ = Σ dy · x̂,
// dβ = Σ dy; the sums in double.
FailureOr<std::vector<Func>> TrainBuilder::batchNormGrad(nn::BatchNormGradOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  size_t rank = shape.size();
  std::vector<Var> vars = makeVars(rank);
  Var ch = vars[rank - 2];
  Func x = in(op.input()), dy = in(op.output_grad()), mean = in(op.mean());
  Func invstd = inverseStd(op.var(), op.epsAttr(), shape[1], ch);
  std::vector<Expr> at;
  Halide::RDom r = over(shape, {static_cast<int>(rank - 2)}, vars, at, "r");
  auto xhat = [&](const std::vector<Expr> &p) { return (x(p) - mean(ch)) * invstd(ch); };
  Func sumDy = root("sum_dy", {shape[1]}), sumDyXhat = root("sum_dy_xhat", {shape[1]});
  sumDy(ch) = Halide::cast<double>(0);
  sumDy(ch) += f64(dy(at));
  sumDyXhat(ch) = Halide::cast<double>(0);
  sumDyXhat(ch) += f64(dy(at)) * f64(xhat(at));
  Expr n = f64(perChannel(shape));
  Func meanDy(c.nameFor("mean_dy")), meanDyXhat(c.nameFor("mean_dy_xhat"));
  meanDy(ch) = f32(sumDy(ch) / n);
  meanDyXhat(ch) = f32(sumDyXhat(ch) / n);
  Expr gamma = op.weight() ? Expr(in(op.weight())(ch)) : Expr(1.0f);
  Func dx = rootLike("", op.input_grad());
  std::vector<Expr> here = toExprs(vars);
  dx(vars) = gamma * invstd(ch) * (dy(vars) - meanDy(ch) - xhat(here) * meanDyXhat(ch));
  Func dGamma = rootLike("weight_grad", op.weight_grad());
  Func dBeta = rootLike("bias_grad", op.bias_grad());
  dGamma(ch) = f32(sumDyXhat(ch));
  dBeta(ch) = f32(sumDy(ch));
  return std::vector<Func>{dx, dGamma, dBeta};
}

// running' = (1 − m) · running + m · batch (the variance unbiased by
// n/(n − 1)), m = momentum or 1/num_batches_tracked' (momentum=None), in
// double, rounded to f32 once, as PyTorch's CPU kernel (double accumulators).
FailureOr<std::vector<Func>> TrainBuilder::runningStats(nn::RunningStatsUpdateOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  Var ch("c");
  // In place (the update stage): each Func's old values are its own.
  Func count = inPlace("num_batches_tracked", op.new_num_batches_tracked(), {}, 1);
  count() = count() + Halide::cast<int64_t>(1);
  // Read from another Func, count() is its new value.
  Expr m = op.momentum() ? Expr(op.momentumAttr().getValueAsDouble())
                         : Expr(1.0) / f64(count());
  Expr n = f64(perChannel(shape));
  Func mean = inPlace("running_mean", op.new_running_mean(), {ch}, 1);
  Func var = inPlace("running_var", op.new_running_var(), {ch}, 1);
  mean(ch) = f32((Expr(1.0) - m) * f64(mean(ch)) + m * f64(in(op.mean())(ch)));
  var(ch) = f32((Expr(1.0) - m) * f64(var(ch)) + m * f64(in(op.var())(ch)) * n / (n - Expr(1.0)));
  return std::vector<Func>{mean, var, count};
}

// dX[rows, i] = Σ_o dY[rows, o] · W[o, i].
FailureOr<std::vector<Func>> TrainBuilder::linearGradInput(nn::LinearGradInputOp op) {
  std::vector<int64_t> shape = shapeOf(op.input_grad());
  int out = static_cast<int>(shapeOf(op.weight())[0]);
  std::vector<Var> vars = makeVars(shape.size());
  Halide::RDom o(0, out, c.nameFor("ro"));
  std::vector<Expr> dyAt = toExprs(vars);
  dyAt[0] = o;
  // Vectors along i (W's rows are contiguous in i), rows of the block
  // along the batch.
  Func acc(c.nameFor("acc"));
  acc(vars) = 0.0f;
  acc(vars) += in(op.output_grad())(dyAt) * in(op.weight())(vars[0], o);
  return std::vector<Func>{matrixProduct(op.input_grad(), acc, out)};
}

// dW[o, i] = Σ_rows dY[row, o] · X[row, i], over every leading dimension.
FailureOr<std::vector<Func>> TrainBuilder::linearGradWeight(nn::LinearGradWeightOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  std::vector<Var> vars = makeVars(shape.size());
  std::vector<Expr> at;
  Halide::RDom r = over(shape, {0}, vars, at, "r");
  Var i("i"), o("o");
  std::vector<Expr> xAt = at, dyAt = at;
  xAt[0] = i;
  dyAt[0] = o;
  // Vectors along i (X's rows are contiguous in i), rows of the block
  // along the output channels o.
  Func acc(c.nameFor("acc"));
  acc(i, o) = 0.0f;
  acc(i, o) += in(op.output_grad())(dyAt) * in(op.input())(xAt);
  (void)r;
  return std::vector<Func>{matrixProduct(op.weight_grad(), acc, -1)};
}

// Σ dY over every Halide dimension but `keep` (a bias gradient).
FailureOr<std::vector<Func>> TrainBuilder::sumAllBut(Value dyValue, int keep, Value result) {
  std::vector<int64_t> shape = shapeOf(dyValue);
  std::vector<Var> vars = makeVars(shape.size());
  std::vector<Expr> at;
  Halide::RDom r = over(shape, {keep}, vars, at, "r");
  Func db = rootLike("", result);
  db(vars[keep]) = 0.0f;
  db(vars[keep]) += in(dyValue)(at);
  (void)r;
  return std::vector<Func>{db};
}

// dX[n, i, h, w] = Σ_{o, kh, kw} dY[n, o, oh, ow] · W[o, i, kh, kw] over
// oh·sh − ph + kh·dh = h, ow·sw − pw + kw·dw = w (p the begin padding; the
// end padding only decides OH and OW; d the dilation): a convolution of
// dY, zero-padded (a Func computed whole over the region the taps read)
// and, with a stride, with stride − 1 zeros between its elements, by the
// transposed kernel: position w + pw − kw·dw of the upsampled dY. The
// accumulator is a convolution's, scheduled as the forward's
// (Kind::Conv2D).
FailureOr<std::vector<Func>> TrainBuilder::convGradInput(nn::Conv2DGradInputOp op) {
  std::vector<int64_t> wShape = shapeOf(op.weight()), dyShape = shapeOf(op.output_grad());
  int outChannels = static_cast<int>(wShape[0]), kh = static_cast<int>(wShape[2]),
      kw = static_cast<int>(wShape[3]);
  int oh = static_cast<int>(dyShape[2]), ow = static_cast<int>(dyShape[3]);
  nn::WindowSpec window = op.window();
  int sh = static_cast<int>(window.stride[0]), sw = static_cast<int>(window.stride[1]);
  int ph = static_cast<int>(window.padBegin(0)), pw = static_cast<int>(window.padBegin(1));
  int dh = static_cast<int>(window.dilationOf(0)), dw = static_cast<int>(window.dilationOf(1));
  Var x("d0"), y("d1"), i("d2"), n("d3");
  Halide::RDom r(0, kw, 0, kh, 0, outChannels, c.nameFor("r"));
  Expr tx = x + pw - r.x * dw, ty = y + ph - r.y * dh;
  Func dy = in(op.output_grad());
  Func padded = root("dy_padded", dyShape);
  padded(x, y, i, n) = Halide::BoundaryConditions::constant_exterior(
      dy, 0.0f, {{0, ow}, {0, oh}})(x, y, i, n);
  Func source = padded;
  if (sh > 1 || sw > 1) {
    // dY with stride − 1 zeros between its elements, computed whole, so
    // that the accumulator is the stride-1 one. Selecting the taps the
    // stride divides inside the accumulator instead (dY read at clamped
    // positions under the select) made Halide 14 emit an aligned vector
    // spill to a misaligned stack slot, a crash: stride 2, an 8x7 input, a
    // 3x2 kernel (GradientCheck.Conv2DStride2OddWidth). The zeros cost
    // sh·sw times the multiply-adds of the taps that read something; the
    // sums are the same, in the same order.
    Func upsampled = root("dy_upsampled", dyShape);
    Expr divides = x % sw == 0 && y % sh == 0;
    upsampled(x, y, i, n) = Halide::select(divides, padded(x / sw, y / sh, i, n), 0.0f);
    source = upsampled;
  }
  Expr tap = source(tx, ty, r.z, n);
  Func acc(c.nameFor("acc"));
  acc(x, y, i, n) = 0.0f;
  acc(x, y, i, n) += tap * in(op.weight())(r.x, r.y, i, r.z);
  Func dx(c.nameFor(""));
  dx(x, y, i, n) = acc(x, y, i, n);
  LayerFuncs layer{LayerFuncs::Kind::Conv2D, dx.name(), dx, acc, shapeOf(op.input_grad()),
                   static_cast<int64_t>(outChannels) * kh * kw};
  // dY is read through its zero exterior, so whole vectors past the row's
  // end read zeros (Schedule.cpp's scheduleConv).
  layer.roundUpRows = true;
  layer.reach[0] = (kw - 1) * dw + 1;
  layer.reach[1] = (kh - 1) * dh + 1;
  c.layers->push_back(layer);
  return std::vector<Func>{dx};
}

// dW[o, i, kh, kw] = Σ_{n, oh, ow} dY[n, o, oh, ow] · Xpad[n, i, oh·sh + kh·dh − ph, ow·sw + kw·dw − pw],
// summed in V partial sums along ow (V: the widest vector, down to 4
// lanes, that divides the output's width; else 1), which the schedule
// keeps in vector registers for all the taps of one (o, i), then added.
FailureOr<std::vector<Func>> TrainBuilder::convGradWeight(nn::Conv2DGradWeightOp op) {
  std::vector<int64_t> xShape = shapeOf(op.input()), dyShape = shapeOf(op.output_grad());
  nn::WindowSpec window = op.window();
  int sh = static_cast<int>(window.stride[0]), sw = static_cast<int>(window.stride[1]);
  int ph = static_cast<int>(window.padBegin(0)), pw = static_cast<int>(window.padBegin(1));
  int dilationH = static_cast<int>(window.dilationOf(0)),
      dilationW = static_cast<int>(window.dilationOf(1));
  std::vector<int64_t> wShape = shapeOf(op.weight_grad());
  Func x = in(op.input());
  Var kx("d0"), ky("d1"), i("d2"), o("d3"), v("v");
  if (readsOutside(window, wShape[2], wShape[3], xShape, dyShape)) {
    Func padded = root("x_padded", xShape);
    padded(kx, ky, i, o) = Halide::BoundaryConditions::constant_exterior(
        x, 0.0f, {{0, static_cast<int>(xShape[3])}, {0, static_cast<int>(xShape[2])}})(kx, ky, i, o);
    x = padded;
  }
  int ow = static_cast<int>(dyShape[3]), oh = static_cast<int>(dyShape[2]);
  if (wShape[0] % c.lanes == 0) {
    // Whole vectors of output channels: dY with channels innermost, then
    // per (i, tap) a vector of o summed over the batch and image, one dY
    // vector and one X element per pixel (LeNet's conv2: 16 channels, 8-wide
    // rows, which partial sums along the row ran in half vectors).
    Func dyLast = root("dy_channels_last", {dyShape[0], dyShape[2], dyShape[3], dyShape[1]});
    Var ch("d0"), px("d1"), py("d2"), pn("d3");
    dyLast(ch, px, py, pn) = in(op.output_grad())(px, py, ch, pn);
    Halide::RDom r(0, ow, 0, oh, 0, c.batch, c.nameFor("r"));
    Func acc(c.nameFor("acc"));
    acc(o, kx, ky, i) = 0.0f;
    acc(o, kx, ky, i) += dyLast(o, r.x, r.y, r.z) *
                         x(r.x * sw + kx * dilationW - pw, r.y * sh + ky * dilationH - ph, i, r.z);
    Func dw(c.nameFor(""));
    dw(kx, ky, i, o) = acc(o, kx, ky, i);
    LayerFuncs layer{LayerFuncs::Kind::ConvWeightGrad, dw.name(), dw, acc, wShape,
                     static_cast<int64_t>(ow) * oh};
    layer.channelVectors = true;
    c.layers->push_back(layer);
    return std::vector<Func>{dw};
  }
  int lanes = 1;
  for (int width = c.lanes; width >= 4 && lanes == 1; width /= 2)
    if (ow % width == 0)
      lanes = width;
  Halide::RDom r(0, ow / lanes, 0, oh, 0, c.batch, c.nameFor("r"));
  Expr column = r.x * lanes + v;
  Func partial(c.nameFor("partial"));
  partial(v, kx, ky, i, o) = 0.0f;
  partial(v, kx, ky, i, o) += in(op.output_grad())(column, r.y, o, r.z) *
                              x(column * sw + kx * dilationW - pw, r.y * sh + ky * dilationH - ph, i, r.z);
  Halide::RDom rv(0, lanes, c.nameFor("rv"));
  Func dw(c.nameFor(""));
  dw(kx, ky, i, o) = 0.0f;
  dw(kx, ky, i, o) += partial(rv, kx, ky, i, o);
  c.layers->push_back(LayerFuncs{LayerFuncs::Kind::ConvWeightGrad, dw.name(), dw, partial,
                                 shapeOf(op.weight_grad()),
                                 static_cast<int64_t>(ow) * oh * lanes});
  return std::vector<Func>{dw};
}

// Average: dX[h, w] = Σ over the windows containing (h, w) of dY / divisor
// (KH·KW for whole windows; nn.avg_pool2d's divisor of the window's
// position where windows read outside the input). Max: each window's dY
// goes to the element max_pool2d_with_indices returns, found by scanning
// the window's in-bounds taps in row-major order from the first one and
// taking a tap when `v > max || isnan(v)` (the first maximum on ties, the
// last NaN; a window with no tap in bounds chooses none, -1); the index is
// computed explicitly per window (not by Halide's propagate_adjoints, which
// sends a tie to both operands), then each input element sums the windows
// that chose it. The tap (ty, tx) of the window at (oy, ox) reads
// (oy·sh + ty·dh − ph, ox·sw + tx·dw − pw).
FailureOr<std::vector<Func>> TrainBuilder::poolGrad(Operation *op, bool isMax) {
  auto [kh, kw] = pairOf(op->getAttrOfType<ArrayAttr>("kernel_size"));
  nn::WindowSpec window = nn::windowOf(op);
  int sh = static_cast<int>(window.stride[0]), sw = static_cast<int>(window.stride[1]);
  int ph = static_cast<int>(window.padBegin(0)), pw = static_cast<int>(window.padBegin(1));
  int dh = static_cast<int>(window.dilationOf(0)), dw = static_cast<int>(window.dilationOf(1));
  std::vector<int64_t> dyShape = shapeOf(op->getOperand(0)), xShape = shapeOf(op->getResult(0));
  int oh = static_cast<int>(dyShape[2]), ow = static_cast<int>(dyShape[3]);
  int height = static_cast<int>(xShape[2]), width = static_cast<int>(xShape[3]);
  bool outside = readsOutside(window, kh, kw, xShape, dyShape);
  Func dy = in(op->getOperand(0));
  Var x("d0"), y("d1"), ch("d2"), n("d3");
  // Small windows written out tap by tap, large ones over an RDom
  // (kMaxUnrolledWindowTaps); both visit the taps in row-major order.
  bool unrolled = static_cast<int64_t>(kh) * kw <= kMaxUnrolledWindowTaps;
  Halide::RDom taps;
  if (!unrolled)
    taps = Halide::RDom(0, kw, 0, kh, c.nameFor("taps"));
  Func chosen;
  if (isMax) {
    Func input = in(op->getOperand(1));
    chosen = root("argmax", dyShape);
    // One tap of the scan: taken where it is in bounds and the first so, a
    // larger value or a NaN.
    auto scan = [&](Expr ty, Expr tx, Expr best, Expr index) -> std::pair<Expr, Expr> {
      Expr ix = x * sw + tx * dw - pw, iy = y * sh + ty * dh - ph;
      Expr v = outside ? input(Halide::clamp(ix, 0, width - 1),
                               Halide::clamp(iy, 0, height - 1), ch, n)
                       : input(ix, iy, ch, n);
      Expr take = index < 0 || v > best || isNan(v);
      if (outside)
        take = take && ix >= 0 && ix < width && iy >= 0 && iy < height;
      return {Halide::select(take, v, best), Halide::select(take, ty * kw + tx, index)};
    };
    if (unrolled) {
      Expr best = -INFINITY, index = -1;
      for (int ty = 0; ty < kh; ++ty)
        for (int tx = 0; tx < kw; ++tx)
          std::tie(best, index) = scan(ty, tx, best, index);
      chosen(x, y, ch, n) = index;
    } else {
      Func window(c.nameFor("argmax_scan"));
      window(x, y, ch, n) = Halide::Tuple(-INFINITY, -1);
      auto [best, index] = scan(taps.y, taps.x, window(x, y, ch, n)[0], window(x, y, ch, n)[1]);
      window(x, y, ch, n) = Halide::Tuple(best, index);
      chosen(x, y, ch, n) = window(x, y, ch, n)[1];
    }
  }
  bool includePad = op->hasAttr("count_include_pad");
  float scale = 1.0f / static_cast<float>(kh * kw);
  // What the window at the output position that tap (ty, tx) of input
  // (x, y) falls in sends it: 0 where there is no such window.
  auto share = [&](Expr ty, Expr tx) {
    Expr offsetX = x + pw - tx * dw, offsetY = y + ph - ty * dh;
    Expr px = offsetX / sw, py = offsetY / sh;
    Expr valid = px >= 0 && px < ow && py >= 0 && py < oh;
    if (sw > 1)
      valid = valid && offsetX % sw == 0;
    if (sh > 1)
      valid = valid && offsetY % sh == 0;
    Expr cx = Halide::clamp(px, 0, ow - 1), cy = Halide::clamp(py, 0, oh - 1);
    if (isMax)
      valid = valid && chosen(cx, cy, ch, n) == ty * kw + tx;
    Expr tap = dy(cx, cy, ch, n);
    if (!isMax)
      tap = outside ? tap / Halide::cast<float>(
                                poolDivisorExtent(cy, window, 0, kh, height, includePad) *
                                poolDivisorExtent(cx, window, 1, kw, width, includePad))
                    : tap * scale;
    return Halide::select(valid, tap, 0.0f);
  };
  Expr sum = 0.0f;
  if (unrolled) {
    for (int ty = 0; ty < kh; ++ty)
      for (int tx = 0; tx < kw; ++tx)
        sum = sum + share(ty, tx);
  } else {
    sum = Halide::sum(share(taps.y, taps.x), c.nameFor("window_sum"));
  }
  Func dx = rootLike("", op->getResult(0));
  dx(x, y, ch, n) = sum;
  return std::vector<Func>{dx};
}

// softmax: dx = y · (dy − Σ_axis dy · y); log_softmax: dx = dy − exp(y) ·
// Σ_axis dy (PyTorch's _softmax_backward_data / _log_softmax_backward_data),
// the sums in f32 as PyTorch's CPU kernels.
FailureOr<std::vector<Func>> TrainBuilder::softmaxGrad(Operation *op, bool isLog) {
  Value dyValue = op->getOperand(0), yValue = op->getOperand(1);
  std::vector<int64_t> shape = shapeOf(yValue);
  size_t rank = shape.size();
  int64_t axis = op->getAttrOfType<IntegerAttr>("axis").getInt();
  int dim = static_cast<int>(rank - 1 - axis); // Halide's order
  std::vector<Var> vars = makeVars(rank), rest;
  std::vector<int64_t> restShape;
  for (size_t d = 0; d < rank; ++d)
    if (static_cast<int>(d) != dim)
      rest.push_back(vars[d]);
  for (size_t d = 0; d < rank; ++d)
    if (static_cast<int64_t>(d) != axis)
      restShape.push_back(shape[d]);
  Func dy = in(dyValue), y = in(yValue);
  std::vector<Expr> at = toExprs(vars);
  Halide::RDom r(0, extent(shape[axis]), c.nameFor("r"));
  at[dim] = r;
  Func sum = root("sum", restShape);
  sum(rest) = 0.0f;
  sum(rest) += isLog ? dy(at) : dy(at) * y(at);
  Func dx = rootLike("", op->getResult(0));
  if (isLog)
    dx(vars) = dy(vars) - expNonPositive(y(vars)) * sum(rest);
  else
    dx(vars) = y(vars) * (dy(vars) - sum(rest));
  return std::vector<Func>{dx};
}

// The same row-major elements of one sample in another shape.
FailureOr<std::vector<Func>> TrainBuilder::reshape(nn::ReshapeOp op) {
  std::vector<int64_t> from = shapeOf(op.input()), to = shapeOf(op.output());
  std::vector<Var> vars = makeVars(to.size());
  Expr flat = 0;
  for (size_t d = 1; d < to.size(); ++d)
    flat = flat * static_cast<int>(to[d]) + vars[to.size() - 1 - d];
  std::vector<Expr> at(from.size());
  at[from.size() - 1] = vars.back();
  for (size_t d = from.size() - 1; d >= 1; --d) {
    int extent = static_cast<int>(from[d]);
    at[from.size() - 1 - d] = d == 1 ? flat : flat % extent;
    flat = flat / extent;
  }
  Func out = rootLike("", op.output());
  out(vars) = in(op.input())(at);
  return std::vector<Func>{out};
}

FailureOr<std::vector<Func>> TrainBuilder::elementwise(std::function<Expr(std::vector<Expr>)> f) {
  std::vector<Var> vars = makeVars(shapeOf(op->getResult(0)).size());
  std::vector<Expr> args;
  for (Value operand : op->getOperands())
    args.push_back(in(operand)(vars));
  // An activation's gradient read only by BatchNorm's gradient is computed
  // inside its loops (a select or two multiplies, where a Func of its own
  // costs a pass over the tensor and its memory).
  Value result = op->getResult(0);
  bool inline_ = result.hasOneUse() && isa<nn::BatchNormGradOp>(*result.getUsers().begin()) &&
                 isa<nn::ReluGradOp, nn::SigmoidGradOp, nn::TanhGradOp>(op);
  Func out = inline_ ? Func(c.nameFor("")) : rootLike("", result);
  out(vars) = f(args);
  return std::vector<Func>{out};
}

/// Philox4x32-10 (Salmon et al., Random123): the first 32-bit word of the
/// block for `counter` under `key`.
Expr philoxFirstWord(std::array<Expr, 4> ctr, std::array<Expr, 2> key) {
  const uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  auto u32 = [](Expr e) { return Halide::cast<uint32_t>(e); };
  auto mulhilo = [&](uint32_t a, Expr b, Expr &hi, Expr &lo) {
    Expr product = Halide::cast<uint64_t>(b) * Expr(static_cast<uint64_t>(a));
    hi = u32(product >> 32);
    lo = u32(product);
  };
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] = key[0] + Expr(w0);
      key[1] = key[1] + Expr(w1);
    }
    Expr hi0, lo0, hi1, lo1;
    mulhilo(m0, ctr[0], hi0, lo0);
    mulhilo(m1, ctr[2], hi1, lo1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr[0];
}

// mask = 1/(1 − p) where u >= p, else 0; u = the top 24 bits of Philox's
// first word · 2^−24 for counter (k mod 2^32, k >> 32, stream, step mod
// 2^32) under key (seed mod 2^32, seed >> 32), k the element's row-major
// index in the whole tensor.
FailureOr<std::vector<Func>> TrainBuilder::dropoutMask(nn::DropoutMaskOp op) {
  std::vector<int64_t> shape = shapeOf(op.input());
  std::vector<Var> vars = makeVars(shape.size());
  Expr k = Halide::cast<uint64_t>(vars.back());
  for (size_t d = 1; d < shape.size(); ++d)
    k = k * Expr(static_cast<uint64_t>(shape[d])) +
        Halide::cast<uint64_t>(vars[shape.size() - 1 - d]);
  uint64_t seed = static_cast<uint64_t>(op.seedAttr().getInt());
  int64_t stream = op.streamAttr().getInt();
  Expr step = Halide::cast<uint32_t>(Halide::cast<uint64_t>(in(op.step())()));
  auto u32 = [](Expr e) { return Halide::cast<uint32_t>(e); };
  Expr word = philoxFirstWord({u32(k), u32(k >> 32), Expr(static_cast<uint32_t>(stream)), step},
                              {Expr(static_cast<uint32_t>(seed)),
                               Expr(static_cast<uint32_t>(seed >> 32))});
  Expr u = Halide::cast<double>(word >> 8) * Expr(1.0 / 16777216.0);
  double p = op.pAttr().getValueAsDouble();
  float keep = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  Func mask = rootLike("", op.mask());
  mask(vars) = Halide::select(u >= Expr(p), keep, 0.0f);
  return std::vector<Func>{mask};
}

// torch.optim.SGD (foreach=False): g = grad + wd·param; b' = g on step 1,
// else μ·b + (1 − τ)·g; g = g + μ·b' (nesterov) or b'; param' = param − lr·g.
// Each Python-float factor is rounded to f32 where it meets a tensor, as
// the tensor kernels' alpha/value arguments are. lr, μ, τ and wd are the
// step's hyper-parameters (run-time arguments): PyTorch leaves a term out
// where its factor is 0 (weight decay, momentum), and so does the select on
// the argument, which keeps a NaN or infinite parameter's result PyTorch's.
// Whether there are momentum buffers at all, and nesterov, are the op's.
FailureOr<std::vector<Func>> TrainBuilder::sgd(nn::SGDUpdateOp op) {
  std::vector<Var> vars = makeVars(shapeOf(op.param()).size());
  // In place (the update stage): the new parameter and buffer are stored
  // over the old ones, which the update reads from the Func itself.
  int tensors = op.momentum_buffer() ? 2 : 1;
  Func update = inPlace("update", op.new_param(), vars, tensors);
  Expr param = tensors == 1 ? Expr(update(vars)) : update(vars)[0];
  Expr g = in(op.grad())(vars);
  Expr lr = hyper("lr", op.lrAttr().getValueAsDouble());
  Expr wd = hyper("weight_decay", op.weight_decayAttr().getValueAsDouble());
  Expr mu = hyper("momentum", op.momentumAttr().getValueAsDouble());
  Expr dampening = hyper("dampening", op.dampeningAttr().getValueAsDouble());
  if (!lr.defined() || !wd.defined() || !mu.defined() || !dampening.defined())
    return failure();
  g = Halide::select(wd != Expr(0.0), g + f32(wd) * param, g);
  if (!op.momentum_buffer()) {
    update(vars) = param + f32(-lr) * g;
    return std::vector<Func>{update};
  }
  Expr first = in(op.step())() == Halide::cast<int64_t>(1);
  Expr withMomentum = mu != Expr(0.0);
  Expr old = update(vars)[1];
  Expr b = Halide::select(first, g, old * f32(mu) + f32(Expr(1.0) - dampening) * g);
  // Momentum 0 at run time: torch.optim.SGD without momentum (the buffer
  // is kept as it was).
  Expr buffer = Halide::select(withMomentum, b, old);
  g = Halide::select(withMomentum, op.nesterov() ? g + f32(mu) * b : b, g);
  update(vars) = Halide::Tuple(param + f32(-lr) * g, buffer);
  return std::vector<Func>{update, update};
}

// torch.optim.Adam / AdamW (foreach=False, non-capturable):
//   (AdamW first: param ← param · (1 − lr·wd); Adam: g = grad + wd·param)
//   m' = β₁·m + (1 − β₁)·g, v' = β₂·v + (1 − β₂)·g·g,
//   param' = param − (lr/bc1) · m' / (sqrt(v')/sqrt(bc2) + eps),
// bc1 = 1 − β₁ᵗ, bc2 = 1 − β₂ᵗ in double from the step t. lr, β₁, β₂, eps
// and wd are the step's hyper-parameters (run-time arguments).
FailureOr<std::vector<Func>> TrainBuilder::adam(Operation *op, bool decoupled) {
  Value paramV = op->getOperand(0), gradV = op->getOperand(1), mV = op->getOperand(2),
        vV = op->getOperand(3), stepV = op->getOperand(4);
  auto attr = [&](StringRef name) {
    return hyper(name, op->getAttrOfType<FloatAttr>(name).getValueAsDouble());
  };
  Expr lr = attr("lr"), beta1 = attr("beta1"), beta2 = attr("beta2"), eps = attr("eps"),
       wd = attr("weight_decay");
  if (!lr.defined() || !beta1.defined() || !beta2.defined() || !eps.defined() || !wd.defined())
    return failure();
  std::vector<Var> vars = makeVars(shapeOf(paramV).size());
  // In place (the update stage): the new parameter, m and v are stored
  // over the old ones, which the update reads from the Func itself.
  Func update = inPlace("update", op->getResult(0), vars, 3);
  Expr param = update(vars)[0], g = in(gradV)(vars);
  // AdamW's factor is exactly 1 for wd = 0, so it needs no select.
  if (decoupled)
    param = param * f32(Expr(1.0) - lr * wd);
  else
    g = Halide::select(wd != Expr(0.0), g + f32(wd) * param, g);
  Expr mNew = update(vars)[1] * f32(beta1) + f32(Expr(1.0) - beta1) * g;
  Expr vNew = update(vars)[2] * f32(beta2) + f32(Expr(1.0) - beta2) * g * g;
  // The step's scalars once per step, not per element (pow and the
  // divisions in double were half of the update's time).
  Expr t = f64(in(stepV)());
  Expr bc1 = Expr(1.0) - Halide::pow(beta1, t);
  Expr bc2 = Expr(1.0) - Halide::pow(beta2, t);
  Func stepSize = root("step_size", {}), bc2Sqrt = root("bc2_sqrt", {});
  stepSize() = f32(-(lr / bc1));
  bc2Sqrt() = f32(Halide::sqrt(bc2));
  Expr denom = Halide::sqrt(vNew) / bc2Sqrt() + f32(eps);
  update(vars) = Halide::Tuple(param + stepSize() * mNew / denom, mNew, vNew);
  return std::vector<Func>{update, update, update};
}

} // namespace

bool isTrainOp(Operation *op) {
  return isa<nn::CrossEntropyOp, nn::CrossEntropyGradOp, nn::BatchNormStatsOp,
             nn::BatchNormNormalizeOp, nn::BatchNormGradOp, nn::RunningStatsUpdateOp,
             nn::LinearGradInputOp, nn::LinearGradWeightOp, nn::LinearGradBiasOp,
             nn::Conv2DGradInputOp, nn::Conv2DGradWeightOp, nn::Conv2DGradBiasOp,
             nn::ReluGradOp, nn::SigmoidGradOp, nn::TanhGradOp, nn::AvgPool2DGradOp,
             nn::MaxPool2DGradOp, nn::SoftmaxGradOp, nn::LogSoftmaxGradOp, nn::ReshapeOp, nn::MulOp, nn::DropoutMaskOp,
             nn::IncrementOp, nn::SGDUpdateOp, nn::AdamUpdateOp, nn::AdamWUpdateOp>(op);
}

bool isUpdateOp(Operation *op) {
  return isa<nn::RunningStatsUpdateOp, nn::IncrementOp, nn::SGDUpdateOp, nn::AdamUpdateOp,
             nn::AdamWUpdateOp>(op);
}

std::vector<std::pair<unsigned, Value>> inPlaceState(Operation *op) {
  std::vector<std::pair<unsigned, Value>> pairs;
  if (auto sgd = dyn_cast<nn::SGDUpdateOp>(op)) {
    pairs.push_back({0, sgd.param()});
    if (sgd.momentum_buffer())
      pairs.push_back({1, sgd.momentum_buffer()});
  } else if (isa<nn::AdamUpdateOp, nn::AdamWUpdateOp>(op)) {
    pairs = {{0, op->getOperand(0)}, {1, op->getOperand(2)}, {2, op->getOperand(3)}};
  } else if (auto stats = dyn_cast<nn::RunningStatsUpdateOp>(op)) {
    pairs = {{0, stats.running_mean()},
             {1, stats.running_var()},
             {2, stats.num_batches_tracked()}};
  } else if (isa<nn::IncrementOp>(op)) {
    pairs = {{0, op->getOperand(0)}};
  }
  return pairs;
}

FailureOr<std::vector<Func>> buildTrainOp(Operation *op, const TrainContext &context) {
  return TrainBuilder(op, context).build();
}

} // namespace kiln::codegen

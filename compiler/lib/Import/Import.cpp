//===- Import.cpp - AST to nn dialect -------------------------------------===//
#include "kiln/Import/Import.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/Frontend/Sema.h"

#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace kiln {

using namespace ast;
using namespace mlir;

namespace {

/// The state of one layer: the values of its nn.param / nn.buffer ops.
struct LayerState {
  Value weight, bias, runningMean, runningVar, numBatchesTracked;
};

class Importer {
public:
  Importer(const Model &model, FrontendDiagnostics &diags)
      : model(model), diags(diags), context(diags.getContext()),
        builder(context) {}

  OwningOpRef<ModuleOp> run();

private:
  void declareState(const LayerDecl &layer, const std::string &path);
  Value state(StringRef key, ArrayRef<int64_t> shape, bool trainable,
              SourceLoc loc, Type elementType = {});
  Value evaluate(const Expr &expr);
  Value applyLayer(const LayerDecl &layer, const std::string &path,
                   Value input, SourceLoc callLoc);
  Value applyFunctional(const Expr &expr, Value input);
  Value softmax(StringRef kind, const std::string &path, SourceLoc callLoc,
                const std::function<InFlightDiagnostic()> &emitError, Value input,
                int64_t dim);
  /// The window of a conv2d or pool declaration; padding and dilation are
  /// left empty (the ops' defaults) where they are 0 and 1.
  nn::WindowSpec windowOf(const LayerDecl &layer);
  /// An I64ArrayAttr of `values`, or none for an empty (default) pair.
  ArrayAttr optionalPair(ArrayRef<int64_t> values) {
    return values.empty() ? ArrayAttr() : builder.getI64ArrayAttr(values);
  }
  template <typename OpTy, typename... Args>
  Value build(const std::string &path, SourceLoc callLoc,
              FailureOr<nn::Shape> shape, Args &&...args);
  std::function<InFlightDiagnostic()> errorAt(SourceLoc callLoc,
                                              const std::string &path,
                                              SourceLoc declLoc);
  DictionaryAttr trainConfigAttr();

  const Model &model;
  FrontendDiagnostics &diags;
  MLIRContext *context;
  OpBuilder builder;
  llvm::StringMap<LayerState> states;
  llvm::StringMap<Value> values;
  // Where each layer path (fc1, layer1.0) is declared, for notes.
  llvm::StringMap<SourceLoc> declLocs;
};

RankedTensorType tensorType(ArrayRef<int64_t> shape, Type elementType) {
  return RankedTensorType::get(shape, elementType);
}

ArrayRef<int64_t> shapeOf(Value value) {
  return value.getType().cast<RankedTensorType>().getShape();
}

OwningOpRef<ModuleOp> Importer::run() {
  Location fileLoc = diags.location(model.loc);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  module->getOperation()->setAttr(kModelNameAttr,
                                  builder.getStringAttr(model.name));
  if (model.hasTrain)
    module->getOperation()->setAttr(kTrainConfigAttr, trainConfigAttr());

  SmallVector<int64_t, 4> inputShape;
  for (int64_t dim : model.input->dims)
    inputShape.push_back(dim < 0 ? nn::kDynamic : dim);
  Type inputType = tensorType(inputShape, builder.getF32Type());
  builder.setInsertionPointToEnd(module->getBody());
  auto func = builder.create<FuncOp>(
      diags.location(model.forwardLoc), kForwardFunc,
      builder.getFunctionType({inputType}, {}));
  Block *entry = func.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  values[model.input->name] = entry->getArgument(0);

  for (const LayerDecl &layer : model.layers)
    declareState(layer, layer.name);

  unsigned errorsBefore = diags.errorCount();
  for (const Stmt &stmt : model.forward) {
    Value value = evaluate(*stmt.value);
    if (!stmt.isReturn()) {
      values[stmt.name] = value; // null: poisoned by an error already reported
      continue;
    }
    if (!value)
      break;
    builder.create<ReturnOp>(diags.location(stmt.loc), value);
    func.setType(builder.getFunctionType({inputType}, {value.getType()}));
    break;
  }
  if (diags.errorCount() != errorsBefore || diags.errorCount() > 0)
    return nullptr;
  return module;
}

Value Importer::state(StringRef key, ArrayRef<int64_t> shape, bool trainable,
                      SourceLoc loc, Type elementType) {
  Location location = NameLoc::get(builder.getStringAttr(key),
                                   diags.location(loc));
  Type type = tensorType(shape, elementType ? elementType : builder.getF32Type());
  if (trainable)
    return builder.create<nn::ParamOp>(location, type, key, ElementsAttr());
  return builder.create<nn::BufferOp>(location, type, key, ElementsAttr());
}

/// Creates a layer's parameters and buffers with PyTorch's keys and order.
void Importer::declareState(const LayerDecl &layer, const std::string &path) {
  declLocs[path] = layer.loc;
  if (layer.kind == "sequential") {
    for (const LayerDecl &member : layer.members)
      declareState(member, path + "." + member.name);
    return;
  }
  LayerState &s = states[path];
  SourceLoc loc = layer.loc;
  if (layer.kind == "linear") {
    int64_t in = layer.intAttr("in_features"), out = layer.intAttr("out_features");
    s.weight = state(path + ".weight", {out, in}, true, loc);
    if (layer.boolAttr("bias"))
      s.bias = state(path + ".bias", {out}, true, loc);
  } else if (layer.kind == "conv2d") {
    const AttrValue &kernel = layer.attr("kernel_size");
    int64_t out = layer.intAttr("out_channels");
    s.weight = state(path + ".weight",
                     {out, layer.intAttr("in_channels"), kernel.ints[0], kernel.ints[1]},
                     true, loc);
    if (layer.boolAttr("bias"))
      s.bias = state(path + ".bias", {out}, true, loc);
  } else if (layer.kind == "batchnorm1d" || layer.kind == "batchnorm2d") {
    int64_t channels = layer.intAttr("num_features");
    if (layer.boolAttr("affine")) {
      s.weight = state(path + ".weight", {channels}, true, loc);
      s.bias = state(path + ".bias", {channels}, true, loc);
    }
    if (layer.boolAttr("track_running_stats")) {
      s.runningMean = state(path + ".running_mean", {channels}, false, loc);
      s.runningVar = state(path + ".running_var", {channels}, false, loc);
      s.numBatchesTracked = state(path + ".num_batches_tracked", {}, false, loc,
                                  builder.getI64Type());
    }
  }
}

nn::WindowSpec Importer::windowOf(const LayerDecl &layer) {
  nn::WindowSpec window;
  const AttrValue &stride = layer.attr("stride");
  window.stride.assign(std::begin(stride.ints), std::end(stride.ints));
  const AttrValue &padding = layer.attr("padding");
  if (padding.ints[0] != 0 || padding.ints[1] != 0)
    window.padding.assign(std::begin(padding.ints), std::end(padding.ints));
  if (layer.attrs.count("dilation")) {
    const AttrValue &dilation = layer.attr("dilation");
    if (dilation.ints[0] != 1 || dilation.ints[1] != 1)
      window.dilation.assign(std::begin(dilation.ints), std::end(dilation.ints));
  }
  window.ceilMode = layer.attrs.count("ceil_mode") && layer.boolAttr("ceil_mode");
  return window;
}

std::function<InFlightDiagnostic()>
Importer::errorAt(SourceLoc callLoc, const std::string &path, SourceLoc declLoc) {
  return [this, callLoc, path, declLoc] {
    InFlightDiagnostic diag = diags.error(callLoc);
    if (!path.empty()) {
      diag << "in '" << path << "': ";
      diag.attachNote(diags.location(declLoc)) << "'" << path << "' is declared here";
    }
    return diag;
  };
}

template <typename OpTy, typename... Args>
Value Importer::build(const std::string &path, SourceLoc callLoc,
                      FailureOr<nn::Shape> shape, Args &&...args) {
  if (failed(shape))
    return nullptr;
  Location loc = diags.location(callLoc);
  if (!path.empty())
    loc = NameLoc::get(builder.getStringAttr(path), loc);
  Type type = tensorType(*shape, builder.getF32Type());
  return builder.create<OpTy>(loc, type, std::forward<Args>(args)...);
}

Value Importer::applyLayer(const LayerDecl &layer, const std::string &path,
                           Value input, SourceLoc callLoc) {
  if (layer.kind == "sequential") {
    for (const LayerDecl &member : layer.members) {
      input = applyLayer(member, path + "." + member.name, input, callLoc);
      if (!input)
        return nullptr;
    }
    return input;
  }
  const LayerState &s = states[path];
  auto emitError = errorAt(callLoc, path, layer.loc);
  ArrayRef<int64_t> in = shapeOf(input);
  auto optionalShape = [](Value v) -> Optional<nn::ShapeRef> {
    if (!v)
      return llvm::None;
    return shapeOf(v);
  };
  StringRef kind = layer.kind;
  if (kind == "linear")
    return build<nn::LinearOp>(
        path, callLoc,
        nn::inferLinearShape(emitError, in, shapeOf(s.weight), optionalShape(s.bias)),
        input, s.weight, s.bias, StringAttr());
  if (kind == "conv2d") {
    nn::WindowSpec window = windowOf(layer);
    return build<nn::Conv2DOp>(
        path, callLoc,
        nn::inferConv2DShape(emitError, in, shapeOf(s.weight), optionalShape(s.bias), window),
        input, s.weight, s.bias, builder.getI64ArrayAttr(window.stride),
        builder.getI64ArrayAttr(layer.attr("padding").ints), ArrayAttr(),
        optionalPair(window.dilation), StringAttr());
  }
  if (kind == "batchnorm1d" || kind == "batchnorm2d") {
    // PyTorch: BatchNorm1d takes [N, C] or [N, C, L]; BatchNorm2d [N, C, H, W].
    bool is2d = kind == "batchnorm2d";
    if (is2d ? in.size() != 4 : (in.size() != 2 && in.size() != 3)) {
      emitError() << kind << " expects an input of shape "
                  << (is2d ? "[N, C, H, W]" : "[N, C] or [N, C, L]") << ", got "
                  << nn::formatShape(in);
      return nullptr;
    }
    return build<nn::BatchNormOp>(
        path, callLoc,
        nn::inferBatchNormShape(emitError, in, layer.intAttr("num_features")),
        input, s.weight, s.bias, s.runningMean, s.runningVar, s.numBatchesTracked,
        builder.getF64FloatAttr(layer.floatAttr("eps")),
        // momentum=None (the cumulative average) is no attribute at all.
        layer.attr("momentum").isNone
            ? FloatAttr()
            : builder.getF64FloatAttr(layer.floatAttr("momentum")),
        UnitAttr());
  }
  if (kind == "relu")
    return build<nn::ReluOp>(path, callLoc, nn::Shape(in.begin(), in.end()), input);
  if (kind == "sigmoid")
    return build<nn::SigmoidOp>(path, callLoc, nn::Shape(in.begin(), in.end()), input);
  if (kind == "tanh")
    return build<nn::TanhOp>(path, callLoc, nn::Shape(in.begin(), in.end()), input);
  if (kind == "dropout")
    return build<nn::DropoutOp>(path, callLoc, nn::Shape(in.begin(), in.end()), input,
                                builder.getF64FloatAttr(layer.floatAttr("p")),
                                UnitAttr());
  if (kind == "flatten") {
    int64_t start = layer.intAttr("start_dim"), end = layer.intAttr("end_dim");
    return build<nn::FlattenOp>(
        path, callLoc, nn::inferFlattenShape(emitError, in, start, end), input,
        builder.getI64IntegerAttr(start), builder.getI64IntegerAttr(end));
  }
  if (kind == "avgpool2d" || kind == "maxpool2d") {
    nn::WindowSpec window = windowOf(layer);
    FailureOr<nn::Shape> shape = nn::inferPool2DShape(
        emitError, kind == "avgpool2d" ? "avg_pool2d" : "max_pool2d", in,
        layer.attr("kernel_size").ints, window);
    ArrayAttr kernelAttr = builder.getI64ArrayAttr(layer.attr("kernel_size").ints);
    ArrayAttr strideAttr = builder.getI64ArrayAttr(window.stride);
    UnitAttr ceilMode = window.ceilMode ? builder.getUnitAttr() : UnitAttr();
    // Without padding count_include_pad changes nothing (NNOps.td), and
    // leaving it out keeps such a pool the plain op it always was.
    UnitAttr includePad = kind == "avgpool2d" && !window.padding.empty() &&
                                  layer.boolAttr("count_include_pad")
                              ? builder.getUnitAttr()
                              : UnitAttr();
    if (kind == "avgpool2d")
      return build<nn::AvgPool2DOp>(path, callLoc, shape, input, kernelAttr, strideAttr,
                                    optionalPair(window.padding), ArrayAttr(), ceilMode,
                                    includePad);
    return build<nn::MaxPool2DOp>(path, callLoc, shape, input, kernelAttr, strideAttr,
                                  optionalPair(window.padding), ArrayAttr(),
                                  optionalPair(window.dilation), ceilMode);
  }
  if (kind == "softmax" || kind == "log_softmax")
    return softmax(kind, path, callLoc, emitError, input, layer.intAttr("dim"));
  diags.error(layer.kindLoc) << "internal error: no lowering for layer kind '"
                             << kind << "'";
  return nullptr;
}

/// softmax(x, dim=..), log_softmax(x, dim=..), the layer or the functional.
Value Importer::softmax(StringRef kind, const std::string &path, SourceLoc callLoc,
                        const std::function<InFlightDiagnostic()> &emitError, Value input,
                        int64_t dim) {
  ArrayRef<int64_t> in = shapeOf(input);
  FailureOr<int64_t> axis = nn::normalizeDim(emitError, kind, "dim", in, dim,
                                             /*allowNegative=*/true);
  if (failed(axis))
    return nullptr;
  nn::Shape shape(in.begin(), in.end());
  IntegerAttr axisAttr = builder.getI64IntegerAttr(*axis);
  if (kind == "softmax")
    return build<nn::SoftmaxOp>(path, callLoc, shape, input, axisAttr);
  return build<nn::LogSoftmaxOp>(path, callLoc, shape, input, axisAttr);
}

/// relu(x), sigmoid(x), tanh(x), flatten(x, start_dim=.., end_dim=..),
/// softmax(x, dim=..), log_softmax(x, dim=..).
Value Importer::applyFunctional(const Expr &expr, Value input) {
  ArrayRef<int64_t> inRef = shapeOf(input);
  nn::Shape in(inRef.begin(), inRef.end());
  if (expr.name == "softmax" || expr.name == "log_softmax") {
    // Sema checked that dim is given, once, as an integer.
    int64_t dim = 0;
    for (const Arg &arg : expr.kwargs)
      dim = arg.value->intValue;
    return softmax(expr.name, "", expr.loc, errorAt(expr.loc, "", expr.loc), input, dim);
  }
  if (expr.name == "relu")
    return build<nn::ReluOp>("", expr.loc, in, input);
  if (expr.name == "sigmoid")
    return build<nn::SigmoidOp>("", expr.loc, in, input);
  if (expr.name == "tanh")
    return build<nn::TanhOp>("", expr.loc, in, input);
  int64_t start = 1, end = -1;
  for (const Arg &arg : expr.kwargs)
    (arg.name == "start_dim" ? start : end) = arg.value->intValue;
  return build<nn::FlattenOp>(
      "", expr.loc,
      nn::inferFlattenShape(errorAt(expr.loc, "", expr.loc), in, start, end),
      input, builder.getI64IntegerAttr(start), builder.getI64IntegerAttr(end));
}

Value Importer::evaluate(const Expr &expr) {
  switch (expr.kind) {
  case Expr::Kind::Name:
    return values.lookup(expr.name);
  case Expr::Kind::Add: {
    Value lhs = evaluate(*expr.operands[0]);
    Value rhs = evaluate(*expr.operands[1]);
    if (!lhs || !rhs)
      return nullptr;
    return build<nn::AddOp>(
        "", expr.loc,
        nn::inferAddShape(errorAt(expr.loc, "", expr.loc), shapeOf(lhs), shapeOf(rhs)),
        lhs, rhs);
  }
  case Expr::Kind::Call:
    break;
  }
  Value input = evaluate(*expr.operands[0]);
  if (!input)
    return nullptr;
  if (const LayerDecl *layer = model.findLayer(expr.name))
    return applyLayer(*layer, layer->name, input, expr.loc);
  return applyFunctional(expr, input);
}

Attribute toAttr(Builder &b, const AttrValue &value) {
  switch (value.kind) {
  case AttrValue::Kind::Int: return b.getI64IntegerAttr(value.ints[0]);
  case AttrValue::Kind::IntPair: return b.getI64ArrayAttr(value.ints);
  case AttrValue::Kind::Float:
    if (value.isNone)
      return b.getUnitAttr();
    return b.getF64FloatAttr(value.floats[0]);
  case AttrValue::Kind::FloatPair: return b.getF64ArrayAttr(value.floats);
  case AttrValue::Kind::Bool: return b.getBoolAttr(value.boolValue);
  case AttrValue::Kind::Name: return b.getStringAttr(value.name);
  }
  return {};
}

DictionaryAttr callAttr(Builder &b, const ResolvedCall &call) {
  SmallVector<NamedAttribute, 6> entries;
  entries.push_back(b.getNamedAttr("name", b.getStringAttr(call.name)));
  for (const auto &arg : call.args)
    entries.push_back(b.getNamedAttr(arg.first, toAttr(b, arg.second)));
  return b.getDictionaryAttr(entries);
}

/// The train section as a dictionary on the module, for the training
/// compiler and for round trips through kiln-opt.
DictionaryAttr Importer::trainConfigAttr() {
  const TrainConfig &config = model.trainConfig;
  Builder &b = builder;
  SmallVector<NamedAttribute, 10> entries = {
      b.getNamedAttr("loss", b.getStringAttr(config.loss)),
      b.getNamedAttr("optimizer", callAttr(b, config.optimizer)),
      b.getNamedAttr("batch_size", b.getI64IntegerAttr(config.batchSize)),
      b.getNamedAttr("epochs", b.getI64IntegerAttr(config.epochs)),
      b.getNamedAttr("validation", b.getF64FloatAttr(config.validation)),
      b.getNamedAttr("data", b.getStringAttr(config.data)),
      b.getNamedAttr("seed", b.getI64IntegerAttr(config.seed)),
  };
  if (config.earlyStopping)
    entries.push_back(
        b.getNamedAttr("early_stopping", callAttr(b, *config.earlyStopping)));
  SmallVector<Attribute, 4> transforms;
  for (const ResolvedCall &step : config.transforms)
    transforms.push_back(callAttr(b, step));
  entries.push_back(b.getNamedAttr("transform", b.getArrayAttr(transforms)));
  return b.getDictionaryAttr(entries);
}

} // namespace

OwningOpRef<ModuleOp> importModel(const Model &model, FrontendDiagnostics &diags) {
  return Importer(model, diags).run();
}

} // namespace kiln

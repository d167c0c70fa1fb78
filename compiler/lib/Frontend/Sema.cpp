//===- Sema.cpp - semantic checks of a parsed model -----------------------===//
#include "kiln/Frontend/Sema.h"

#include "kiln/Dialect/NN/IR/ShapeInference.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>

namespace kiln {

using namespace ast;
using Kind = AttrValue::Kind;

namespace {

/// The values a parameter accepts beyond its type.
enum class Range {
  Any,
  Positive,      // sizes, kernels, strides: > 0
  NonNegative,   // padding, weight decay: >= 0
  UnitClosed,    // momentum: [0, 1]
  UnitHalfOpen,  // dropout p, validation share: [0, 1)
  PositiveFloat, // eps, lr: > 0
};

/// One parameter of a constructor, named and defaulted as in PyTorch.
struct ParamSpec {
  const char *name;
  Kind kind;
  bool required;
  double defaultValue = 0;
  Range range = Range::Any;
  double defaultSecond = 0; // FloatPair defaults (Adam's betas)
  bool noneAllowed = false;  // `None` is a value (BatchNorm's momentum)
};

struct CallSpec {
  const char *name;
  std::vector<ParamSpec> params;
};

// Sizes past 2^31 are not a model anyone trains; refusing them keeps every
// later product of sizes far from 64-bit overflow.
constexpr int64_t kMaxSize = int64_t(1) << 31;

const std::vector<CallSpec> &layerSpecs() {
  static const std::vector<CallSpec> specs = {
      {"linear",
       {{"in_features", Kind::Int, true, 0, Range::Positive},
        {"out_features", Kind::Int, true, 0, Range::Positive},
        {"bias", Kind::Bool, false, 1}}},
      {"conv2d",
       {{"in_channels", Kind::Int, true, 0, Range::Positive},
        {"out_channels", Kind::Int, true, 0, Range::Positive},
        {"kernel_size", Kind::IntPair, true, 0, Range::Positive},
        {"stride", Kind::IntPair, false, 1, Range::Positive},
        {"padding", Kind::IntPair, false, 0, Range::NonNegative},
        {"dilation", Kind::IntPair, false, 1, Range::Positive},
        {"bias", Kind::Bool, false, 1}}},
      {"batchnorm1d",
       {{"num_features", Kind::Int, true, 0, Range::Positive},
        {"eps", Kind::Float, false, 1e-5, Range::PositiveFloat},
        {"momentum", Kind::Float, false, 0.1, Range::UnitClosed, 0, true},
        {"affine", Kind::Bool, false, 1},
        {"track_running_stats", Kind::Bool, false, 1}}},
      {"batchnorm2d",
       {{"num_features", Kind::Int, true, 0, Range::Positive},
        {"eps", Kind::Float, false, 1e-5, Range::PositiveFloat},
        {"momentum", Kind::Float, false, 0.1, Range::UnitClosed, 0, true},
        {"affine", Kind::Bool, false, 1},
        {"track_running_stats", Kind::Bool, false, 1}}},
      {"relu", {}},
      {"sigmoid", {}},
      {"tanh", {}},
      // stride defaults to kernel_size, as in PyTorch (filled in below).
      // The parameters keep PyTorch's positions: return_indices is
      // maxpool2d's fifth (only false is supported), ceil_mode its sixth.
      {"avgpool2d",
       {{"kernel_size", Kind::IntPair, true, 0, Range::Positive},
        {"stride", Kind::IntPair, false, 0, Range::Positive},
        {"padding", Kind::IntPair, false, 0, Range::NonNegative},
        {"ceil_mode", Kind::Bool, false, 0},
        {"count_include_pad", Kind::Bool, false, 1}}},
      {"maxpool2d",
       {{"kernel_size", Kind::IntPair, true, 0, Range::Positive},
        {"stride", Kind::IntPair, false, 0, Range::Positive},
        {"padding", Kind::IntPair, false, 0, Range::NonNegative},
        {"dilation", Kind::IntPair, false, 1, Range::Positive},
        {"return_indices", Kind::Bool, false, 0},
        {"ceil_mode", Kind::Bool, false, 0}}},
      // nn.Softmax(dim) / F.softmax(x, dim): dim is required here (PyTorch's
      // implicit dim is deprecated); negative counts from the end.
      {"softmax", {{"dim", Kind::Int, true, 0, Range::Any}}},
      {"log_softmax", {{"dim", Kind::Int, true, 0, Range::Any}}},
      {"flatten",
       {{"start_dim", Kind::Int, false, 1}, {"end_dim", Kind::Int, false, -1}}},
      {"dropout", {{"p", Kind::Float, false, 0.5, Range::UnitHalfOpen}}},
  };
  return specs;
}

const std::vector<CallSpec> &settingCallSpecs() {
  static const std::vector<CallSpec> specs = {
      {"sgd",
       {{"lr", Kind::Float, true, 0, Range::PositiveFloat},
        {"momentum", Kind::Float, false, 0, Range::NonNegative},
        {"dampening", Kind::Float, false, 0, Range::UnitClosed},
        {"weight_decay", Kind::Float, false, 0, Range::NonNegative},
        {"nesterov", Kind::Bool, false, 0}}},
      {"adam",
       {{"lr", Kind::Float, false, 1e-3, Range::PositiveFloat},
        {"betas", Kind::FloatPair, false, 0.9, Range::UnitHalfOpen, 0.999},
        {"eps", Kind::Float, false, 1e-8, Range::PositiveFloat},
        {"weight_decay", Kind::Float, false, 0, Range::NonNegative}}},
      // torch.optim.AdamW: decoupled weight decay, 0.01 by default.
      {"adamw",
       {{"lr", Kind::Float, false, 1e-3, Range::PositiveFloat},
        {"betas", Kind::FloatPair, false, 0.9, Range::UnitHalfOpen, 0.999},
        {"eps", Kind::Float, false, 1e-8, Range::PositiveFloat},
        {"weight_decay", Kind::Float, false, 1e-2, Range::NonNegative}}},
      {"early_stopping",
       {{"patience", Kind::Int, true, 0, Range::Positive},
        {"delta", Kind::Float, false, 0, Range::NonNegative}}},
      {"scale", {{"factor", Kind::Float, true, 0, Range::Any}}},
      {"normalize",
       {{"mean", Kind::Float, true, 0, Range::Any},
        {"std", Kind::Float, true, 0, Range::PositiveFloat}}},
  };
  return specs;
}

const CallSpec *findSpec(const std::vector<CallSpec> &specs,
                         llvm::StringRef name) {
  for (const CallSpec &spec : specs)
    if (name == spec.name)
      return &spec;
  return nullptr;
}

/// "did you mean 'linear'?" for a near miss, else nothing.
std::string suggest(llvm::StringRef name,
                    llvm::ArrayRef<llvm::StringRef> candidates) {
  llvm::StringRef best;
  unsigned bestDistance = 3;
  for (llvm::StringRef candidate : candidates) {
    // A prefix is a likely slip too: 'kernel' for 'kernel_size'.
    if (name.size() >= 3 && candidate.startswith(name))
      return ("; did you mean '" + candidate + "'?").str();
    unsigned distance = name.edit_distance(candidate, true, bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best.empty() ? "" : ("; did you mean '" + best + "'?").str();
}

std::vector<llvm::StringRef> specNames(const std::vector<CallSpec> &specs) {
  std::vector<llvm::StringRef> names;
  for (const CallSpec &spec : specs)
    names.push_back(spec.name);
  return names;
}

const char *describeKind(Kind kind) {
  switch (kind) {
  case Kind::Int: return "an integer";
  case Kind::IntPair: return "an integer or a pair of integers";
  case Kind::Float: return "a number";
  case Kind::FloatPair: return "a pair of numbers";
  case Kind::Bool: return "true or false";
  case Kind::Name: return "a name";
  }
  return "a value";
}

class Checker {
public:
  Checker(Model &model, FrontendDiagnostics &diags)
      : model(model), diags(diags) {}

  void run();

private:
  void checkInput();
  void checkLayers();
  void checkLayer(LayerDecl &layer, llvm::StringRef path);
  void checkPool(LayerDecl &layer);
  void checkForward();
  void checkExpr(Expr &expr);
  void checkFunctionalCall(Expr &expr);
  void checkTrain();
  bool resolveCall(llvm::StringRef callee, SourceLoc loc,
                   const std::vector<Arg> &args, const CallSpec &spec,
                   AttrMap &out);
  bool convert(const Term &term, const ParamSpec &param, AttrValue &out);
  bool checkRange(const AttrValue &value, const ParamSpec &param,
                  llvm::StringRef callee);
  bool resolveSettingCall(llvm::StringRef key, const Term &term,
                          llvm::ArrayRef<llvm::StringRef> allowed,
                          ResolvedCall &out);

  Model &model;
  FrontendDiagnostics &diags;
  llvm::StringMap<SourceLoc> values; // defined so far in forward
};

void Checker::run() {
  checkInput();
  checkLayers();
  checkForward();
  if (model.hasTrain)
    checkTrain();
  // Unused layers are worth a warning only in a model that is otherwise
  // right: amid errors (a misspelt call, say) they are noise.
  if (diags.errorCount() > 0)
    return;
  for (const LayerDecl &layer : model.layers)
    if (!layer.used && model.hasForward)
      diags.warning(layer.loc)
          << "layer '" << layer.name
          << "' is declared but never used in forward (its parameters still "
             "belong to the state_dict, as in PyTorch)";
}

void Checker::checkInput() {
  if (!model.input) {
    diags.error(model.loc) << "model '" << model.name
                           << "' has no input; declare one such as "
                              "'input x: f32[N, 784]'";
    return;
  }
  InputDecl &input = *model.input;
  if (input.dtype != "f32")
    diags.error(input.dtypeLoc) << "unsupported element type '" << input.dtype
                                << "'; Kiln models take f32 input";
  int64_t elements = 1;
  for (size_t i = 0; i < input.dims.size(); ++i) {
    int64_t dim = input.dims[i];
    if (dim < 0 && i != 0) {
      diags.error(input.dimLocs[i])
          << "only the first (batch) dimension can be symbolic; '"
          << input.dimNames[i] << "' is dimension " << i;
    } else if (dim == 0 || dim > kMaxSize) {
      diags.error(input.dimLocs[i]) << "dimension " << i << " must be in [1, 2^31], got " << dim;
    } else if (dim > 0 && i != 0 && (elements *= dim) > kMaxSize) {
      diags.error(input.dimLocs[i]) << "one input sample has more than 2^31 elements";
      return;
    }
  }
  if (model.findLayer(input.name))
    diags.error(input.loc) << "input '" << input.name
                           << "' has the name of a layer";
}

void Checker::checkLayers() {
  llvm::StringMap<SourceLoc> seen;
  for (LayerDecl &layer : model.layers) {
    if (diags.tooManyErrors())
      return;
    auto [it, inserted] = seen.try_emplace(layer.name, layer.loc);
    if (!inserted) {
      diags.error(layer.loc) << "duplicate layer '" << layer.name
                             << "' (first declared at line "
                             << it->second.line << ")";
      continue;
    }
    if (isFunctional(layer.name))
      diags.warning(layer.loc) << "layer '" << layer.name
                               << "' hides the functional '" << layer.name
                               << "' in forward";
    checkLayer(layer, layer.name);
  }
}

void Checker::checkLayer(LayerDecl &layer, llvm::StringRef path) {
  if (layer.kind == "sequential") {
    if (layer.members.empty())
      diags.error(layer.kindLoc) << "sequential '" << path << "' is empty";
    for (LayerDecl &member : layer.members)
      checkLayer(member, (path + "." + member.name).str());
    return;
  }
  const CallSpec *spec = findSpec(layerSpecs(), layer.kind);
  if (!spec) {
    std::vector<llvm::StringRef> names = specNames(layerSpecs());
    names.push_back("sequential");
    diags.error(layer.kindLoc) << "unknown layer kind '" << layer.kind << "'"
                               << suggest(layer.kind, names);
    return;
  }
  if (!resolveCall(layer.kind, layer.kindLoc, layer.args, *spec, layer.attrs))
    return;
  if (layer.kind == "avgpool2d" || layer.kind == "maxpool2d")
    checkPool(layer);
}

/// What PyTorch's pools refuse when they run, refused here at the argument:
/// padding past half the (dilated) kernel, return_indices. Fills in the
/// default stride (kernel_size).
void Checker::checkPool(LayerDecl &layer) {
  if (layer.attrs["stride"].ints[0] == 0)
    layer.attrs["stride"] = layer.attrs["kernel_size"];
  bool isMax = layer.kind == "maxpool2d";
  if (isMax && layer.attrs["return_indices"].boolValue)
    diags.error(layer.attrs["return_indices"].loc)
        << "maxpool2d return_indices=true is not supported: a layer has one output";
  const AttrValue &padding = layer.attrs["padding"], &kernel = layer.attrs["kernel_size"];
  for (int d = 0; d < 2; ++d) {
    int64_t dilation = isMax ? layer.attrs["dilation"].ints[d] : 1;
    // PyTorch: pad <= ((kernel − 1) · dilation + 1) / 2, in integers.
    int64_t extent = (kernel.ints[d] - 1) * dilation + 1;
    if (padding.ints[d] <= extent / 2)
      continue;
    auto diag = diags.error(padding.loc);
    diag << layer.kind << " padding must be at most half the ";
    if (dilation == 1)
      diag << "kernel size, as in PyTorch: got padding " << padding.ints[d]
           << " for kernel_size " << kernel.ints[d];
    else
      diag << "dilated kernel size, as in PyTorch: got padding " << padding.ints[d]
           << " for kernel_size " << kernel.ints[d] << " and dilation " << dilation
           << " (" << extent << " wide)";
    return;
  }
}

/// Converts a constant to the parameter's type, or reports why not.
bool Checker::convert(const Term &term, const ParamSpec &param,
                      AttrValue &out) {
  out.kind = param.kind;
  out.loc = term.loc;
  if (param.noneAllowed && term.kind == Term::Kind::Name && term.text == "None") {
    out.isNone = true;
    return true;
  }
  switch (param.kind) {
  case Kind::Int:
    if (term.kind == Term::Kind::Int) {
      out.ints[0] = out.ints[1] = term.intValue;
      return true;
    }
    break;
  case Kind::IntPair:
    if (term.kind == Term::Kind::Int) {
      out.ints[0] = out.ints[1] = term.intValue;
      return true;
    }
    if (term.kind == Term::Kind::Tuple && term.elements.size() == 2 &&
        term.elements[0]->kind == Term::Kind::Int &&
        term.elements[1]->kind == Term::Kind::Int) {
      out.ints[0] = term.elements[0]->intValue;
      out.ints[1] = term.elements[1]->intValue;
      return true;
    }
    break;
  case Kind::Float:
    if (term.isNumber()) {
      out.floats[0] = out.floats[1] = term.asDouble();
      return true;
    }
    break;
  case Kind::FloatPair:
    if (term.kind == Term::Kind::Tuple && term.elements.size() == 2 &&
        term.elements[0]->isNumber() && term.elements[1]->isNumber()) {
      out.floats[0] = term.elements[0]->asDouble();
      out.floats[1] = term.elements[1]->asDouble();
      return true;
    }
    break;
  case Kind::Bool:
    if (term.kind == Term::Kind::Bool) {
      out.boolValue = term.boolValue;
      return true;
    }
    // Python's spellings, as a PyTorch user writes them (ceil_mode=True).
    if (term.kind == Term::Kind::Name && (term.text == "True" || term.text == "False")) {
      out.boolValue = term.text == "True";
      return true;
    }
    break;
  case Kind::Name:
    if (term.kind == Term::Kind::Name) {
      out.name = term.text;
      return true;
    }
    break;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  printTerm(term, os);
  diags.error(term.loc) << "'" << param.name << "' must be "
                        << describeKind(param.kind) << ", got '"
                        << llvm::StringRef(os.str()).take_front(60) << "'";
  return false;
}

bool Checker::checkRange(const AttrValue &value, const ParamSpec &param,
                         llvm::StringRef callee) {
  if (value.isNone)
    return true;
  int count = (param.kind == Kind::IntPair || param.kind == Kind::FloatPair) ? 2 : 1;
  for (int i = 0; i < count; ++i) {
    bool isInt = param.kind == Kind::Int || param.kind == Kind::IntPair;
    double v = isInt ? static_cast<double>(value.ints[i]) : value.floats[i];
    const char *expected = nullptr;
    switch (param.range) {
    case Range::Any: break;
    case Range::Positive:
      if (!(v > 0) || (isInt && value.ints[i] > kMaxSize))
        expected = isInt ? "in [1, 2^31]" : "> 0";
      break;
    case Range::NonNegative:
      if (!(v >= 0) || (isInt && value.ints[i] > kMaxSize))
        expected = ">= 0";
      break;
    case Range::UnitClosed:
      if (!(v >= 0 && v <= 1))
        expected = "in [0, 1]";
      break;
    case Range::UnitHalfOpen:
      if (!(v >= 0 && v < 1))
        expected = "in [0, 1)";
      break;
    case Range::PositiveFloat:
      if (!(v > 0) || std::isinf(v))
        expected = "> 0";
      break;
    }
    if (expected) {
      auto diag = diags.error(value.loc);
      diag << callee << " " << param.name << " must be " << expected << ", got ";
      if (isInt)
        diag << value.ints[i];
      else
        diag << nn::formatNumber(v);
      return false;
    }
  }
  return true;
}

/// Binds positional and keyword arguments to the spec, fills defaults and
/// checks every value; reports each problem.
bool Checker::resolveCall(llvm::StringRef callee, SourceLoc loc,
                          const std::vector<Arg> &args, const CallSpec &spec,
                          AttrMap &out) {
  bool ok = true;
  size_t positional = 0;
  for (const Arg &arg : args) {
    const ParamSpec *param = nullptr;
    if (arg.name.empty()) {
      if (positional >= spec.params.size()) {
        diags.error(arg.loc) << callee << " takes at most "
                             << spec.params.size() << " argument"
                             << (spec.params.size() == 1 ? "" : "s") << ", got "
                             << args.size();
        ok = false;
        break;
      }
      param = &spec.params[positional++];
    } else {
      for (const ParamSpec &candidate : spec.params)
        if (arg.name == candidate.name)
          param = &candidate;
      if (!param) {
        std::vector<llvm::StringRef> names;
        for (const ParamSpec &candidate : spec.params)
          names.push_back(candidate.name);
        diags.error(arg.loc) << callee << " has no parameter '" << arg.name
                             << "'" << suggest(arg.name, names);
        ok = false;
        continue;
      }
    }
    if (out.count(param->name)) {
      diags.error(arg.loc) << callee << " got '" << param->name
                           << "' twice";
      ok = false;
      continue;
    }
    AttrValue value;
    if (!convert(*arg.value, *param, value) ||
        !checkRange(value, *param, callee)) {
      ok = false;
      continue;
    }
    out[param->name] = value;
  }
  for (const ParamSpec &param : spec.params) {
    if (out.count(param.name))
      continue;
    if (param.required) {
      if (ok)
        diags.error(loc) << callee << " needs '" << param.name << "'";
      ok = false;
      continue;
    }
    AttrValue value;
    value.kind = param.kind;
    value.loc = loc;
    value.ints[0] = value.ints[1] = static_cast<int64_t>(param.defaultValue);
    value.floats[0] = param.defaultValue;
    value.floats[1] = param.kind == Kind::FloatPair ? param.defaultSecond
                                                    : param.defaultValue;
    value.boolValue = param.defaultValue != 0;
    out[param.name] = value;
  }
  return ok;
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

void Checker::checkForward() {
  if (!model.hasForward) {
    diags.error(model.loc) << "model '" << model.name
                           << "' has no forward section";
    return;
  }
  if (model.input)
    values[model.input->name] = model.input->loc;
  bool returned = false;
  for (Stmt &stmt : model.forward) {
    if (diags.tooManyErrors())
      return;
    if (returned) {
      diags.error(stmt.loc) << "statement after 'return' is never run";
      break;
    }
    checkExpr(*stmt.value);
    if (stmt.isReturn()) {
      returned = true;
      continue;
    }
    if (model.findLayer(stmt.name))
      diags.error(stmt.loc) << "'" << stmt.name
                            << "' is a layer; choose another name for this value";
    else if (model.input && stmt.name == model.input->name)
      diags.error(stmt.loc) << "'" << stmt.name
                            << "' is the model's input; choose another name";
    values[stmt.name] = stmt.loc; // rebinding a value is allowed, as in Python
  }
  if (!returned)
    diags.error(model.forwardEndLoc) << "forward section has no 'return'";
}

void Checker::checkExpr(Expr &expr) {
  switch (expr.kind) {
  case Expr::Kind::Name:
    if (values.count(expr.name))
      return;
    if (model.findLayer(expr.name))
      diags.error(expr.loc) << "'" << expr.name << "' is a layer; call it, as in '"
                            << expr.name << "(x)'";
    else
      diags.error(expr.loc) << "use of undefined value '" << expr.name << "'";
    return;
  case Expr::Kind::Add:
    checkExpr(*expr.operands[0]);
    checkExpr(*expr.operands[1]);
    return;
  case Expr::Kind::Call:
    break;
  }
  for (ExprPtr &operand : expr.operands)
    checkExpr(*operand);
  LayerDecl *layer = nullptr;
  for (LayerDecl &candidate : model.layers)
    if (candidate.name == expr.name)
      layer = &candidate;
  if (!layer) {
    checkFunctionalCall(expr);
    return;
  }
  layer->used = true;
  if (expr.operands.size() != 1 || !expr.kwargs.empty())
    diags.error(expr.loc) << "layer '" << expr.name
                          << "' takes one input, got "
                          << expr.operands.size() + expr.kwargs.size()
                          << " arguments";
}

void Checker::checkFunctionalCall(Expr &expr) {
  if (!isFunctional(expr.name)) {
    std::vector<llvm::StringRef> names = {"relu",    "sigmoid",     "tanh",
                                          "flatten", "softmax", "log_softmax"};
    for (const LayerDecl &layer : model.layers)
      names.push_back(layer.name);
    diags.error(expr.loc) << "unknown layer or function '" << expr.name << "'"
                          << suggest(expr.name, names);
    return;
  }
  if (expr.operands.size() != 1) {
    diags.error(expr.loc) << "'" << expr.name << "' takes one input, got "
                          << expr.operands.size();
    return;
  }
  // Keyword arguments (flatten's start_dim, end_dim) resolve like a layer's.
  const CallSpec *spec = findSpec(layerSpecs(), expr.name);
  AttrMap attrs;
  resolveCall(expr.name, expr.loc, expr.kwargs, *spec, attrs);
}

//===----------------------------------------------------------------------===//
// Train
//===----------------------------------------------------------------------===//

bool Checker::resolveSettingCall(llvm::StringRef key, const Term &term,
                                 llvm::ArrayRef<llvm::StringRef> allowed,
                                 ResolvedCall &out) {
  if (term.kind != Term::Kind::Call && term.kind != Term::Kind::Name) {
    diags.error(term.loc) << "'" << key << "' must be one of "
                          << llvm::join(allowed, ", ");
    return false;
  }
  if (!llvm::is_contained(allowed, term.text)) {
    diags.error(term.loc) << "unknown " << key << " '" << term.text
                          << "'; expected one of " << llvm::join(allowed, ", ")
                          << suggest(term.text, allowed);
    return false;
  }
  out.name = term.text;
  out.loc = term.loc;
  static const std::vector<Arg> noArgs;
  return resolveCall(term.text, term.loc,
                     term.kind == Term::Kind::Call ? term.args : noArgs,
                     *findSpec(settingCallSpecs(), term.text), out.args);
}

void Checker::checkTrain() {
  TrainConfig &config = model.trainConfig;
  config.optimizer.name = "";
  llvm::StringMap<SourceLoc> seen;
  auto positiveInt = [&](const Setting &setting, int64_t &out) {
    const Term &term = *setting.value;
    if (term.kind != Term::Kind::Int || term.intValue <= 0)
      diags.error(term.loc) << "'" << setting.key
                            << "' must be a positive integer";
    else
      out = term.intValue;
  };
  for (const Setting &setting : model.train) {
    if (diags.tooManyErrors())
      return;
    // batch and batch_size are one setting: giving both is a duplicate.
    llvm::StringRef canonical =
        setting.key == "batch_size" ? llvm::StringRef("batch") : llvm::StringRef(setting.key);
    auto [it, inserted] = seen.try_emplace(canonical, setting.loc);
    if (!inserted) {
      diags.error(setting.loc) << "duplicate setting '" << setting.key
                               << "' (first at line " << it->second.line << ")";
      continue;
    }
    const Term &term = *setting.value;
    llvm::StringRef key = setting.key;
    if (key == "loss") {
      if (term.kind != Term::Kind::Name || term.text != "cross_entropy")
        diags.error(term.loc) << "unsupported loss; expected cross_entropy";
    } else if (key == "optimizer") {
      if (resolveSettingCall(key, term, {"sgd", "adam", "adamw"}, config.optimizer) &&
          config.optimizer.name == "sgd" && config.optimizer.args["nesterov"].boolValue &&
          (config.optimizer.args["momentum"].floats[0] <= 0 ||
           config.optimizer.args["dampening"].floats[0] != 0))
        // PyTorch: "Nesterov momentum requires a momentum and zero dampening".
        diags.error(term.loc)
            << "sgd with nesterov=true needs momentum > 0 and dampening = 0";
    } else if (key == "batch" || key == "batch_size") {
      positiveInt(setting, config.batchSize);
    } else if (key == "epochs") {
      positiveInt(setting, config.epochs);
    } else if (key == "seed") {
      if (term.kind != Term::Kind::Int || term.intValue < 0)
        diags.error(term.loc) << "'seed' must be a non-negative integer";
      else
        config.seed = term.intValue;
    } else if (key == "validation") {
      if (!term.isNumber() || !(term.asDouble() >= 0 && term.asDouble() < 1))
        diags.error(term.loc)
            << "'validation' is the share of training data held out, in [0, 1)";
      else
        config.validation = term.asDouble();
    } else if (key == "early_stopping") {
      ResolvedCall call;
      if (resolveSettingCall(key, term, {"early_stopping"}, call))
        config.earlyStopping = std::move(call);
    } else if (key == "data") {
      if (term.kind != Term::Kind::Name || term.text != "fashion_mnist")
        diags.error(term.loc) << "unknown data set; expected fashion_mnist";
    } else if (key == "transform") {
      if (term.kind != Term::Kind::List) {
        diags.error(term.loc) << "'transform' must be a list such as "
                                 "[scale(1/255), normalize(0.5, 0.5)]";
        continue;
      }
      for (const TermPtr &element : term.elements) {
        ResolvedCall call;
        if (resolveSettingCall("transform", *element, {"scale", "normalize"},
                               call))
          config.transforms.push_back(std::move(call));
      }
    } else {
      diags.error(setting.loc)
          << "unknown setting '" << key << "'"
          << suggest(key, {"loss", "optimizer", "batch", "epochs", "validation",
                           "early_stopping", "data", "transform", "seed"});
    }
  }
  if (!seen.count("optimizer"))
    diags.error(model.trainLoc) << "train section needs an optimizer, such as "
                                   "'optimizer = sgd(lr=0.01)'";
}

} // namespace

bool isFunctional(llvm::StringRef name) {
  return name == "relu" || name == "sigmoid" || name == "tanh" ||
         name == "flatten" || name == "softmax" || name == "log_softmax";
}

mlir::LogicalResult checkModel(Model &model, FrontendDiagnostics &diags) {
  unsigned before = diags.errorCount();
  Checker(model, diags).run();
  return mlir::success(diags.errorCount() == before);
}

} // namespace kiln

//===- ONNXImport.cpp - ONNX models to the nn dialect ---------------------===//
//
// A ModelProto is parsed by the ONNX library's protobuf classes, its
// tensors' claims are checked against the bytes really there, then
// onnx::checker and ONNX's shape inference run, and only then are its nodes
// imported, in the graph's (checked, topological) order. Dimension 0 of
// every graph input is the batch (the DSL's N), whether the export made it
// symbolic (dynamic_axes) or fixed.
//
// Values are of two kinds while importing: tensors computed at run time (an
// mlir::Value) and constants known now (initializers, Constant nodes and
// the weight inputs a caller binds). Weights become nn.param / nn.buffer
// ops named by their initializer, which PyTorch's exporter names by
// state_dict key, so checkpoints still match.
//
//===----------------------------------------------------------------------===//
#include "kiln/Import/ONNXImport.h"

#include "ONNXConstantFolding.h"
#include "ONNXTensor.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"
#include "kiln/Dialect/NN/IR/Utils.h"
#include "kiln/Import/Import.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <set>

namespace kiln {

using namespace mlir;
using onnximport::HostTensor;

bool isONNXModelPath(StringRef path) { return path.endswith_insensitive(".onnx"); }

namespace {

/// The opsets of the default domain Kiln imports: what PyTorch 1.13
/// exports and ONNX 1.12 (Debian's libonnx) knows.
/// From the first opset: the backend tests of PyTorch's converter are at
/// opset 6 and GlobalAveragePool's at 1; the operators whose form changed
/// since are read in their old form or refused (legacyFormError).
constexpr int64_t kMinOpset = 1, kMaxOpset = 17;

/// The operators imported (docs/onnx.md: which attributes of each).
const llvm::StringSet<> &supportedOps() {
  static const llvm::StringSet<> ops = {
      "Gemm",    "MatMul",       "Conv",    "BatchNormalization", "Relu",    "Sigmoid",
      "Tanh",    "AveragePool",  "MaxPool", "GlobalAveragePool",  "Flatten", "Reshape",
      "Squeeze", "Unsqueeze",    "Add",     "Dropout",            "Identity", "Constant",
      "Pad",     "Softmax",      "LogSoftmax", "ConstantOfShape", "Concat", "Slice",
      "Transpose", "Cast"};
  return ops;
}

/// Operand positions that hold weights or import-time constants (shapes,
/// axes): a graph input bound by ONNXImportOptions::weightInputs must be
/// used only there.
bool isWeightOperand(StringRef op, int index) {
  if (op == "Conv" || op == "Gemm" || op == "Dropout")
    return index == 1 || index == 2;
  if (op == "MatMul" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze")
    return index == 1;
  if (op == "Pad")
    return index == 1 || index == 2;
  if (op == "BatchNormalization")
    return index >= 1 && index <= 4;
  return false;
}

/// The shortest decimal that reads back as `value` (ONNX stores attributes
/// as float32: epsilon 1e-5 is 9.99999974738e-06 as a double), as a double:
/// eps and momentum then mean what the DSL's `1e-5` and `0.1` mean.
double shortestDecimal(float value) {
  char text[64];
  auto [end, ec] = std::to_chars(text, text + sizeof text - 1, value);
  if (ec != std::errc())
    return value;
  *end = '\0';
  return std::strtod(text, nullptr);
}

std::string shapeText(ArrayRef<int64_t> dims) { return nn::formatShape(dims); }

class ONNXImporter {
public:
  ONNXImporter(StringRef bytes, StringRef path, MLIRContext *context,
               const ONNXImportOptions &options)
      : bytes(bytes), path(path.str()), context(context), options(options), builder(context),
        fileLoc(FileLineColLoc::get(context, path, 0, 0)) {
    modelDir = llvm::sys::path::parent_path(path).str();
  }

  OwningOpRef<ModuleOp> run();

private:
  // Reading and checking the model, before anything is imported.
  bool parse();
  bool checkOpsets();
  bool decodeConstants();
  bool checkModel();
  bool inferShapes();
  bool reportUnsupported();
  bool bindWeightInputs();

  // The graph.
  bool declareInputs(SmallVectorImpl<Type> &types, SmallVectorImpl<std::string> &names);
  void importNode(const onnx::NodeProto &node);
  LogicalResult importGemm(const onnx::NodeProto &node);
  LogicalResult importMatMul(const onnx::NodeProto &node);
  LogicalResult importConv(const onnx::NodeProto &node);
  LogicalResult importBatchNorm(const onnx::NodeProto &node);
  LogicalResult importPool(const onnx::NodeProto &node);
  LogicalResult importGlobalAveragePool(const onnx::NodeProto &node);
  LogicalResult importFlatten(const onnx::NodeProto &node);
  LogicalResult importReshape(const onnx::NodeProto &node);
  LogicalResult importSqueeze(const onnx::NodeProto &node, bool unsqueeze);
  LogicalResult importAdd(const onnx::NodeProto &node);
  LogicalResult importDropout(const onnx::NodeProto &node);
  LogicalResult importConstant(const onnx::NodeProto &node);
  LogicalResult importPad(const onnx::NodeProto &node);
  bool allInputsConstant(const onnx::NodeProto &node) const;
  bool legacyFormIsRead(const onnx::NodeProto &node);
  LogicalResult foldConstantNode(const onnx::NodeProto &node);
  LogicalResult importSoftmax(const onnx::NodeProto &node);
  LogicalResult reshapeAsFlatten(const onnx::NodeProto &node, Value input,
                                 ArrayRef<int64_t> target);

  // Operands and attributes.
  bool hasInput(const onnx::NodeProto &node, int i) const {
    return i < node.input_size() && !node.input(i).empty();
  }
  FailureOr<Value> dataInput(const onnx::NodeProto &node, int i, StringRef role);
  FailureOr<const HostTensor *> constantInput(const onnx::NodeProto &node, int i, StringRef role);
  const onnx::AttributeProto *attribute(const onnx::NodeProto &node, StringRef name) const;
  int64_t intAttr(const onnx::NodeProto &node, StringRef name, int64_t fallback) const;
  float floatAttr(const onnx::NodeProto &node, StringRef name, float fallback) const;
  std::string stringAttr(const onnx::NodeProto &node, StringRef name, StringRef fallback) const;
  SmallVector<int64_t, 4> intsAttr(const onnx::NodeProto &node, StringRef name,
                                   ArrayRef<int64_t> fallback) const;
  bool onlyOutput(const onnx::NodeProto &node, int keep);
  void defineRunningStatistics(const onnx::NodeProto &node, Value x, ArrayRef<float> inputMean,
                               ArrayRef<float> inputVar, float momentum);
  FailureOr<std::pair<SmallVector<int64_t, 2>, SmallVector<int64_t, 2>>>
  windowPads(const onnx::NodeProto &node, ArrayRef<int64_t> input, ArrayRef<int64_t> kernel,
             ArrayRef<int64_t> stride, ArrayRef<int64_t> dilation);
  struct WindowInput;
  FailureOr<WindowInput> windowInput(const onnx::NodeProto &node);

  // Results. State ops come first, in the order the nodes read them (the
  // state_dict order of PyTorch's export).
  void atStateEnd() {
    if (lastState)
      builder.setInsertionPointAfter(lastState);
    else
      builder.setInsertionPointToStart(builder.getBlock());
  }
  Operation *lastState = nullptr;
  void define(const onnx::NodeProto &node, int output, Value value);
  Value weight(const onnx::NodeProto &node, const std::string &key, ArrayRef<int64_t> shape,
               ArrayRef<float> data, bool trainable);
  Value numBatchesTracked(const onnx::NodeProto &node, const std::string &prefix);
  template <typename OpTy, typename... Args>
  Value build(const onnx::NodeProto &node, StringRef layer, FailureOr<nn::Shape> shape,
              Args &&...args);

  // Locations and errors.
  Location nodeLoc(const onnx::NodeProto &node) const;
  Location layerLoc(const onnx::NodeProto &node, StringRef layer) const;
  std::string layerName(const onnx::NodeProto &node, StringRef weightKey = "") const;
  InFlightDiagnostic error(const onnx::NodeProto &node) {
    ++errors;
    return emitError(nodeLoc(node));
  }
  InFlightDiagnostic fileError() {
    ++errors;
    return emitError(fileLoc);
  }
  std::function<InFlightDiagnostic()> errorFn(const onnx::NodeProto &node) {
    return [this, &node] { return error(node); };
  }

  StringRef bytes;
  std::string path, modelDir;
  MLIRContext *context;
  const ONNXImportOptions &options;
  OpBuilder builder;
  Location fileLoc;
  unsigned errors = 0;

  onnx::ModelProto model;
  int64_t opset = 0;
  std::map<std::string, HostTensor> constants;
  std::map<std::string, Value> values;
  std::set<std::string> poisoned; // outputs of nodes that failed: no second error
  std::map<std::string, int> useCounts;
  std::map<std::string, Value> stateByKey;
  std::set<std::string> graphOutputs;
  // The batch an export fixed (dimension 0 of the first input), or -1.
  int64_t fixedBatch = -1;
  // A Linear made from MatMul, waiting for the Add of its bias.
  std::map<std::string, nn::LinearOp> biaslessMatMuls;
  // The output of a Pad of zeros over H and W, waiting for the Conv or
  // AveragePool that takes it as padding.
  struct ZeroPad {
    std::string node;
    Value input;
    SmallVector<int64_t, 2> begin, end;
  };
  std::map<std::string, ZeroPad> zeroPads;
};

/// Input 0 of a window op (Conv, pools): the value, its shape as the node
/// sees it, and the padding of a zero Pad folded into the node (0 if none).
struct ONNXImporter::WindowInput {
  Value value;
  SmallVector<int64_t, 4> shape;
  SmallVector<int64_t, 2> padBegin = {0, 0}, padEnd = {0, 0};
  bool foldsPad = false;
};

//===----------------------------------------------------------------------===//
// Reading and checking
//===----------------------------------------------------------------------===//

bool ONNXImporter::parse() {
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    fileError() << "is not an ONNX model: its protobuf does not parse (a truncated file, or "
                   "not a ModelProto)";
    return false;
  }
  if (!model.has_graph()) {
    fileError() << "has no graph: not an ONNX model";
    return false;
  }
  return true;
}

bool ONNXImporter::checkOpsets() {
  for (const onnx::OperatorSetIdProto &set : model.opset_import()) {
    const std::string &domain = set.domain();
    if (domain.empty() || domain == "ai.onnx") {
      opset = set.version();
      continue;
    }
    // Another domain is fine as long as no node uses it (checked per node).
  }
  if (opset == 0) {
    fileError() << "imports no opset of the default ONNX domain";
    return false;
  }
  if (opset < kMinOpset || opset > kMaxOpset) {
    fileError() << "uses opset " << opset << "; Kiln imports opsets "
                << kMinOpset << " to " << kMaxOpset;
    return false;
  }
  bool ok = true;
  for (const onnx::NodeProto &node : model.graph().node())
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      error(node) << "is in the opset domain '" << node.domain()
                  << "', which Kiln does not know (only the default ONNX domain)";
      ok = false;
    }
  return ok;
}

/// Initializers and Constant nodes' tensors, checked before the checker
/// and shape inference see them.
bool ONNXImporter::decodeConstants() {
  bool ok = true;
  for (const onnx::TensorProto &tensor : model.graph().initializer()) {
    HostTensor host;
    std::string message;
    if (!onnximport::decodeTensor(tensor, modelDir, host, message)) {
      fileError() << "initializer '" << tensor.name() << "' " << message;
      ok = false;
      continue;
    }
    constants[tensor.name()] = std::move(host);
  }
  for (const onnx::NodeProto &node : model.graph().node()) {
    if (node.op_type() != "Constant")
      continue;
    for (const onnx::AttributeProto &attr : node.attribute())
      if (attr.has_t()) {
        HostTensor host;
        std::string message;
        if (!onnximport::decodeTensor(attr.t(), modelDir, host, message)) {
          error(node) << "its tensor " << message;
          ok = false;
        }
      }
  }
  return ok;
}

/// A library's message on one line (ONNX's span several, with a
/// "==> Context:" part).
void reportLibraryError(InFlightDiagnostic &diag, StringRef what, StringRef message) {
  std::string line;
  for (char c : message.trim())
    if (!(isspace(static_cast<unsigned char>(c)) && (line.empty() || line.back() == ' ')))
      line += isspace(static_cast<unsigned char>(c)) ? ' ' : c;
  diag << what << ": " << line;
}

bool ONNXImporter::checkModel() {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception &e) {
    InFlightDiagnostic diag = fileError();
    reportLibraryError(diag, "fails onnx::checker", e.what());
    return false;
  }
  return true;
}

/// ONNX's strict shape inference, after Kiln's own import checked every
/// node it reaches: libonnx 1.12's Conv and pool inference reads out of
/// bounds on a weight whose rank is not the input's (found by the fuzzer),
/// so it only sees graphs whose window ops Kiln has validated.
bool ONNXImporter::inferShapes() {
  try {
    onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*error_mode=*/1);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception &e) {
    InFlightDiagnostic diag = fileError();
    reportLibraryError(diag, "fails ONNX shape inference", e.what());
    return false;
  }
  return true;
}

/// Every node of an operator Kiln does not import, all at once.
bool ONNXImporter::reportUnsupported() {
  bool ok = true;
  for (const onnx::NodeProto &node : model.graph().node())
    if (!supportedOps().contains(node.op_type())) {
      error(node) << "Kiln does not support the operator " << node.op_type() << " (opset "
                  << opset << "; docs/onnx.md lists the supported ones)";
      ok = false;
    }
  return ok;
}

bool ONNXImporter::bindWeightInputs() {
  for (const auto &[name, value] : options.weightInputs) {
    bool onlyWeights = true, used = false;
    for (const onnx::NodeProto &node : model.graph().node())
      for (int i = 0; i < node.input_size(); ++i)
        if (node.input(i) == name) {
          used = true;
          onlyWeights &= isWeightOperand(node.op_type(), i);
        }
    if (!used || !onlyWeights || constants.count(name))
      continue;
    HostTensor host;
    host.name = name;
    host.dims = value.dims;
    host.floats = value.data;
    host.isFloat = value.isFloat;
    host.ints = value.ints;
    constants[name] = std::move(host);
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Locations, attributes, operands
//===----------------------------------------------------------------------===//

Location ONNXImporter::nodeLoc(const onnx::NodeProto &node) const {
  std::string name = node.name().empty() ? "(unnamed)" : node.name();
  return NameLoc::get(StringAttr::get(context, "node '" + name + "' (" + node.op_type() + ")"),
                      fileLoc);
}

Location ONNXImporter::layerLoc(const onnx::NodeProto &node, StringRef layer) const {
  return NameLoc::get(StringAttr::get(context, layer), nodeLoc(node));
}

/// What the summary and the generated code call a layer: the state_dict
/// prefix of its weights (fc1.weight: fc1), else the module PyTorch 1.13's
/// exporter names in the node (/layers/layers.2/Sigmoid: layers.2), else
/// the node's name.
std::string ONNXImporter::layerName(const onnx::NodeProto &node, StringRef weightKey) const {
  size_t dot = weightKey.rfind('.');
  if (dot != StringRef::npos && dot > 0)
    return weightKey.substr(0, dot).str();
  StringRef name = node.name();
  if (name.startswith("/")) {
    SmallVector<StringRef, 4> parts;
    name.drop_front().split(parts, '/');
    if (parts.size() >= 2 && !parts[parts.size() - 2].empty())
      return parts[parts.size() - 2].str();
  }
  return name.empty() ? node.op_type() : name.str();
}

const onnx::AttributeProto *ONNXImporter::attribute(const onnx::NodeProto &node,
                                                    StringRef name) const {
  for (const onnx::AttributeProto &attr : node.attribute())
    if (attr.name() == name)
      return &attr;
  return nullptr;
}

int64_t ONNXImporter::intAttr(const onnx::NodeProto &node, StringRef name,
                              int64_t fallback) const {
  const onnx::AttributeProto *attr = attribute(node, name);
  return attr && attr->has_i() ? attr->i() : fallback;
}

float ONNXImporter::floatAttr(const onnx::NodeProto &node, StringRef name, float fallback) const {
  const onnx::AttributeProto *attr = attribute(node, name);
  return attr && attr->has_f() ? attr->f() : fallback;
}

std::string ONNXImporter::stringAttr(const onnx::NodeProto &node, StringRef name,
                                     StringRef fallback) const {
  const onnx::AttributeProto *attr = attribute(node, name);
  return attr && attr->has_s() ? attr->s() : fallback.str();
}

SmallVector<int64_t, 4> ONNXImporter::intsAttr(const onnx::NodeProto &node, StringRef name,
                                               ArrayRef<int64_t> fallback) const {
  const onnx::AttributeProto *attr = attribute(node, name);
  if (!attr || (attr->ints_size() == 0 && attr->type() != onnx::AttributeProto::INTS))
    return SmallVector<int64_t, 4>(fallback.begin(), fallback.end());
  return SmallVector<int64_t, 4>(attr->ints().begin(), attr->ints().end());
}

FailureOr<Value> ONNXImporter::dataInput(const onnx::NodeProto &node, int i, StringRef role) {
  if (!hasInput(node, i)) {
    error(node) << "has no " << role;
    return failure();
  }
  const std::string &name = node.input(i);
  auto it = values.find(name);
  if (it != values.end() && it->second)
    return it->second;
  if (auto pad = zeroPads.find(name); pad != zeroPads.end()) {
    error(node) << "reads '" << name << "', the output of the Pad node '" << pad->second.node
                << "' (begin " << shapeText(pad->second.begin) << ", end "
                << shapeText(pad->second.end)
                << " over H and W); Kiln takes padding only as part of the Conv or "
                   "AveragePool after it";
    return failure();
  }
  if (!poisoned.count(name)) {
    if (constants.count(name))
      error(node) << "takes a constant ('" << name << "') as its " << role
                  << "; Kiln computes only on tensors that come from the graph's inputs";
    else
      error(node) << "reads '" << name << "', which no node or input defines";
  }
  return failure();
}

FailureOr<const HostTensor *> ONNXImporter::constantInput(const onnx::NodeProto &node, int i,
                                                          StringRef role) {
  const std::string &name = node.input(i);
  auto it = constants.find(name);
  if (it != constants.end())
    return &it->second;
  if (!poisoned.count(name))
    error(node) << "takes its " << role << " ('" << name
                << "') from a tensor computed at run time; Kiln compiles weights into the "
                   "model, so it must be an initializer or a Constant";
  return failure();
}

/// Outputs past `keep` (optional ones: Dropout's mask, MaxPool's indices)
/// must be unused.
bool ONNXImporter::onlyOutput(const onnx::NodeProto &node, int keep) {
  for (int i = keep; i < node.output_size(); ++i)
    if (!node.output(i).empty()) {
      error(node) << "has output " << i << " ('" << node.output(i)
                  << "'), which Kiln does not compute";
      return false;
    }
  return true;
}

void ONNXImporter::define(const onnx::NodeProto &node, int output, Value value) {
  // Null: the op's shape was refused (reported); the output stays undefined.
  if (value && output < node.output_size() && !node.output(output).empty())
    values[node.output(output)] = value;
}

Value ONNXImporter::weight(const onnx::NodeProto &node, const std::string &key,
                           ArrayRef<int64_t> shape, ArrayRef<float> data, bool trainable) {
  auto existing = stateByKey.find(key);
  std::string unique = key;
  if (existing != stateByKey.end()) {
    // The same initializer read twice the same way is one parameter.
    auto attr = nn::getBoundValue(existing->second);
    if (attr && attr.getType().getShape() == shape &&
        llvm::equal(attr.getValues<float>(), data))
      return existing->second;
    for (int n = 1; stateByKey.count(unique); ++n)
      unique = key + "." + std::to_string(n);
  }
  OpBuilder::InsertionGuard guard(builder);
  atStateEnd();
  auto type = RankedTensorType::get(shape, builder.getF32Type());
  auto value = DenseElementsAttr::get(type, data);
  Location loc = NameLoc::get(builder.getStringAttr(unique), nodeLoc(node));
  Value result = trainable ? builder.create<nn::ParamOp>(loc, type, unique, value).getResult()
                           : builder.create<nn::BufferOp>(loc, type, unique, value).getResult();
  stateByKey[unique] = result;
  lastState = result.getDefiningOp();
  return result;
}

/// PyTorch's BatchNorm has a num_batches_tracked buffer, which the ONNX
/// export drops: it is added back (0) so state_dicts match key for key.
Value ONNXImporter::numBatchesTracked(const onnx::NodeProto &node, const std::string &prefix) {
  std::string key = prefix + ".num_batches_tracked";
  if (stateByKey.count(key))
    return stateByKey[key];
  OpBuilder::InsertionGuard guard(builder);
  atStateEnd();
  auto type = RankedTensorType::get({}, builder.getI64Type());
  Location loc = NameLoc::get(builder.getStringAttr(key), nodeLoc(node));
  Value result = builder.create<nn::BufferOp>(loc, type, key,
                                              DenseElementsAttr::get(type, int64_t(0)));
  stateByKey[key] = result;
  lastState = result.getDefiningOp();
  return result;
}

template <typename OpTy, typename... Args>
Value ONNXImporter::build(const onnx::NodeProto &node, StringRef layer,
                          FailureOr<nn::Shape> shape, Args &&...args) {
  if (failed(shape))
    return nullptr;
  auto type = RankedTensorType::get(*shape, builder.getF32Type());
  return builder.create<OpTy>(layerLoc(node, layer), type, std::forward<Args>(args)...);
}

ArrayRef<int64_t> shapeOf(Value value) {
  return value.getType().cast<RankedTensorType>().getShape();
}

std::vector<float> transposed(const HostTensor &t) {
  int64_t rows = t.dims[0], cols = t.dims[1];
  std::vector<float> out(t.floats.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[c * rows + r] = t.floats[r * cols + c];
  return out;
}

//===----------------------------------------------------------------------===//
// Nodes
//===----------------------------------------------------------------------===//

void ONNXImporter::importNode(const onnx::NodeProto &node) {
  // A node reading the output of a failed one is not reported again.
  for (const std::string &input : node.input())
    if (poisoned.count(input)) {
      for (const std::string &output : node.output())
        poisoned.insert(output);
      return;
    }
  StringRef op = node.op_type();
  LogicalResult result = success();
  if (!legacyFormIsRead(node))
    result = failure();
  else if (onnximport::isFoldableOp(op) && (op != "Reshape" || allInputsConstant(node)))
    result = foldConstantNode(node);
  else if (op == "Gemm")
    result = importGemm(node);
  else if (op == "MatMul")
    result = importMatMul(node);
  else if (op == "Conv")
    result = importConv(node);
  else if (op == "BatchNormalization")
    result = importBatchNorm(node);
  else if (op == "AveragePool" || op == "MaxPool")
    result = importPool(node);
  else if (op == "GlobalAveragePool")
    result = importGlobalAveragePool(node);
  else if (op == "Flatten")
    result = importFlatten(node);
  else if (op == "Reshape")
    result = importReshape(node);
  else if (op == "Squeeze" || op == "Unsqueeze")
    result = importSqueeze(node, op == "Unsqueeze");
  else if (op == "Add")
    result = importAdd(node);
  else if (op == "Dropout")
    result = importDropout(node);
  else if (op == "Constant")
    result = importConstant(node);
  else if (op == "Pad")
    result = importPad(node);
  else if (op == "Softmax" || op == "LogSoftmax")
    result = importSoftmax(node);
  else if (op == "Identity") {
    if (constants.count(node.input(0)))
      constants[node.output(0)] = constants[node.input(0)];
    else if (FailureOr<Value> x = dataInput(node, 0, "input"); succeeded(x))
      define(node, 0, *x);
    else
      result = failure();
  } else { // Relu, Sigmoid, Tanh
    FailureOr<Value> x = dataInput(node, 0, "input");
    if (failed(x)) {
      result = failure();
    } else {
      nn::Shape shape(shapeOf(*x).begin(), shapeOf(*x).end());
      std::string layer = layerName(node);
      Value y = op == "Relu"      ? build<nn::ReluOp>(node, layer, shape, *x)
                : op == "Sigmoid" ? build<nn::SigmoidOp>(node, layer, shape, *x)
                                  : build<nn::TanhOp>(node, layer, shape, *x);
      define(node, 0, y);
    }
  }
  bool defined = llvm::all_of(node.output(), [&](const std::string &output) {
    return output.empty() || values.count(output) || constants.count(output) ||
           zeroPads.count(output);
  });
  if (failed(result) || !defined)
    for (const std::string &output : node.output())
      poisoned.insert(output);
}

// What changed in the operators Kiln imports before opset 9 (ONNX's
// Changelog.md): Reshape took its shape as an attribute before 5, Pad its
// pads as `paddings` before 2, Concat's axis defaulted to 1 before 4,
// Cast's `to` was a string before 6; before 7 `broadcast` switched on a
// broadcasting of its own (B aligned at `axis`), and BatchNormalization's
// `is_test` chose the mode; before 9 its `spatial` could ask for one
// statistic per activation. Attributes with no effect on the result
// (consumed_inputs, Dropout's is_test, Gemm's broadcast of a bias Kiln takes
// anyway) are ignored.
bool ONNXImporter::legacyFormIsRead(const onnx::NodeProto &node) {
  if (opset >= 9)
    return true;
  StringRef op = node.op_type();
  int64_t since = op == "Reshape" ? 5 : op == "Pad" ? 2 : op == "Concat" ? 4 : op == "Cast" ? 6 : 0;
  if (opset < since) {
    error(node) << "is in its form before opset " << since << " (the model's opset is " << opset
                << "), which Kiln does not read";
    return false;
  }
  if (opset < 7 && op == "Add" && intAttr(node, "broadcast", 0) != 0) {
    error(node) << "has broadcast=1 at opset " << opset
                << " (B aligned at axis " << intAttr(node, "axis", -1)
                << "), which Kiln does not read; it adds tensors of one shape";
    return false;
  }
  if (op == "BatchNormalization") {
    if (opset < 7 && intAttr(node, "is_test", 0) == 0) {
      error(node) << "has is_test=0 at opset " << opset
                  << " (training mode); Kiln imports BatchNormalization for inference";
      return false;
    }
    if (intAttr(node, "spatial", 1) == 0) {
      error(node) << "has spatial=0 (a mean and variance per activation, not per channel), "
                     "which Kiln does not take";
      return false;
    }
  }
  return true;
}

bool ONNXImporter::allInputsConstant(const onnx::NodeProto &node) const {
  return llvm::all_of(node.input(), [&](const std::string &input) {
    return input.empty() || constants.count(input);
  });
}

// Shape arithmetic on constants (ONNXConstantFolding.h); on tensors that
// come from the graph's inputs these operators are not imported.
LogicalResult ONNXImporter::foldConstantNode(const onnx::NodeProto &node) {
  std::vector<const HostTensor *> inputs;
  for (int i = 0; i < node.input_size(); ++i) {
    if (node.input(i).empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    auto it = constants.find(node.input(i));
    if (it == constants.end()) {
      if (!poisoned.count(node.input(i)))
        error(node) << "computes on '" << node.input(i)
                    << "', a tensor computed at run time; Kiln evaluates " << node.op_type()
                    << " only over constants (the shapes and pads exporters compute)";
      return failure();
    }
    inputs.push_back(&it->second);
  }
  HostTensor result;
  std::string message;
  if (!onnximport::foldConstantOp(node, opset, modelDir, inputs, result, message)) {
    error(node) << message;
    return failure();
  }
  constants[node.output(0)] = std::move(result);
  return success();
}

LogicalResult ONNXImporter::importGemm(const onnx::NodeProto &node) {
  FailureOr<Value> a = dataInput(node, 0, "input A");
  if (failed(a))
    return failure();
  if (intAttr(node, "transA", 0)) {
    error(node) << "has transA=1, which transposes the batch: Kiln's batch is dimension 0 of A";
    return failure();
  }
  ArrayRef<int64_t> in = shapeOf(*a);
  if (in.size() != 2) {
    error(node) << "takes A of shape " << shapeText(in) << "; Gemm's A is [batch, K]";
    return failure();
  }
  FailureOr<const HostTensor *> b = constantInput(node, 1, "weight B");
  if (failed(b))
    return failure();
  const HostTensor &bt = **b;
  if (bt.dims.size() != 2 || !bt.isFloat) {
    error(node) << "takes a weight B of shape " << shapeText(bt.dims) << "; it must be 2-D float";
    return failure();
  }
  bool transB = intAttr(node, "transB", 0) != 0;
  float alpha = floatAttr(node, "alpha", 1.0f), beta = floatAttr(node, "beta", 1.0f);
  int64_t out = transB ? bt.dims[0] : bt.dims[1];
  // Linear's weight is [out, in]: B as it is with transB=1 (how PyTorch
  // exports nn.Linear), else transposed; alpha is folded into it.
  std::vector<float> w = transB ? bt.floats : transposed(bt);
  if (alpha != 1.0f)
    for (float &v : w)
      v *= alpha;
  SmallVector<int64_t, 2> wShape = {out, transB ? bt.dims[1] : bt.dims[0]};
  Value wValue = weight(node, bt.name, wShape, w, true);
  Value bias;
  if (hasInput(node, 2)) {
    FailureOr<const HostTensor *> c = constantInput(node, 2, "bias C");
    if (failed(c))
      return failure();
    const HostTensor &ct = **c;
    // A bias per output feature, broadcast over the batch: [], [1], [out],
    // [1, 1] or [1, out].
    int64_t elements = ct.elements();
    bool perFeature = ct.isFloat && ct.dims.size() <= 2 &&
                      (elements == 1 || (elements == out && ct.dims.back() == out));
    if (!perFeature) {
      error(node) << "takes a bias C of shape " << shapeText(ct.dims)
                  << ", which is not one value per output feature (Kiln's Linear adds a bias "
                     "of shape [" << out << "] to every row)";
      return failure();
    }
    std::vector<float> values(static_cast<size_t>(out));
    for (int64_t i = 0; i < out; ++i)
      values[i] = beta * ct.floats[elements == 1 ? 0 : i];
    bias = weight(node, ct.name, {out}, values, true);
  }
  std::string layer = layerName(node, bt.name);
  auto biasShape = bias ? Optional<nn::ShapeRef>(shapeOf(bias)) : llvm::None;
  define(node, 0,
         build<nn::LinearOp>(node, layer,
                             nn::inferLinearShape(errorFn(node), in, wShape, biasShape), *a,
                             wValue, bias, StringAttr()));
  return success();
}

LogicalResult ONNXImporter::importMatMul(const onnx::NodeProto &node) {
  FailureOr<Value> a = dataInput(node, 0, "input A");
  if (failed(a))
    return failure();
  FailureOr<const HostTensor *> b = constantInput(node, 1, "weight B");
  if (failed(b))
    return failure();
  const HostTensor &bt = **b;
  if (bt.dims.size() != 2 || !bt.isFloat) {
    error(node) << "takes a weight B of shape " << shapeText(bt.dims)
                << "; Kiln's MatMul multiplies by a 2-D float matrix (batched B is not taken)";
    return failure();
  }
  SmallVector<int64_t, 2> wShape = {bt.dims[1], bt.dims[0]};
  Value w = weight(node, bt.name, wShape, transposed(bt), true);
  Value y = build<nn::LinearOp>(node, layerName(node, bt.name),
                                nn::inferLinearShape(errorFn(node), shapeOf(*a), wShape, llvm::None),
                                *a, w, Value(), StringAttr());
  if (!y)
    return failure();
  define(node, 0, y);
  // MatMul + Add of a bias is PyTorch's export of a Linear on 3-D input.
  if (useCounts[node.output(0)] == 1 && !graphOutputs.count(node.output(0)))
    biaslessMatMuls[node.output(0)] = y.getDefiningOp<nn::LinearOp>();
  return success();
}

/// Begin and end padding of a window op (Conv, pools): `pads` (ONNX's
/// [top, left, bottom, right]) or auto_pad.
FailureOr<std::pair<SmallVector<int64_t, 2>, SmallVector<int64_t, 2>>>
ONNXImporter::windowPads(const onnx::NodeProto &node, ArrayRef<int64_t> input,
                         ArrayRef<int64_t> kernel, ArrayRef<int64_t> stride,
                         ArrayRef<int64_t> dilation) {
  std::string autoPad = stringAttr(node, "auto_pad", "NOTSET");
  SmallVector<int64_t, 2> begin = {0, 0}, end = {0, 0};
  if (autoPad == "NOTSET") {
    SmallVector<int64_t, 4> pads = intsAttr(node, "pads", {0, 0, 0, 0});
    if (pads.size() != 4 || llvm::any_of(pads, [](int64_t p) { return p < 0; })) {
      error(node) << "has pads of " << pads.size() << " values (or negative ones); a 2-D window "
                     "takes 4: [top, left, bottom, right]";
      return failure();
    }
    begin = {pads[0], pads[1]};
    end = {pads[2], pads[3]};
  } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    // The output is ceil(in / stride); the padding that needs, split evenly,
    // the odd one at the end (SAME_UPPER) or the beginning (SAME_LOWER).
    for (int d = 0; d < 2; ++d) {
      int64_t in = input[2 + d], outSize = (in + stride[d] - 1) / stride[d];
      int64_t total = std::max<int64_t>(
          (outSize - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 - in, 0);
      int64_t small = total / 2;
      begin[d] = autoPad == "SAME_UPPER" ? small : total - small;
      end[d] = total - begin[d];
    }
  } else if (autoPad != "VALID") {
    error(node) << "has auto_pad '" << autoPad
                << "'; ONNX's are NOTSET, SAME_UPPER, SAME_LOWER and VALID";
    return failure();
  }
  return std::make_pair(begin, end);
}

/// A Conv's or pool's input: a graph value, or the input of the zero Pad
/// before it, whose padding the node takes over (PyTorch 1.13 exports
/// AvgPool2d's padding so, and other exporters Conv's).
FailureOr<ONNXImporter::WindowInput> ONNXImporter::windowInput(const onnx::NodeProto &node) {
  WindowInput result;
  auto pad = hasInput(node, 0) ? zeroPads.find(node.input(0)) : zeroPads.end();
  if (pad != zeroPads.end()) {
    result.value = pad->second.input;
    result.padBegin = pad->second.begin;
    result.padEnd = pad->second.end;
    result.foldsPad = true;
  } else {
    FailureOr<Value> x = dataInput(node, 0, "input X");
    if (failed(x))
      return failure();
    result.value = *x;
  }
  ArrayRef<int64_t> in = shapeOf(result.value);
  result.shape.assign(in.begin(), in.end());
  if (in.size() != 4) {
    error(node) << "takes an input of shape " << shapeText(in)
                << "; Kiln's Conv and pooling are 2-D (input [N, C, H, W])";
    return failure();
  }
  for (int d = 0; d < 2; ++d)
    result.shape[2 + d] += result.padBegin[d] + result.padEnd[d];
  return result;
}

/// Adds a node's own padding to the padding of the Pad folded into it.
static void addPads(SmallVectorImpl<int64_t> &into, ArrayRef<int64_t> pads) {
  for (size_t d = 0; d < into.size(); ++d)
    into[d] += pads[d];
}

LogicalResult ONNXImporter::importConv(const onnx::NodeProto &node) {
  FailureOr<WindowInput> x = windowInput(node);
  if (failed(x))
    return failure();
  if (int64_t group = intAttr(node, "group", 1); group != 1) {
    error(node) << "has group=" << group
                << " (a grouped or depthwise convolution), which Kiln does not support";
    return failure();
  }
  FailureOr<const HostTensor *> w = constantInput(node, 1, "weight W");
  if (failed(w))
    return failure();
  const HostTensor &wt = **w;
  if (wt.dims.size() != 4 || !wt.isFloat) {
    error(node) << "has a weight W of shape " << shapeText(wt.dims)
                << "; a 2-D convolution's is [out, in, kH, kW] float";
    return failure();
  }
  SmallVector<int64_t, 2> kernel = {wt.dims[2], wt.dims[3]};
  if (ArrayRef<int64_t>(intsAttr(node, "kernel_shape", kernel)) != ArrayRef<int64_t>(kernel)) {
    error(node) << "has kernel_shape unlike its weight's " << shapeText(kernel);
    return failure();
  }
  SmallVector<int64_t, 4> stride = intsAttr(node, "strides", {1, 1});
  SmallVector<int64_t, 4> dilation = intsAttr(node, "dilations", {1, 1});
  if (stride.size() != 2 || dilation.size() != 2 ||
      llvm::any_of(stride, [](int64_t s) { return s < 1; }) ||
      llvm::any_of(dilation, [](int64_t d) { return d < 1; })) {
    error(node) << "has strides or dilations that are not two positive values";
    return failure();
  }
  auto pads = windowPads(node, x->shape, kernel, stride, dilation);
  if (failed(pads))
    return failure();
  addPads(x->padBegin, pads->first);
  addPads(x->padEnd, pads->second);
  Value wValue = weight(node, wt.name, wt.dims, wt.floats, true);
  Value bias;
  if (hasInput(node, 2)) {
    FailureOr<const HostTensor *> b = constantInput(node, 2, "bias B");
    if (failed(b))
      return failure();
    if ((*b)->dims.size() != 1 || !(*b)->isFloat) {
      error(node) << "has a bias B of shape " << shapeText((*b)->dims) << "; it must be [out]";
      return failure();
    }
    bias = weight(node, (*b)->name, (*b)->dims, (*b)->floats, true);
  }
  nn::WindowSpec window;
  window.stride.assign(stride.begin(), stride.end());
  window.padding.assign(x->padBegin.begin(), x->padBegin.end());
  window.paddingEnd.assign(x->padEnd.begin(), x->padEnd.end());
  window.dilation.assign(dilation.begin(), dilation.end());
  // The attributes a plain convolution leaves out stay out of the IR.
  bool asymmetric = x->padBegin != x->padEnd;
  bool dilated = dilation[0] != 1 || dilation[1] != 1;
  auto biasShape = bias ? Optional<nn::ShapeRef>(shapeOf(bias)) : llvm::None;
  define(node, 0,
         build<nn::Conv2DOp>(
             node, layerName(node, wt.name),
             nn::inferConv2DShape(errorFn(node), shapeOf(x->value), wt.dims, biasShape, window),
             x->value, wValue, bias, builder.getI64ArrayAttr(stride),
             builder.getI64ArrayAttr(x->padBegin),
             asymmetric ? builder.getI64ArrayAttr(x->padEnd) : ArrayAttr(),
             dilated ? builder.getI64ArrayAttr(dilation) : ArrayAttr(), StringAttr()));
  return success();
}

LogicalResult ONNXImporter::importBatchNorm(const onnx::NodeProto &node) {
  FailureOr<Value> x = dataInput(node, 0, "input X");
  if (failed(x))
    return failure();
  ArrayRef<int64_t> in = shapeOf(*x);
  if (in.size() < 2 || in.size() > 4) {
    error(node) << "normalizes an input of shape " << shapeText(in)
                << "; Kiln's BatchNorm takes [N, C], [N, C, L] or [N, C, H, W]";
    return failure();
  }
  // Training mode's extra outputs (opset 14 on) are the running statistics
  // after this batch, which the graph returns (ONNX's running update:
  // the biased batch variance, unlike PyTorch's); opset 9's were the saved
  // statistics of another definition, refused.
  bool training = intAttr(node, "training_mode", 0) != 0;
  bool runningOutputs = training && opset >= 14 && node.output_size() > 1;
  if (!onlyOutput(node, runningOutputs ? 3 : 1))
    return failure();
  const HostTensor *state[4];
  static const char *roles[] = {"scale", "bias B", "input_mean", "input_var"};
  for (int i = 0; i < 4; ++i) {
    FailureOr<const HostTensor *> t = constantInput(node, i + 1, roles[i]);
    if (failed(t))
      return failure();
    if ((*t)->dims != std::vector<int64_t>{in[1]} || !(*t)->isFloat) {
      error(node) << "has a " << roles[i] << " of shape " << shapeText((*t)->dims)
                  << " for " << in[1] << " channels";
      return failure();
    }
    state[i] = *t;
  }
  std::string layer = layerName(node, state[0]->name);
  SmallVector<int64_t, 1> channels = {in[1]};
  Value gamma = weight(node, state[0]->name, channels, state[0]->floats, true);
  Value beta = weight(node, state[1]->name, channels, state[1]->floats, true);
  Value mean, var, count;
  if (!training) {
    mean = weight(node, state[2]->name, channels, state[2]->floats, false);
    var = weight(node, state[3]->name, channels, state[3]->floats, false);
    if (StringRef(state[2]->name).endswith(".running_mean"))
      count = numBatchesTracked(node, layer);
  }
  // ONNX's momentum weighs the old running value (0.9 by default), PyTorch's
  // the new one (0.1).
  float onnxMomentum = floatAttr(node, "momentum", 0.9f), epsilon = floatAttr(node, "epsilon", 1e-5f);
  if (!(epsilon > 0.0f) || !std::isfinite(epsilon) || !(onnxMomentum >= 0.0f && onnxMomentum <= 1.0f)) {
    error(node) << "has epsilon " << nn::formatNumber(shortestDecimal(epsilon)) << " and momentum "
                << nn::formatNumber(shortestDecimal(onnxMomentum))
                << "; epsilon must be positive and finite, momentum in [0, 1]";
    return failure();
  }
  // 1 − 0.9 in double is 0.09999999999999998, not the 0.1 PyTorch exported
  // as 1 − momentum in float32: the shortest decimal of the difference in
  // float32 is (the running statistics then match the DSL's to the bit).
  double momentum = shortestDecimal(static_cast<float>(1.0 - shortestDecimal(onnxMomentum)));
  double eps = shortestDecimal(epsilon);
  // A training-mode node without the statistics outputs normalizes with the
  // batch's statistics: a BatchNorm that tracks no running statistics.
  define(node, 0,
         build<nn::BatchNormOp>(node, layer, nn::inferBatchNormShape(errorFn(node), in, in[1]),
                                *x, gamma, beta, mean, var, count,
                                builder.getF64FloatAttr(eps),
                                builder.getF64FloatAttr(std::stod(nn::formatNumber(momentum))),
                                UnitAttr()));
  if (runningOutputs)
    defineRunningStatistics(node, *x, state[2]->floats, state[3]->floats, onnxMomentum);
  return success();
}

/// ONNX's running statistics of a training-mode BatchNormalization:
/// input · momentum + batch · (1 − momentum), per channel, in float32 as
/// ONNX's reference computes them, with the batch's mean and biased
/// variance (nn.batch_norm_stats).
void ONNXImporter::defineRunningStatistics(const onnx::NodeProto &node, Value x,
                                           ArrayRef<float> inputMean, ArrayRef<float> inputVar,
                                           float momentum) {
  int64_t channels = shapeOf(x)[1];
  auto type = RankedTensorType::get({channels}, builder.getF32Type());
  Location loc = nodeLoc(node);
  auto constant = [&](std::vector<float> values) -> Value {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(builder.getBlock());
    return builder.create<arith::ConstantOp>(
        loc, DenseElementsAttr::get(type, ArrayRef<float>(values)));
  };
  auto stats = builder.create<nn::BatchNormStatsOp>(loc, TypeRange{type, type}, x);
  Value keep = constant(std::vector<float>(channels, 1.0f - momentum));
  ArrayRef<float> inputs[2] = {inputMean, inputVar};
  for (int i = 0; i < 2; ++i) {
    std::vector<float> old(inputs[i].begin(), inputs[i].end());
    for (float &value : old)
      value *= momentum;
    Value batch = builder.create<nn::MulOp>(loc, type, stats.getResult(i), keep);
    define(node, 1 + i, builder.create<nn::AddOp>(loc, type, batch, constant(old)));
  }
}

LogicalResult ONNXImporter::importPool(const onnx::NodeProto &node) {
  bool isMax = node.op_type() == "MaxPool";
  StringRef opName = isMax ? "max_pool2d" : "avg_pool2d";
  if (isMax && hasInput(node, 0) && zeroPads.count(node.input(0))) {
    // Zeros are not MaxPool's padding (-Inf): they win over negative inputs.
    const ZeroPad &pad = zeroPads[node.input(0)];
    error(node) << "reads the output of the Pad node '" << pad.node
                << "', which pads with zeros; a MaxPool's own padding is -Inf, so Kiln "
                   "cannot take the zeros as its padding";
    return failure();
  }
  FailureOr<WindowInput> x = windowInput(node);
  if (failed(x))
    return failure();
  if (!onlyOutput(node, 1))
    return failure();
  if (isMax && intAttr(node, "storage_order", 0) != 0 && node.output_size() > 1) {
    error(node) << "has storage_order=1, which only changes the Indices output Kiln does "
                   "not compute";
    return failure();
  }
  SmallVector<int64_t, 4> kernel = intsAttr(node, "kernel_shape", {});
  SmallVector<int64_t, 4> stride = intsAttr(node, "strides", {1, 1});
  SmallVector<int64_t, 4> dilation = intsAttr(node, "dilations", {1, 1});
  auto positive = [](ArrayRef<int64_t> v) { return llvm::all_of(v, [](int64_t x) { return x >= 1; }); };
  if (kernel.size() != 2 || stride.size() != 2 || dilation.size() != 2 || !positive(kernel) ||
      !positive(stride) || !positive(dilation)) {
    error(node) << "has kernel_shape, strides or dilations other than two positive values";
    return failure();
  }
  bool dilated = dilation[0] != 1 || dilation[1] != 1;
  if (!isMax && dilated) {
    // AveragePool has dilations from opset 19, past the opsets Kiln imports.
    error(node) << "has dilations " << shapeText(dilation)
                << "; AveragePool takes none before opset 19";
    return failure();
  }
  auto pads = windowPads(node, x->shape, kernel, stride, dilation);
  if (failed(pads))
    return failure();
  bool ownPads = llvm::any_of(pads->first, [](int64_t p) { return p != 0; }) ||
                 llvm::any_of(pads->second, [](int64_t p) { return p != 0; });
  // A Pad's zeros are elements to the AveragePool after it: they count in
  // the divisor, which is count_include_pad for the whole padding.
  bool countIncludePad = intAttr(node, "count_include_pad", 0) != 0;
  if (x->foldsPad && ownPads && !countIncludePad) {
    error(node) << "pads by " << shapeText(pads->first) << " / " << shapeText(pads->second)
                << " without count_include_pad after a Pad node, whose zeros count: one "
                   "AveragePool cannot count one padding and not the other";
    return failure();
  }
  countIncludePad |= x->foldsPad;
  addPads(x->padBegin, pads->first);
  addPads(x->padEnd, pads->second);
  bool ceilMode = intAttr(node, "ceil_mode", 0) != 0;
  bool padded = x->padBegin != SmallVector<int64_t, 2>{0, 0} || x->padEnd != x->padBegin;
  nn::WindowSpec window;
  window.stride.assign(stride.begin(), stride.end());
  window.padding.assign(x->padBegin.begin(), x->padBegin.end());
  window.paddingEnd.assign(x->padEnd.begin(), x->padEnd.end());
  window.dilation.assign(dilation.begin(), dilation.end());
  window.ceilMode = ceilMode;
  ArrayRef<int64_t> in = shapeOf(x->value);
  // ceil_mode: ONNX (to opset 18) keeps a last window that starts in the
  // end padding, PyTorch (and Kiln) drops it. Where that window exists the
  // two disagree on the output's size.
  for (int d = 0; ceilMode && d < 2; ++d) {
    int64_t span = in[2 + d] + x->padBegin[d] + x->padEnd[d] - dilation[d] * (kernel[d] - 1) - 1;
    int64_t onnxSize = span < 0 ? 0 : (span + stride[d] - 1) / stride[d] + 1;
    int64_t kilnSize = nn::windowOutputSize(in[2 + d], kernel[d], stride[d], x->padBegin[d],
                                            x->padEnd[d], dilation[d], true);
    if (span >= 0 && onnxSize != kilnSize) {
      error(node) << "has ceil_mode with a last window along " << (d ? "W" : "H")
                  << " that starts in the end padding: ONNX keeps it (" << onnxSize
                  << " outputs), PyTorch and Kiln drop it (" << kilnSize << ")";
      return failure();
    }
  }
  std::string layer = layerName(node);
  FailureOr<nn::Shape> shape = nn::inferPool2DShape(errorFn(node), opName, in, kernel, window);
  ArrayAttr kernelAttr = builder.getI64ArrayAttr(kernel), strideAttr = builder.getI64ArrayAttr(stride);
  bool asymmetric = x->padBegin != x->padEnd;
  ArrayAttr padAttr = padded ? builder.getI64ArrayAttr(x->padBegin) : ArrayAttr();
  ArrayAttr padEndAttr = asymmetric ? builder.getI64ArrayAttr(x->padEnd) : ArrayAttr();
  UnitAttr ceilAttr = ceilMode ? builder.getUnitAttr() : UnitAttr();
  if (isMax) {
    define(node, 0,
           build<nn::MaxPool2DOp>(node, layer, shape, x->value, kernelAttr, strideAttr, padAttr,
                                  padEndAttr,
                                  dilated ? builder.getI64ArrayAttr(dilation) : ArrayAttr(),
                                  ceilAttr));
  } else {
    // Without padding both divisors agree: the attribute stays out.
    UnitAttr includeAttr = padded && countIncludePad ? builder.getUnitAttr() : UnitAttr();
    define(node, 0,
           build<nn::AvgPool2DOp>(node, layer, shape, x->value, kernelAttr, strideAttr, padAttr,
                                  padEndAttr, ceilAttr, includeAttr));
  }
  return success();
}

LogicalResult ONNXImporter::importGlobalAveragePool(const onnx::NodeProto &node) {
  FailureOr<Value> x = dataInput(node, 0, "input X");
  if (failed(x))
    return failure();
  ArrayRef<int64_t> in = shapeOf(*x);
  if (in.size() != 4) {
    error(node) << "pools an input of shape " << shapeText(in)
                << "; Kiln's pooling is 2-D (input [N, C, H, W])";
    return failure();
  }
  // One window of the whole image.
  SmallVector<int64_t, 2> window = {in[2], in[3]};
  define(node, 0,
         build<nn::AvgPool2DOp>(
             node, layerName(node),
             nn::inferPool2DShape(errorFn(node), "avg_pool2d", in, window, window), *x,
             builder.getI64ArrayAttr(window), builder.getI64ArrayAttr(window)));
  return success();
}

LogicalResult ONNXImporter::importFlatten(const onnx::NodeProto &node) {
  FailureOr<Value> x = dataInput(node, 0, "input");
  if (failed(x))
    return failure();
  ArrayRef<int64_t> in = shapeOf(*x);
  int64_t rank = static_cast<int64_t>(in.size());
  int64_t axis = intAttr(node, "axis", 1);
  if (axis < 0)
    axis += rank;
  if (axis != 1) {
    error(node) << "flattens at axis " << intAttr(node, "axis", 1) << " of " << shapeText(in)
                << ", which merges the batch (dimension 0) with other dimensions; Kiln "
                   "flattens at axis 1";
    return failure();
  }
  SmallVector<int64_t, 2> target = {in[0], 1};
  for (int64_t d = 1; d < rank; ++d)
    target[1] *= in[d];
  return reshapeAsFlatten(node, *x, target);
}

/// Defines the node's output as `input` reshaped to `target` (dimension 0,
/// the batch, kept), which must merge one run of dimensions (nn.flatten)
/// or change nothing.
LogicalResult ONNXImporter::reshapeAsFlatten(const onnx::NodeProto &node, Value input,
                                             ArrayRef<int64_t> target) {
  ArrayRef<int64_t> in = shapeOf(input);
  auto refuse = [&] {
    error(node) << "reshapes " << shapeText(in) << " to " << shapeText(target)
                << ", which is not a flatten (merging a run of dimensions after the batch); "
                   "Kiln reshapes only that way";
    return failure();
  };
  if (target.empty() || target[0] != in[0])
    return refuse();
  if (target == in) {
    define(node, 0, input);
    return success();
  }
  size_t prefix = 1;
  while (prefix < in.size() && prefix < target.size() && in[prefix] == target[prefix])
    ++prefix;
  size_t inEnd = in.size(), targetEnd = target.size();
  while (inEnd > prefix && targetEnd > prefix + 1 && in[inEnd - 1] == target[targetEnd - 1]) {
    --inEnd;
    --targetEnd;
  }
  // in[prefix, inEnd) merges into target[prefix], the only changed dimension.
  if (targetEnd != prefix + 1 || inEnd <= prefix)
    return refuse();
  int64_t merged = 1;
  for (size_t d = prefix; d < inEnd; ++d)
    merged *= in[d];
  if (merged != target[prefix])
    return refuse();
  int64_t start = static_cast<int64_t>(prefix), end = static_cast<int64_t>(inEnd) - 1;
  define(node, 0,
         build<nn::FlattenOp>(node, layerName(node),
                              nn::inferFlattenShape(errorFn(node), in, start, end), input,
                              builder.getI64IntegerAttr(start), builder.getI64IntegerAttr(end)));
  return success();
}

LogicalResult ONNXImporter::importReshape(const onnx::NodeProto &node) {
  FailureOr<Value> x = dataInput(node, 0, "data");
  if (failed(x))
    return failure();
  FailureOr<const HostTensor *> shapeInput = constantInput(node, 1, "shape");
  if (failed(shapeInput))
    return failure();
  const HostTensor &spec = **shapeInput;
  ArrayRef<int64_t> in = shapeOf(*x);
  if (spec.isFloat || spec.dims.size() != 1 || spec.ints.empty()) {
    error(node) << "has a shape input that is not a 1-D list of integers";
    return failure();
  }
  bool allowZero = intAttr(node, "allowzero", 0) != 0;
  int64_t perSample = 1;
  for (size_t d = 1; d < in.size(); ++d)
    perSample *= in[d];
  // Dimension 0 must stay the batch: 0 (copy), -1 with the rest giving a
  // sample's elements, or the batch an export fixed.
  SmallVector<int64_t, 4> target;
  int inferred = -1;
  for (size_t d = 0; d < spec.ints.size(); ++d) {
    int64_t dim = spec.ints[d];
    if (dim == 0 && !allowZero) {
      if (d >= in.size()) {
        error(node) << "copies dimension " << d << " (a 0 in its shape) that "
                    << shapeText(in) << " does not have";
        return failure();
      }
      dim = in[d];
    } else if (dim == -1) {
      if (inferred >= 0) {
        error(node) << "has more than one -1 in its shape";
        return failure();
      }
      inferred = static_cast<int>(d);
    } else if (dim < 0 || (dim == 0 && allowZero)) {
      error(node) << "has the dimension " << dim << " in its shape";
      return failure();
    }
    target.push_back(dim);
  }
  if (inferred != 0 && target[0] != nn::kDynamic && target[0] != fixedBatch) {
    error(node) << "reshapes to " << shapeText(target)
                << ", whose dimension 0 is not the batch";
    return failure();
  }
  target[0] = in[0];
  int64_t known = 1;
  for (size_t d = 1; d < target.size(); ++d)
    if (static_cast<int>(d) != inferred)
      known *= target[d];
  if (inferred > 0) {
    if (known == 0 || perSample % known) {
      error(node) << "reshapes " << shapeText(in) << " to " << shapeText(target)
                  << ": the sizes do not divide";
      return failure();
    }
    target[inferred] = perSample / known;
  } else if (inferred < 0 && known != perSample) {
    error(node) << "reshapes " << shapeText(in) << " (" << perSample
                << " elements per sample) to " << shapeText(target);
    return failure();
  }
  return reshapeAsFlatten(node, *x, target);
}

LogicalResult ONNXImporter::importSqueeze(const onnx::NodeProto &node, bool unsqueeze) {
  FailureOr<Value> x = dataInput(node, 0, "data");
  if (failed(x))
    return failure();
  ArrayRef<int64_t> in = shapeOf(*x);
  // Axes: an attribute before opset 13, an input from 13 on.
  SmallVector<int64_t, 4> axes = intsAttr(node, "axes", {});
  if (hasInput(node, 1)) {
    FailureOr<const HostTensor *> given = constantInput(node, 1, "axes");
    if (failed(given))
      return failure();
    if ((*given)->isFloat) {
      error(node) << "has float axes";
      return failure();
    }
    axes.assign((*given)->ints.begin(), (*given)->ints.end());
  }
  int64_t outRank = static_cast<int64_t>(in.size()) +
                    (unsqueeze ? static_cast<int64_t>(axes.size()) : 0);
  std::set<int64_t> chosen;
  for (int64_t axis : axes) {
    int64_t rank = unsqueeze ? outRank : static_cast<int64_t>(in.size());
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank || !chosen.insert(a).second) {
      error(node) << "has the axis " << axis << " out of range or repeated";
      return failure();
    }
    if (a == 0) {
      error(node) << (unsqueeze ? "inserts a dimension before" : "removes")
                  << " the batch (axis 0)";
      return failure();
    }
  }
  SmallVector<int64_t, 4> target;
  if (unsqueeze) {
    size_t next = 0;
    for (int64_t d = 0; d < outRank; ++d)
      target.push_back(chosen.count(d) ? 1 : in[next++]);
  } else {
    for (size_t d = 0; d < in.size(); ++d) {
      bool drop = axes.empty() ? (d > 0 && in[d] == 1) : chosen.count(d) > 0;
      if (drop && in[d] != 1) {
        error(node) << "squeezes dimension " << d << " of " << shapeText(in)
                    << ", which is not 1";
        return failure();
      }
      if (!drop)
        target.push_back(in[d]);
    }
  }
  return reshapeAsFlatten(node, *x, target);
}

LogicalResult ONNXImporter::importAdd(const onnx::NodeProto &node) {
  bool lhsConst = constants.count(node.input(0)), rhsConst = constants.count(node.input(1));
  if (!lhsConst && !rhsConst) {
    FailureOr<Value> lhs = dataInput(node, 0, "input A");
    FailureOr<Value> rhs = dataInput(node, 1, "input B");
    if (failed(lhs) || failed(rhs))
      return failure();
    if (shapeOf(*lhs) != shapeOf(*rhs)) {
      error(node) << "adds " << shapeText(shapeOf(*lhs)) << " and " << shapeText(shapeOf(*rhs))
                  << "; Kiln adds tensors of one shape (a residual), or a constant bias";
      return failure();
    }
    define(node, 0,
           build<nn::AddOp>(node, layerName(node),
                            nn::inferAddShape(errorFn(node), shapeOf(*lhs), shapeOf(*rhs)),
                            *lhs, *rhs));
    return success();
  }
  int dataIndex = lhsConst ? 1 : 0;
  FailureOr<Value> x = dataInput(node, dataIndex, "input");
  if (failed(x))
    return failure();
  const HostTensor &b = constants[node.input(1 - dataIndex)];
  ArrayRef<int64_t> in = shapeOf(*x);
  // A bias on dimension 1 (features or channels): [C], [1, C] on [N, C];
  // [C, 1, 1] or [1, C, 1, 1] on [N, C, H, W]; the bias of a MatMul on the
  // last dimension.
  auto isBiasFor = [&](int64_t dim) {
    if (!b.isFloat || b.elements() != in[dim] || b.dims.size() >= in.size() + 1)
      return false;
    size_t offset = in.size() - b.dims.size();
    for (size_t i = 0; i < b.dims.size(); ++i)
      if (b.dims[i] != (offset + i == static_cast<size_t>(dim) ? in[dim] : 1))
        return false;
    return true;
  };
  auto pending = biaslessMatMuls.find(node.input(dataIndex));
  if (pending != biaslessMatMuls.end() && isBiasFor(static_cast<int64_t>(in.size()) - 1)) {
    // MatMul + Add: one Linear with its bias.
    nn::LinearOp matmul = pending->second;
    biaslessMatMuls.erase(pending);
    int64_t out = in.back();
    Value bias = weight(node, b.name, {out}, b.floats, true);
    builder.setInsertionPointAfter(matmul);
    auto linear = builder.create<nn::LinearOp>(matmul.getLoc(), matmul.getType(),
                                               matmul.input(), matmul.weight(), bias,
                                               StringAttr());
    matmul.replaceAllUsesWith(linear.getResult());
    matmul.erase();
    builder.setInsertionPointToEnd(linear->getBlock());
    values[node.input(dataIndex)] = linear;
    define(node, 0, linear);
    return success();
  }
  if (in.size() < 2 || !isBiasFor(1)) {
    error(node) << "adds a constant of shape " << shapeText(b.dims) << " to "
                << shapeText(in) << "; Kiln adds constants only as a bias per channel "
                << "(dimension 1)";
    return failure();
  }
  // A bias per channel: scale 1, shift b.
  int64_t channels = in[1];
  auto type = RankedTensorType::get({channels}, builder.getF32Type());
  Value ones;
  {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(builder.getBlock());
    ones = builder.create<arith::ConstantOp>(
        nodeLoc(node), DenseElementsAttr::get(type, 1.0f));
  }
  Value shift = weight(node, b.name, {channels}, b.floats, true);
  nn::Shape shape(in.begin(), in.end());
  define(node, 0,
         build<nn::ScaleShiftOp>(node, layerName(node, b.name), shape, *x, ones, shift,
                                 StringAttr()));
  return success();
}

LogicalResult ONNXImporter::importDropout(const onnx::NodeProto &node) {
  FailureOr<Value> x = dataInput(node, 0, "input");
  if (failed(x) || !onlyOutput(node, 1))
    return failure();
  if (hasInput(node, 2)) {
    FailureOr<const HostTensor *> mode = constantInput(node, 2, "training_mode");
    if (failed(mode))
      return failure();
    bool training = (*mode)->isFloat ? (*mode)->floats.at(0) != 0 : (*mode)->ints.at(0) != 0;
    if (training) {
      error(node) << "is in training mode (random masks at inference); Kiln imports "
                     "inference graphs (export in eval mode)";
      return failure();
    }
  }
  // Inference: the identity.
  define(node, 0, *x);
  return success();
}

/// A Pad of zeros over H and W of an [N, C, H, W] tensor waits for the
/// Conv or AveragePool after it, which takes it as padding (PyTorch 1.13
/// exports AvgPool2d so, with a Pad even where it pads by nothing). A Pad
/// of nothing is the identity.
LogicalResult ONNXImporter::importPad(const onnx::NodeProto &node) {
  // A zero Pad of a zero Pad is one (torch exports nn.ZeroPad2d before an
  // AvgPool2d so: its own Pad, then the pool's).
  std::optional<ZeroPad> inner;
  if (hasInput(node, 0))
    if (auto it = zeroPads.find(node.input(0)); it != zeroPads.end())
      inner = it->second;
  FailureOr<Value> x = inner ? FailureOr<Value>(inner->input) : dataInput(node, 0, "data");
  if (failed(x))
    return failure();
  // The pads and the value: attributes before opset 11, inputs from 11 on.
  SmallVector<int64_t, 8> pads(intsAttr(node, "pads", {}));
  if (hasInput(node, 1)) {
    FailureOr<const HostTensor *> given = constantInput(node, 1, "pads");
    if (failed(given))
      return failure();
    if ((*given)->isFloat) {
      error(node) << "has float pads";
      return failure();
    }
    pads.assign((*given)->ints.begin(), (*given)->ints.end());
  }
  double value = floatAttr(node, "value", 0.0f);
  if (hasInput(node, 2)) {
    FailureOr<const HostTensor *> given = constantInput(node, 2, "constant_value");
    if (failed(given))
      return failure();
    const HostTensor &t = **given;
    if (t.isFloat ? t.floats.size() != 1 : t.ints.size() != 1) {
      error(node) << "has a constant_value of " << (t.isFloat ? t.floats.size() : t.ints.size())
                  << " elements; it is a scalar";
      return failure();
    }
    value = t.isFloat ? t.floats[0] : static_cast<double>(t.ints[0]);
  }
  if (llvm::all_of(pads, [](int64_t p) { return p == 0; })) {
    if (inner)
      zeroPads[node.output(0)] = *inner;
    else
      define(node, 0, *x);
    return success();
  }
  ArrayRef<int64_t> in = shapeOf(*x);
  std::string mode = stringAttr(node, "mode", "constant");
  bool spatialOnly = in.size() == 4 && pads.size() == 8 && pads[0] == 0 && pads[1] == 0 &&
                     pads[4] == 0 && pads[5] == 0;
  if (mode != "constant" || value != 0.0 || !spatialOnly ||
      llvm::any_of(pads, [](int64_t p) { return p < 0; })) {
    error(node) << "pads by " << shapeText(pads) << " (mode '" << mode << "', value "
                << nn::formatNumber(value)
                << "); Kiln takes only a Pad of zeros over H and W of an [N, C, H, W] "
                   "tensor, as the padding of the Conv or AveragePool after it";
    return failure();
  }
  ZeroPad pad{node.name(), *x, {pads[2], pads[3]}, {pads[6], pads[7]}};
  for (int d = 0; d < 2; ++d) {
    // Each term is checked before the sum, which then fits int64.
    int64_t innerPads = inner ? inner->begin[d] + inner->end[d] : 0;
    if (pad.begin[d] > onnximport::kMaxElements || pad.end[d] > onnximport::kMaxElements ||
        in[2 + d] + innerPads + pad.begin[d] + pad.end[d] > onnximport::kMaxElements) {
      error(node) << "pads by " << shapeText(pads) << ", past the "
                  << onnximport::kMaxElements << " elements a dimension may have";
      return failure();
    }
    if (inner) {
      pad.begin[d] += inner->begin[d];
      pad.end[d] += inner->end[d];
    }
  }
  zeroPads[node.output(0)] = pad;
  return success();
}

/// Softmax and LogSoftmax. From opset 13 over one axis (-1 by default);
/// before, over the input coerced to 2-D at `axis` (1 by default): the
/// dimensions from axis on together, which is one dimension's softmax when
/// the others among them are 1.
LogicalResult ONNXImporter::importSoftmax(const onnx::NodeProto &node) {
  bool isLog = node.op_type() == "LogSoftmax";
  StringRef opName = isLog ? "log_softmax" : "softmax";
  FailureOr<Value> x = dataInput(node, 0, "input");
  if (failed(x))
    return failure();
  ArrayRef<int64_t> in = shapeOf(*x);
  int64_t axisAttr = intAttr(node, "axis", opset >= 13 ? -1 : 1);
  FailureOr<int64_t> axis = nn::normalizeDim(errorFn(node), opName, "axis", in, axisAttr,
                                             /*allowNegative=*/true);
  if (failed(axis))
    return failure();
  if (opset < 13) {
    SmallVector<int64_t, 4> spanned;
    for (int64_t d = *axis; d < static_cast<int64_t>(in.size()); ++d)
      if (in[d] != 1)
        spanned.push_back(d);
    if (spanned.size() > 1) {
      error(node) << "has axis=" << axisAttr << " at opset " << opset
                  << ", which normalizes over dimensions " << *axis << " to " << in.size() - 1
                  << " of " << shapeText(in)
                  << " together (the input coerced to 2-D); Kiln's " << opName
                  << " runs over one dimension";
      return failure();
    }
    if (!spanned.empty())
      *axis = spanned[0];
  }
  nn::Shape shape(in.begin(), in.end());
  IntegerAttr axisValue = builder.getI64IntegerAttr(*axis);
  define(node, 0,
         isLog ? build<nn::LogSoftmaxOp>(node, layerName(node), shape, *x, axisValue)
               : build<nn::SoftmaxOp>(node, layerName(node), shape, *x, axisValue));
  return success();
}

LogicalResult ONNXImporter::importConstant(const onnx::NodeProto &node) {
  HostTensor host;
  host.name = node.output(0);
  const onnx::AttributeProto *attr = node.attribute_size() == 1 ? &node.attribute(0) : nullptr;
  std::string name = attr ? attr->name() : "";
  if (name == "value") {
    std::string message;
    if (!onnximport::decodeTensor(attr->t(), modelDir, host, message)) {
      error(node) << "its tensor " << message;
      return failure();
    }
    host.name = node.output(0);
  } else if (name == "value_float" || name == "value_floats") {
    if (name == "value_float")
      host.floats = {attr->f()};
    else
      host.floats.assign(attr->floats().begin(), attr->floats().end());
    if (name == "value_floats")
      host.dims = {static_cast<int64_t>(host.floats.size())};
  } else if (name == "value_int" || name == "value_ints") {
    host.isFloat = false;
    if (name == "value_int")
      host.ints = {attr->i()};
    else
      host.ints.assign(attr->ints().begin(), attr->ints().end());
    if (name == "value_ints")
      host.dims = {static_cast<int64_t>(host.ints.size())};
  } else {
    error(node) << "holds a " << (name.empty() ? "value of no known kind" : name)
                << "; Kiln's constants are tensors, floats and integers";
    return failure();
  }
  constants[node.output(0)] = std::move(host);
  return success();
}

//===----------------------------------------------------------------------===//
// The graph
//===----------------------------------------------------------------------===//

bool ONNXImporter::declareInputs(SmallVectorImpl<Type> &types,
                                 SmallVectorImpl<std::string> &names) {
  bool ok = true;
  for (const onnx::ValueInfoProto &input : model.graph().input()) {
    if (constants.count(input.name()))
      continue; // an initializer listed as an input (IR version < 4)
    const onnx::TypeProto &type = input.type();
    if (!type.has_tensor_type() || type.tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
      fileError() << "input '" << input.name()
                  << "' is not a float tensor; Kiln's inputs are FLOAT tensors";
      ok = false;
      continue;
    }
    const onnx::TensorShapeProto &shape = type.tensor_type().shape();
    if (!type.tensor_type().has_shape() || shape.dim_size() == 0) {
      fileError() << "input '" << input.name()
                  << "' has no shape, or is a scalar; Kiln's inputs are batches [N, ...]";
      ok = false;
      continue;
    }
    SmallVector<int64_t, 4> dims = {nn::kDynamic};
    if (shape.dim(0).has_dim_value() && fixedBatch < 0)
      fixedBatch = shape.dim(0).dim_value();
    for (int d = 1; d < shape.dim_size(); ++d) {
      if (!shape.dim(d).has_dim_value() || shape.dim(d).dim_value() <= 0) {
        fileError() << "dimension " << d << " of input '" << input.name()
                    << "' is not a fixed size"
                    << (shape.dim(d).has_dim_param() ? " ('" + shape.dim(d).dim_param() + "')"
                                                     : std::string())
                    << "; only dimension 0, the batch, may vary";
        ok = false;
        break;
      }
      dims.push_back(shape.dim(d).dim_value());
    }
    types.push_back(RankedTensorType::get(dims, builder.getF32Type()));
    names.push_back(input.name());
  }
  if (ok && types.empty()) {
    fileError() << "has no input that is not an initializer";
    ok = false;
  }
  return ok;
}

std::string modelNameOf(StringRef path) {
  std::string name = llvm::sys::path::stem(path).str();
  for (char &c : name)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
  return name.empty() ? "onnx_model" : name;
}

OwningOpRef<ModuleOp> ONNXImporter::run() {
  if (!parse() || !checkOpsets() || !decodeConstants() || !checkModel() ||
      !reportUnsupported() || !bindWeightInputs())
    return nullptr;
  const onnx::GraphProto &graph = model.graph();
  for (const onnx::NodeProto &node : graph.node())
    for (const std::string &input : node.input())
      ++useCounts[input];
  for (const onnx::ValueInfoProto &output : graph.output())
    graphOutputs.insert(output.name());

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  module->getOperation()->setAttr(kModelNameAttr, builder.getStringAttr(modelNameOf(path)));
  SmallVector<Type, 2> inputTypes;
  SmallVector<std::string, 2> inputNames;
  if (!declareInputs(inputTypes, inputNames))
    return nullptr;
  builder.setInsertionPointToEnd(module->getBody());
  auto func = builder.create<FuncOp>(fileLoc, kForwardFunc,
                                     builder.getFunctionType(inputTypes, {}));
  Block *entry = func.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  for (size_t i = 0; i < inputNames.size(); ++i)
    values[inputNames[i]] = entry->getArgument(static_cast<unsigned>(i));
  if (options.argumentNames)
    options.argumentNames->assign(inputNames.begin(), inputNames.end());

  for (const onnx::NodeProto &node : graph.node()) {
    builder.setInsertionPointToEnd(entry);
    importNode(node);
  }
  if (errors || !inferShapes())
    return nullptr;

  builder.setInsertionPointToEnd(entry);
  SmallVector<Value, 2> results;
  SmallVector<Type, 2> resultTypes;
  for (const onnx::ValueInfoProto &output : graph.output()) {
    auto it = values.find(output.name());
    if (zeroPads.count(output.name())) {
      fileError() << "output '" << output.name()
                  << "' is a Pad's; Kiln takes padding only as part of a Conv or AveragePool";
      continue;
    }
    if (it == values.end()) {
      fileError() << "output '" << output.name()
                  << "' is not computed from the inputs (a constant, or undefined)";
      continue;
    }
    results.push_back(it->second);
    resultTypes.push_back(it->second.getType());
  }
  if (errors)
    return nullptr;
  if (results.empty()) {
    fileError() << "has no outputs";
    return nullptr;
  }
  builder.create<ReturnOp>(fileLoc, results);
  func.setType(builder.getFunctionType(inputTypes, resultTypes));
  return module;
}

} // namespace

OwningOpRef<ModuleOp> importONNXModel(StringRef bytes, StringRef path, MLIRContext *context,
                                      const ONNXImportOptions &options) {
  return ONNXImporter(bytes, path, context, options).run();
}

FailureOr<ONNXTensorValue> readONNXTensorFile(StringRef path, MLIRContext *context) {
  Location loc = FileLineColLoc::get(context, path, 0, 0);
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return LogicalResult(emitError(loc) << "cannot read '" << path
                                        << "': " << buffer.getError().message());
  onnx::TensorProto proto;
  StringRef data = (*buffer)->getBuffer();
  if (data.size() > static_cast<size_t>(INT32_MAX) ||
      !proto.ParseFromArray(data.data(), static_cast<int>(data.size())))
    return LogicalResult(emitError(loc) << "'" << path << "' is not a serialized TensorProto");
  HostTensor host;
  std::string message;
  if (!onnximport::decodeTensor(proto, llvm::sys::path::parent_path(path), host, message))
    return LogicalResult(emitError(loc) << "'" << path << "': the tensor " << message);
  return ONNXTensorValue{host.name, host.dims, std::move(host.floats), host.isFloat,
                         std::move(host.ints)};
}

} // namespace kiln

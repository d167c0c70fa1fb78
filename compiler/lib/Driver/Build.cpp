//===- Build.cpp - ahead-of-time outputs of kilnc build -------------------===//
//
// Each target variant's pipelines are compiled to objects without Halide's
// runtime; one runtime is compiled for what every variant's CPU has. What
// varies per model is generated as C: a description of the model (shapes,
// the state_dict, each variant's target, features, pipelines and weight
// layouts: data, as Halide's halide_filter_metadata_t is) and thin entry
// points with the documented ABI (OUT.h) that call Kiln's model runtime
// (runtime/, kiln/runtime/model.h), which does what does not vary. All of
// it is merged into one relocatable object whose only global symbols are
// the API's and the runtime's shared thread pool and arena: Halide's are
// local, so a program's own Halide code keeps its handlers. Executables add
// a main() that calls the runtime's runner. Everything is linked with the
// target machine's C compiler and binutils, against Kiln's runtime for that
// machine (Toolchain.h).
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Build.h"

#include "BuildSupport.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Driver/Toolchain.h"
#include "kiln/Driver/WorkDirectory.h"
#include "kiln/Import/Import.h"
#include "kiln/runtime/model.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace mlir;

namespace kiln {

namespace build {

bool isCIdentifier(StringRef name) {
  if (name.empty() || isdigit(static_cast<unsigned char>(name[0])))
    return false;
  return llvm::all_of(name, [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

/// The longest API name: the build's files are named after it
/// (kiln_<api>_v<N>_infer.o, lib<api>.so, <api>.h) and a file name has at
/// most 255 bytes on Linux; a longer name failed deep inside Halide with an
/// internal error ("File name too long").
constexpr size_t kMaxApiName = 200;

std::string macroPrefix(const std::string &api) {
  std::string prefix = api;
  for (char &c : prefix)
    c = toupper(static_cast<unsigned char>(c));
  return prefix;
}

std::string shapeList(const std::vector<int64_t> &shape) {
  std::string text = "{";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(i == 0 ? -1 : shape[i]);
  return text + "}";
}

int64_t perSample(const std::vector<int64_t> &shape) {
  int64_t size = 1;
  for (size_t i = 1; i < shape.size(); ++i)
    size *= shape[i];
  return size;
}

/// Bytes of intermediate results per sample (each layer Kiln materializes).
int64_t scratchPerSample(const codegen::LoweredModel &model) {
  int64_t bytes = 0;
  for (const codegen::LayerFuncs *layer : model.layers())
    if (layer->kind != codegen::LayerFuncs::Kind::Elementwise &&
        layer->kind != codegen::LayerFuncs::Kind::WeightLayout) // not per sample
      bytes += perSample(layer->shape) * 4;
  // The tensors between stages: two buffers of the largest.
  int64_t between = 0;
  for (size_t s = 0; s + 1 < model.stages.size(); ++s)
    between = std::max(between, perSample(model.stages[s].outputs.front().shape) * 4);
  return bytes + 2 * between;
}

/// The forward pipeline of each variant, in the user's order.
std::vector<codegen::LoweredModel *> forwardOf(std::vector<TargetVariant> &variants) {
  std::vector<codegen::LoweredModel *> models;
  for (TargetVariant &variant : variants)
    models.push_back(&variant.entries[0]);
  return models;
}

//===----------------------------------------------------------------------===//
// The header (OUT.h)
//===----------------------------------------------------------------------===//

std::string weightsDoc(const std::string &api, const codegen::LoweredModel &model) {
  if (!model.hasExternalWeights())
    return " * The weights are compiled into the object: there is nothing to load or free.\n";
  return " * int " + api + "_load_weights(const char *path)\n"
         " *   Reads the weights from a safetensors file keyed by the PyTorch state_dict\n"
         " *   names (what `kilnc build --weights` takes), checks every tensor against\n"
         " *   the model, folds BatchNorm and repacks them for the compiled code (of the\n"
         " *   variant that runs). Returns 0, or an error code whose message\n"
         " *   " + api + "_last_error() gives; a failed load keeps the weights loaded\n"
         " *   before, if any. " + api + "_infer fails with the code _ERROR_WEIGHTS until a\n"
         " *   load succeeded.\n"
         " * void " + api + "_free_weights(void) releases them.\n"
         " * Loading and freeing must not run while " + api + "_infer, another load or a free\n"
         " * runs on another thread.\n";
}

std::string variantsDoc(const std::string &api, const std::vector<codegen::LoweredModel *> &models) {
  std::string text = " * const char *" + api + "_variant(void)\n";
  if (models.size() == 1)
    return text + " *   The Halide target the code was compiled for: " + models[0]->target.str() +
           " (" + models[0]->target.isaName() + ").\n";
  text += " *   The Halide target of the code that runs on this CPU. The object holds one\n"
          " *   variant per target; the first call of any function picks the first one\n"
          " *   the CPU supports (and, for a GPU variant, whose device works), in this\n"
          " *   order:\n";
  for (codegen::LoweredModel *model : models)
    text += " *     " + model->target.str() + " (" + model->target.isaName() + ")\n";
  return text + " *   NULL if it supports none of them: then every call fails with the code\n"
                " *   _ERROR_TARGET.\n";
}

std::string headerText(const std::string &api, const std::string &modelName,
                       const std::vector<codegen::LoweredModel *> &models) {
  const codegen::LoweredModel &model = *models.front();
  bool external = model.hasExternalWeights();
  std::string guard = macroPrefix(api);
  // Embedded weights: every variant's are in the object; external: a load
  // allocates those of one variant, at most the largest.
  int64_t weightBytes = 0;
  for (codegen::LoweredModel *variant : models)
    weightBytes = external ? std::max(weightBytes, variant->weightBytes)
                           : weightBytes + variant->weightBytes;
  std::string targets;
  for (size_t i = 0; i < models.size(); ++i)
    targets += (i ? ", \"" : "\"") + models[i]->target.str() + "\"";
  std::ostringstream h;
  h << "/* " << api << ".h: the C API of Kiln model '" << modelName << "', generated by kilnc.\n"
    << " *\n"
    << " * int " << api << "_infer(const float *input, int64_t batch, float *output)\n"
    << " *   Runs the model on `batch` samples. `input` holds batch x " << guard
    << "_INPUT_SAMPLE_SIZE\n"
    << " *   float32 values in the layout " << guard << "_INPUT_SHAPE (NCHW, C order; the batch\n"
    << " *   first); `output` receives batch x " << guard << "_OUTPUT_SAMPLE_SIZE float32 values.\n"
    << " *   Neither needs any particular alignment. Returns 0, or a non-zero error code\n"
    << " *   whose message " << api << "_last_error() gives.\n"
    << " *\n"
    << weightsDoc(api, model)
    << " *\n"
    << variantsDoc(api, models)
    << " *\n"
    << " * Thread safety: " << api << "_infer may run on several threads at once (each call\n"
    << " * uses only its arguments and stack). " << api << "_last_error is per thread.\n"
    << " * " << api << "_set_num_threads sets the number of threads (the caller and the pool's\n"
    << " * workers) that all Kiln models linked into one program share (default: the number\n"
    << " * of cores this process may run on). One call's parallel loops use the pool at a\n"
    << " * time; a call made while another one's loop runs computes on its own thread.\n"
    << " * After a parallel loop the workers spin for up to 0.1 ms, waiting for the next\n"
    << " * one, before they sleep.\n"
    << " * The code never prints, and leaves the program's own Halide runtime and its\n"
    << " * handlers alone: its Halide symbols are local to it.\n"
    << " * Usable from C and C++; no C++ runtime is needed.\n"
    << " */\n"
    << "#ifndef " << guard << "_H\n#define " << guard << "_H\n\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << "#define " << guard << "_INPUT_RANK " << model.input().shape.size() << "\n"
    << "#define " << guard << "_INPUT_SHAPE " << shapeList(model.input().shape)
    << " /* -1: the batch */\n"
    << "#define " << guard << "_INPUT_SAMPLE_SIZE " << perSample(model.input().shape) << "\n"
    << "#define " << guard << "_OUTPUT_RANK " << model.output().shape.size() << "\n"
    << "#define " << guard << "_OUTPUT_SHAPE " << shapeList(model.output().shape) << "\n"
    << "#define " << guard << "_OUTPUT_SAMPLE_SIZE " << perSample(model.output().shape) << "\n"
    << (external ? "/* Bytes of weight data " + api +
                       "_load_weights allocates (folded, repacked; the largest variant's). */\n"
                 : std::string("/* Bytes of constant weight data in the object (all variants). */\n"))
    << "#define " << guard << "_WEIGHT_BYTES " << weightBytes << "\n"
    << "/* Bytes of intermediate results per sample. They live in a scratch arena\n"
    << " * per calling thread, sized by the first call that needs it and reused:\n"
    << " * once a call on `batch` samples has run on a thread, calls of that batch\n"
    << " * or less allocate nothing. " << api << "_release_scratch frees this thread's arena. */\n"
    << "#define " << guard << "_SCRATCH_BYTES_PER_SAMPLE " << scratchPerSample(model) << "\n"
    << "/* The targets of the variants, in the order they are tried. */\n"
    << "#define " << guard << "_VARIANT_COUNT " << models.size() << "\n"
    << "#define " << guard << "_VARIANT_TARGETS {" << targets << "}\n\n"
    << "/* Error codes besides those of the Halide runtime (negative). */\n"
    << "#define " << guard << "_ERROR_INVALID_ARGUMENT " << KILN_MODEL_ERROR_INVALID_ARGUMENT << "\n"
    << (external ? "#define " + guard + "_ERROR_WEIGHTS " +
                       std::to_string(KILN_MODEL_ERROR_WEIGHTS) +
                       " /* no weights loaded, or a bad weights file */\n"
                 : std::string())
    << (models.size() > 1 ? "#define " + guard + "_ERROR_TARGET " +
                                std::to_string(KILN_MODEL_ERROR_TARGET) +
                                " /* this CPU supports none of the variants */\n"
                          : std::string())
    << "\n"
    << "int " << api << "_infer(const float *input, int64_t batch, float *output);\n"
    << (external ? "int " + api + "_load_weights(const char *path);\nvoid " + api +
                       "_free_weights(void);\n"
                 : std::string())
    << "const char *" << api << "_last_error(void);\n"
    << "void " << api << "_set_num_threads(int threads);\n"
    << "void " << api << "_release_scratch(void);\n"
    << "const char *" << api << "_variant(void);\n\n"
    << "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n#endif /* " << guard << "_H */\n";
  return h.str();
}

/// The API's functions: the only global symbols of the model's object
/// besides the runtime's shared pool and arena.
std::vector<std::string> apiSymbols(const std::string &api, bool external) {
  std::vector<std::string> symbols;
  for (const char *suffix : {"_infer", "_last_error", "_set_num_threads", "_release_scratch",
                             "_variant"})
    symbols.push_back(api + suffix);
  if (external)
    for (const char *suffix : {"_load_weights", "_free_weights"})
      symbols.push_back(api + suffix);
  return symbols;
}

//===----------------------------------------------------------------------===//
// The model's description and entry points (OUT_model.c)
//===----------------------------------------------------------------------===//

std::string cString(StringRef text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      quoted += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\%03o", static_cast<unsigned char>(c));
      quoted += escape;
      continue;
    }
    quoted += c;
  }
  return quoted + "\"";
}

StageNames stageNames(const std::string &api, size_t variant, size_t stage) {
  std::string prefix = "kiln_" + api + "_v" + std::to_string(variant) + "_s" + std::to_string(stage);
  return {prefix + "_infer", prefix + "_load"};
}

/// The features a variant needs, as halide_can_use_target_features takes
/// them (Halide's multitarget wrapper makes the same bits).
std::string featureWords(const Halide::Target &target) {
  static_assert(Halide::Target::FeatureEnd <= 64 * KILN_MODEL_FEATURE_WORDS,
                "KILN_MODEL_FEATURE_WORDS is too small for this Halide's features");
  uint64_t words[KILN_MODEL_FEATURE_WORDS] = {0};
  for (int i = 0; i < Halide::Target::FeatureEnd; ++i)
    if (target.has_feature(static_cast<Halide::Target::Feature>(i)))
      words[i / 64] |= uint64_t(1) << (i % 64);
  std::string text = "{";
  for (int i = 0; i < KILN_MODEL_FEATURE_WORDS; ++i) {
    char word[32];
    std::snprintf(word, sizeof word, "%s0x%llxull", i ? ", " : "",
                  static_cast<unsigned long long>(words[i]));
    text += word;
  }
  return text + "}";
}

std::string layoutOf(const std::vector<int> &extents) {
  return "{" + std::to_string(extents.size()) + ", " + arrayOf("int32_t", extents) + "}";
}

/// One variant's stages (static array <api>_v<i>_stages) and, with
/// external weights, its layouts (<api>_v<i>_*): every stage's state tensors
/// and packed weights, in stage order.
std::string variantLayoutsText(const std::string &api, size_t index,
                               const codegen::LoweredModel &model) {
  std::string prefix = api + "_v" + std::to_string(index);
  bool external = model.hasExternalWeights();
  std::ostringstream c;
  c << "/* Variant " << index << " (" << model.target.str() << "): its stages";
  if (external)
    c << ", the tensors its load pipelines read, and the layouts they pack";
  c << ". */\n";
  std::vector<const codegen::StateTensor *> states;
  std::vector<const codegen::PackedWeight *> packed;
  for (const codegen::LoweredStage &stage : model.stages) {
    for (const codegen::StateTensor &tensor : stage.stateTensors)
      states.push_back(&tensor);
    for (const codegen::PackedWeight &weight : stage.packedWeights)
      packed.push_back(&weight);
  }
  if (!states.empty()) {
    c << "static const char *const " << prefix << "_state_names[] = {\n";
    for (const codegen::StateTensor *tensor : states)
      c << "  " << cString(tensor->key) << ",\n";
    c << "};\nstatic const kiln_model_layout_t " << prefix << "_state_layouts[] = {\n";
    for (const codegen::StateTensor *tensor : states) {
      std::vector<int> extents(tensor->shape.rbegin(), tensor->shape.rend());
      c << "  " << layoutOf(extents) << ",\n";
    }
    c << "};\n";
  }
  if (!packed.empty()) {
    c << "static const kiln_model_layout_t " << prefix << "_packed_layouts[] = {\n";
    for (const codegen::PackedWeight *weight : packed)
      c << "  " << layoutOf(weight->extents) << ",\n";
    c << "};\n";
  }
  c << "static const kiln_model_stage_t " << prefix << "_stages[] = {\n";
  size_t stateFirst = 0, packedFirst = 0;
  for (size_t s = 0; s < model.stages.size(); ++s) {
    const codegen::LoweredStage &stage = model.stages[s];
    StageNames names = stageNames(api, index, s);
    const std::vector<int64_t> &shape = stage.outputs.front().shape;
    c << "  {" << names.infer << "_argv, " << (external ? names.load + "_argv" : "NULL") << ", "
      << stateFirst << ", " << stage.stateTensors.size() << ", " << packedFirst << ", "
      << stage.packedWeights.size() << ", {" << shape.size() << ", " << arrayOf("int64_t", shape)
      << "}},\n";
    stateFirst += stage.stateTensors.size();
    packedFirst += stage.packedWeights.size();
  }
  c << "};\n";
  return c.str() + "\n";
}

/// The Halide runtime's device interface of a GPU variant (a function of
/// the runtime, declared by modelDataText), or NULL.
std::string deviceInterfaceOf(const codegen::TargetInfo &target) {
  if (target.target.has_feature(Halide::Target::CUDA))
    return "halide_cuda_device_interface";
  if (target.target.has_feature(Halide::Target::OpenCL))
    return "halide_opencl_device_interface";
  return "NULL";
}

std::string variantText(const std::string &api, size_t index, const codegen::LoweredModel &model) {
  std::string prefix = api + "_v" + std::to_string(index);
  size_t states = 0, packed = 0;
  for (const codegen::LoweredStage &stage : model.stages) {
    states += stage.stateTensors.size();
    packed += stage.packedWeights.size();
  }
  std::ostringstream c;
  c << "  {" << cString(model.target.str()) << ",\n   " << featureWords(model.target.target)
    << ",\n   " << model.stages.size() << ", " << prefix << "_stages,\n   " << states << ", "
    << (states ? prefix + "_state_names, " + prefix + "_state_layouts" : "NULL, NULL") << ", "
    << packed << ", " << (packed ? prefix + "_packed_layouts" : "NULL") << ",\n   "
    << deviceInterfaceOf(model.target) << ", "
    << (model.target.gpu() ? "halide_reuse_device_allocations" : "NULL") << "},\n";
  return c.str();
}

/// Whether `op` (a buffer) holds a BatchNorm's running variance, whose
/// negative values the loader refuses (the fold takes its square root).
bool isRunningVariance(Operation *op) {
  return llvm::any_of(op->getResult(0).getUsers(), [&](Operation *user) {
    if (auto bn = dyn_cast<nn::BatchNormOp>(user))
      return bn.running_var() == op->getResult(0);
    if (auto fold = dyn_cast<nn::FoldBatchNormOp>(user))
      return fold.running_var() == op->getResult(0);
    return false;
  });
}

/// The state_dict (external weights): every key a file must have.
std::string stateKeysText(const std::string &api, ModuleOp module, size_t &count) {
  std::ostringstream c;
  count = 0;
  c << "/* The model's state_dict: every key must be in a weights file, with this shape. */\n"
    << "static const kiln_model_state_key_t " << api << "_state_keys[] = {\n";
  module.walk([&](Operation *op) {
    if (!isa<nn::ParamOp, nn::BufferOp>(op))
      return;
    auto type = op->getResult(0).getType().cast<RankedTensorType>();
    std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
    c << "  {" << cString(op->getAttrOfType<StringAttr>("name").getValue()) << ", \""
      << (isa<nn::ParamOp>(op) ? "parameter" : "buffer") << "\", "
      << (type.getElementType().isInteger(64) ? 1 : 0) << ", " << shape.size() << ", "
      << arrayOf("int64_t", shape) << ", " << (isRunningVariance(op) ? 1 : 0) << "},\n";
    ++count;
  });
  c << "};\n\n";
  return count ? c.str() : std::string();
}

std::string modelDataText(const std::string &api, const std::vector<codegen::LoweredModel *> &models,
                          ModuleOp module, bool allowExtraKeys, bool allowNonfinite) {
  const codegen::LoweredModel &model = *models.front();
  bool external = model.hasExternalWeights();
  std::ostringstream c;
  c << "#include \"kiln/runtime/model.h\"\n"
    << "#include \"kiln/runtime/scratch_arena.h\"\n"
    << "#include \"kiln/runtime/thread_pool.h\"\n\n"
    << "#include <stddef.h>\n\n"
    << "/* The compiled pipelines of each variant (Halide's argv form). */\n";
  std::set<std::string> interfaces;
  for (const codegen::LoweredModel *variant : models)
    if (deviceInterfaceOf(variant->target) != "NULL")
      interfaces.insert(deviceInterfaceOf(variant->target));
  for (const std::string &interface : interfaces)
    c << "const struct halide_device_interface_t *" << interface << "(void);\n";
  if (!interfaces.empty())
    c << "int halide_reuse_device_allocations(void *user_context, bool flag);\n";
  for (size_t i = 0; i < models.size(); ++i)
    for (size_t s = 0; s < models[i]->stages.size(); ++s) {
      StageNames names = stageNames(api, i, s);
      c << "int " << names.infer << "_argv(void **args);\n";
      if (external)
        c << "int " << names.load << "_argv(void **args);\n";
    }
  c << "\n";
  size_t keyCount = 0;
  std::string keys = external ? stateKeysText(api, module, keyCount) : std::string();
  c << keys;
  for (size_t i = 0; i < models.size(); ++i)
    c << variantLayoutsText(api, i, *models[i]);
  c << "/* Most specific first: the first one the CPU supports runs. */\n"
    << "static const kiln_model_variant_t " << api << "_variants[] = {\n";
  for (size_t i = 0; i < models.size(); ++i)
    c << variantText(api, i, *models[i]);
  c << "};\n\n"
    << "static kiln_model_state_t " << api << "_state;\n\n"
    << "static const kiln_model_t " << api << "_model = {\n"
    << "  " << cString(api) << ",\n"
    << "  {" << model.input().shape.size() << ", " << arrayOf("int64_t", model.input().shape)
    << "},\n"
    << "  {" << model.output().shape.size() << ", " << arrayOf("int64_t", model.output().shape)
    << "},\n"
    << "  " << models.size() << ", " << api << "_variants,\n"
    << "  " << (external ? 1 : 0) << ", " << (allowExtraKeys ? 1 : 0) << ", "
    << (allowNonfinite ? 1 : 0) << ", " << keyCount << ", "
    << (keyCount ? api + "_state_keys" : std::string("NULL")) << ",\n"
    << "  &" << api << "_state};\n\n"
    << "static _Thread_local char " << api << "_error[KILN_MODEL_ERROR_SIZE];\n\n";
  return c.str();
}

std::string modelText(const std::string &api, const std::string &modelName,
                      const std::vector<codegen::LoweredModel *> &models, ModuleOp module,
                      const BuildOptions &options) {
  bool external = models.front()->hasExternalWeights();
  std::ostringstream c;
  c << "/* Generated by kilnc: Kiln model '" << modelName << "' as the data Kiln's model\n"
    << " * runtime reads (kiln/runtime/model.h), and the entry points of " << api << ".h. */\n"
    << "#include \"" << api << ".h\"\n"
    << modelDataText(api, models, module, options.allowExtraKeys, options.allowNonfinite)
    << "int " << api << "_infer(const float *input, int64_t batch, float *output) {\n"
    << "  return kiln_model_infer(&" << api << "_model, input, batch, output, " << api
    << "_error);\n}\n\n"
    << "const char *" << api << "_last_error(void) { return " << api << "_error; }\n\n"
    << "void " << api << "_set_num_threads(int threads) { kiln_thread_pool_set_threads(threads); }\n\n"
    << "void " << api << "_release_scratch(void) { kiln_scratch_arena_release(); }\n\n"
    << "const char *" << api << "_variant(void) { return kiln_model_variant(&" << api
    << "_model); }\n";
  if (external)
    c << "\nint " << api << "_load_weights(const char *path) {\n"
      << "  return kiln_model_load_weights(&" << api << "_model, path, " << api << "_error);\n}\n\n"
      << "void " << api << "_free_weights(void) { kiln_model_free_weights(&" << api
      << "_model); }\n";
  return c.str();
}

//===----------------------------------------------------------------------===//
// The executable's main()
//===----------------------------------------------------------------------===//

/// How IDX pixels become input: the model's train transform, else 1/255.
void pixelTransform(ModuleOp module, float &scale, float &mean, float &stddev) {
  scale = 1.0f / 255.0f;
  mean = 0.0f;
  stddev = 1.0f;
  auto train = module->getAttrOfType<DictionaryAttr>(kTrainConfigAttr);
  if (!train)
    return;
  auto steps = train.getAs<ArrayAttr>("transform");
  if (!steps)
    return;
  bool scaled = false;
  for (Attribute step : steps) {
    auto dict = step.cast<DictionaryAttr>();
    StringRef name = dict.getAs<StringAttr>("name").getValue();
    if (name == "scale") {
      scale = dict.getAs<FloatAttr>("factor").getValueAsDouble();
      scaled = true;
    } else if (name == "normalize") {
      mean = dict.getAs<FloatAttr>("mean").getValueAsDouble();
      stddev = dict.getAs<FloatAttr>("std").getValueAsDouble();
    }
  }
  if (!scaled && !steps.empty())
    scale = 1.0f;
}

std::string mainText(const std::string &api, const std::string &modelName,
                     const codegen::LoweredModel &model, ModuleOp module) {
  float scale, mean, stddev;
  pixelTransform(module, scale, mean, stddev);
  std::string macro = macroPrefix(api);
  std::ostringstream c;
  c.precision(9);
  c << "/* Generated by kilnc: the main() of the " << api << " executable. */\n"
    << "#include \"" << api << ".h\"\n#include \"kiln/runtime/runner.h\"\n\n"
    << "static const int64_t input_shape[] = " << macro << "_INPUT_SHAPE;\n"
    << "static const int64_t output_shape[] = " << macro << "_OUTPUT_SHAPE;\n\n"
    << "int main(int argc, char **argv) {\n"
    << "  kiln_model_desc_t model = {\"" << api << "\", " << api << "_infer, " << api
    << "_last_error, " << api << "_set_num_threads,\n"
    << "      " << macro << "_INPUT_RANK, input_shape, " << macro << "_OUTPUT_RANK, output_shape,\n"
    << "      (float)" << scale << ", (float)" << mean << ", (float)" << stddev << ",\n"
    << "      " << (model.hasExternalWeights() ? api + "_load_weights" : std::string("0")) << ", "
    << api << "_variant};\n"
    << "  (void)\"" << modelName << "\";\n"
    << "  return kiln_runner_main(argc, argv, &model);\n}\n";
  return c.str();
}

//===----------------------------------------------------------------------===//
// Files and tools
//===----------------------------------------------------------------------===//

LogicalResult writeFile(Location loc, const std::string &path, const std::string &text) {
  std::error_code error;
  llvm::raw_fd_ostream os(path, error);
  if (error)
    return emitError(loc) << "cannot write '" << path << "': " << error.message();
  os << text;
  return success();
}

/// The target Halide's runtime is compiled for: what every variant's CPU
/// has (the features all of them share), so the runtime runs wherever one
/// of the variants can.
Halide::Target runtimeTarget(const std::vector<codegen::LoweredModel *> &models) {
  Halide::Target base = models.back()->target.target;
  for (int i = 0; i < Halide::Target::FeatureEnd; ++i) {
    auto feature = static_cast<Halide::Target::Feature>(i);
    for (codegen::LoweredModel *model : models)
      if (base.has_feature(feature) && !model->target.target.has_feature(feature))
        base = base.without_feature(feature);
  }
  // The GPU APIs of every GPU variant: the runtime holds each one's module
  // (a CPU-only machine never initializes them).
  for (codegen::LoweredModel *model : models) {
    const Halide::Target &target = model->target.target;
    if (target.has_feature(Halide::Target::OpenCL))
      base = base.with_feature(Halide::Target::OpenCL);
    if (target.has_feature(Halide::Target::CUDA))
      base = base.with_feature(Halide::Target::CUDA);
    for (Halide::Target::Feature capability :
         {Halide::Target::CUDACapability30, Halide::Target::CUDACapability32,
          Halide::Target::CUDACapability35, Halide::Target::CUDACapability50,
          Halide::Target::CUDACapability61, Halide::Target::CUDACapability70,
          Halide::Target::CUDACapability75, Halide::Target::CUDACapability80,
          Halide::Target::CUDACapability86})
      if (target.has_feature(capability))
        base = base.with_feature(capability);
  }
  return base;
}

/// Compiles `jobs` on the host's threads: the stages of a large model are
/// independent pipelines, and Halide lowers each on its own copy of the
/// graph, with its own LLVM context. The first error's message, or empty.
std::string compileAll(std::vector<CompileJob> &jobs) {
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::string firstError;
  auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      try {
        jobs[i].pipeline.compile_to_object(jobs[i].object, jobs[i].arguments, jobs[i].name,
                                           jobs[i].target);
      } catch (const Halide::Error &error) {
        std::lock_guard<std::mutex> lock(mutex);
        if (firstError.empty())
          firstError = error.what();
        next = jobs.size(); // no point compiling the rest
      }
    }
  };
  size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), jobs.size());
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t)
    workers.emplace_back(work);
  work();
  for (std::thread &worker : workers)
    worker.join();
  return firstError;
}

std::vector<CompileJob> pipelineJobs(const std::string &api,
                                     const std::vector<codegen::LoweredModel *> &models) {
  std::vector<CompileJob> jobs;
  for (size_t i = 0; i < models.size(); ++i) {
    codegen::LoweredModel &model = *models[i];
    Halide::Target target = objectTarget(model);
    for (size_t s = 0; s < model.stages.size(); ++s) {
      const codegen::LoweredStage &stage = model.stages[s];
      StageNames names = stageNames(api, i, s);
      jobs.push_back({stage.pipeline(), stage.arguments(), names.infer, target});
      if (model.hasExternalWeights())
        jobs.push_back({stage.loadPipeline(), stage.loadArguments(), names.load, target});
    }
  }
  return jobs;
}

Halide::Target objectTarget(const codegen::LoweredModel &model) {
  // user_context carries the call (error message, scratch arena).
  return model.target.target.with_feature(Halide::Target::UserContext)
      .with_feature(Halide::Target::NoRuntime);
}

/// Compiles `jobs` (each into the work directory, as <name>.o) and one
/// Halide runtime for the CPUs of every variant of `models`; the objects'
/// paths are appended to `objects`.
LogicalResult compilePipelines(Location loc, std::vector<CompileJob> &jobs,
                               const std::vector<codegen::LoweredModel *> &models,
                               const std::function<std::string(const std::string &)> &inWork,
                               std::vector<std::string> &objects) {
  for (CompileJob &job : jobs)
    job.object = inWork(job.name + ".o");
  // The largest first, so that the last job to start is a small one.
  std::stable_sort(jobs.begin(), jobs.end(), [](const CompileJob &a, const CompileJob &b) {
    return a.arguments.size() > b.arguments.size();
  });
  std::string error = compileAll(jobs);
  if (error.empty()) {
    try {
      Halide::compile_standalone_runtime(inWork("halide_runtime.o"), runtimeTarget(models));
    } catch (const Halide::Error &runtimeError) {
      error = runtimeError.what();
    }
  }
  if (!error.empty())
    return emitError(loc) << "Halide could not compile the model: " << error;
  for (const CompileJob &job : jobs)
    objects.push_back(job.object);
  objects.push_back(inWork("halide_runtime.o"));
  return success();
}

/// Checks what the model runtime can describe; reports the first problem.
LogicalResult checkRanks(Location loc, const std::vector<codegen::LoweredModel *> &models) {
  for (codegen::LoweredModel *model : models) {
    auto tooHigh = [](size_t rank) { return rank > KILN_MODEL_MAX_RANK; };
    bool bad = tooHigh(model->input().shape.size()) || tooHigh(model->output().shape.size());
    for (const codegen::LoweredStage &stage : model->stages) {
      for (const codegen::StateTensor &tensor : stage.stateTensors)
        bad |= tooHigh(tensor.shape.size());
      for (const codegen::PackedWeight &weight : stage.packedWeights)
        bad |= tooHigh(weight.extents.size());
      bad |= tooHigh(stage.outputs.front().shape.size());
    }
    if (bad)
      return emitError(loc) << "a tensor of rank above " << KILN_MODEL_MAX_RANK
                            << " cannot be passed to the compiled code";
  }
  return success();
}

} // namespace build

using namespace build;

LogicalResult resolveBuildPaths(Location loc, const BuildOptions &options, BuildPaths &paths) {
  std::string api = apiNameFor(options);
  if (!isCIdentifier(api))
    return emitError(loc) << "output name '" << api
                          << "' is not a C identifier: the API is named after it ("
                          << api << "_infer)";
  if (api.size() > kMaxApiName)
    return emitError(loc) << "output name '" << api.substr(0, 32) << "...' is " << api.size()
                          << " characters long; the API and the build's files are named after "
                             "it, so at most "
                          << kMaxApiName << " are allowed";
  SmallString<128> headerPath(llvm::sys::path::parent_path(options.outputPath));
  llvm::sys::path::append(headerPath, api + ".h");
  std::string error;
  paths.product = OutputPath::resolve(options.outputPath, options.inputs, /*filesOnly=*/true, error);
  if (!paths.product)
    return emitError(loc) << error;
  paths.header = OutputPath::resolve(headerPath, options.inputs, /*filesOnly=*/true, error);
  if (!paths.header)
    return emitError(loc) << error << " (the header beside '" << options.outputPath << "')";
  if (paths.product->realPath() == paths.header->realPath())
    return emitError(loc) << "'" << options.outputPath
                          << "' would be both the output and its header; name it differently";
  return success();
}

std::string apiNameFor(const BuildOptions &options) {
  std::string name = llvm::sys::path::stem(options.outputPath).str();
  if ((options.kind == OutputKind::StaticLibrary || options.kind == OutputKind::SharedLibrary) &&
      StringRef(name).startswith("lib") && name.size() > 3)
    name = name.substr(3);
  return name;
}

LogicalResult printHalideStmt(codegen::LoweredModel &model, llvm::raw_ostream &os) {
  SmallString<128> path;
  if (llvm::sys::fs::createTemporaryFile("kiln", "stmt", path)) {
    llvm::errs() << "kilnc: error: cannot create a temporary file\n";
    return failure();
  }
  auto cleanup = llvm::make_scope_exit([&] { llvm::sys::fs::remove(path); });
  for (size_t s = 0; s < model.stages.size(); ++s) {
    const codegen::LoweredStage &stage = model.stages[s];
    try {
      stage.pipeline().compile_to_lowered_stmt(path.str().str(), stage.arguments(), Halide::Text,
                                               model.target.target);
    } catch (const Halide::Error &error) {
      llvm::errs() << "kilnc: error: Halide: " << error.what() << "\n";
      return failure();
    }
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer)
      return failure();
    if (model.stages.size() > 1)
      os << "// stage " << s << " of " << model.stages.size() << "\n";
    os << (*buffer)->getBuffer();
  }
  return success();
}

LogicalResult buildOutputs(ModuleOp module, std::vector<TargetVariant> &variants,
                           const BuildOptions &options) {
  Location loc = module.getLoc();
  if (variants.empty())
    return emitError(loc) << "no target to build for";
  for (TargetVariant &variant : variants)
    if (variant.entries.size() != 1)
      return emitError(loc) << "builds of several entry points are not supported yet";
  std::vector<codegen::LoweredModel *> models = forwardOf(variants);
  const codegen::LoweredModel &model = *models.front();
  if (failed(checkRanks(loc, models)))
    return failure();
  Product product;
  product.api = apiNameFor(options);
  product.models = models;
  product.jobs = pipelineJobs(product.api, models);
  product.header = headerText(product.api, model.name, models);
  product.modelC = modelText(product.api, model.name, models, module, options);
  product.mainC = mainText(product.api, model.name, model, module);
  product.symbols = apiSymbols(product.api, model.hasExternalWeights());
  return assembleProduct(loc, options, product);
}

namespace build {

LogicalResult assembleProduct(Location loc, const BuildOptions &options, Product &spec) {
  const std::string &api = spec.api;
  BuildPaths paths;
  if (failed(resolveBuildPaths(loc, options, paths)))
    return failure();
  // The tools and runtime first: a missing cross compiler fails before
  // Halide spends seconds compiling.
  std::vector<Halide::Target> targets;
  for (const codegen::LoweredModel *variant : spec.models)
    targets.push_back(variant->target.target);
  FailureOr<Toolchain> toolchain = resolveToolchain(loc, targets, options.cc);
  if (failed(toolchain))
    return failure();
  const Toolchain &link = *toolchain;
  // The work directory sits beside the file the product replaces, so that
  // its last step is a rename within one file system.
  StringRef outDir = llvm::sys::path::parent_path(paths.product->realPath());
  // Removed when the build ends, or is ended by a signal (WorkDirectory.h).
  std::string error;
  std::unique_ptr<WorkDirectory> work = WorkDirectory::create(outDir, error);
  if (!work)
    return emitError(loc) << error;
  std::function<std::string(const std::string &)> inWork = [&](const std::string &file) {
    return work->file(file);
  };

  std::vector<std::string> objects;
  if (failed(compilePipelines(loc, spec.jobs, spec.models, inWork, objects)))
    return failure();
  const std::string &header = spec.header;
  if (failed(writeFile(loc, inWork(api + ".h"), header)) ||
      failed(writeFile(loc, inWork(api + "_model.c"), spec.modelC)))
    return failure();
  std::vector<std::string> cflags = {"-O2", "-fPIC", "-std=c11", "-I" + work->path(),
                                     "-I" + link.runtime.includeDir};
  // Each tool's output goes to a log in the work directory; a failure is
  // reported in one line (runTool).
  auto run = [&](Location at, const std::string &program, const std::vector<std::string> &args) {
    return runTool(at, program, args, inWork("tool.log"));
  };
  auto compileC = [&](const std::string &source, const std::string &object) {
    std::vector<std::string> args = cflags;
    args.insert(args.end(), {"-c", source, "-o", object});
    return run(loc, link.cc, args);
  };
  std::string modelObj = inWork(api + "_model.o");
  if (failed(compileC(inWork(api + "_model.c"), modelObj)))
    return failure();
  objects.push_back(modelObj);

  // One relocatable object: the pipelines, Halide's runtime, the model's
  // description and entry points, and what they need of the model runtime
  // (whose halide_* hooks replace the runtime's weak ones here). Section
  // groups (COMDAT: the C++ inline functions and vtables of Halide's
  // runtime) are dissolved: a final link keeps one group per signature
  // name, even a local one, so a second model's copy would be discarded
  // under its references.
  std::string merged = inWork(api + "_merged.o");
  std::vector<std::string> ldArgs = {"-r", "--force-group-allocation"};
  ldArgs.insert(ldArgs.end(), objects.begin(), objects.end());
  ldArgs.push_back(link.runtime.modelLibrary);
  // The training runtime's checkpoint writer is C++ (kiln_runtime).
  if (spec.cxxRuntime)
    ldArgs.push_back(link.runtime.runnerLibrary);
  ldArgs.insert(ldArgs.end(), {"-o", merged});
  if (failed(run(loc, link.ld, ldArgs)))
    return failure();
  // Only the API stays global, and the runtime's pool and arena, weak, so
  // that the Kiln models of a program share them (thread_pool.h): Halide's
  // symbols and the rest of the runtime become local, so neither two models
  // nor a model and the program's own Halide code clash or share handlers.
  std::vector<std::string> objcopyArgs = {"--wildcard"};
  for (const std::string &symbol : spec.symbols)
    objcopyArgs.push_back("--keep-global-symbol=" + symbol);
  for (const char *shared : {"kiln_thread_pool_*", "kiln_scratch_arena_*"}) {
    objcopyArgs.push_back(std::string("--keep-global-symbol=") + shared);
    objcopyArgs.push_back(std::string("--weaken-symbol=") + shared);
  }
  objcopyArgs.push_back(merged);
  if (failed(run(loc, link.objcopy, objcopyArgs)))
    return failure();

  std::string product = inWork("product");
  switch (options.kind) {
  case OutputKind::Object:
    if (std::error_code error = llvm::sys::fs::rename(merged, product))
      return emitError(loc) << "cannot move '" << merged << "': " << error.message();
    break;
  case OutputKind::StaticLibrary:
    if (failed(run(loc, link.ar, {"rcs", product, merged})))
      return failure();
    break;
  case OutputKind::SharedLibrary: {
    std::vector<std::string> args = {"-shared", "-o", product, merged};
    for (const std::string &library :
         spec.cxxRuntime ? link.executableLibraries() : link.systemLibraries())
      args.push_back(library);
    if (failed(run(loc, link.cc, args)))
      return failure();
    break;
  }
  case OutputKind::Executable: {
    std::string mainSource = inWork(api + "_main.c"), mainObj = inWork(api + "_main.o");
    if (failed(writeFile(loc, mainSource, spec.mainC)) ||
        failed(compileC(mainSource, mainObj)))
      return failure();
    // The runner is C++ (the runtime library): the C compiler links it with
    // libstdc++ named explicitly, so one compiler (--cc) serves every output.
    std::vector<std::string> args = {"-o", product, mainObj, merged, link.runtime.runnerLibrary};
    for (const std::string &library : link.executableLibraries())
      args.push_back(library);
    if (failed(run(loc, link.cc, args)))
      return failure();
    break;
  }
  }
  // Into place only now that everything else succeeded. The paths are
  // resolved again: the build took seconds, and either may have become a
  // directory, a link or an input meanwhile. The header first, written by
  // the runtime's rules (a temporary file beside the file it replaces,
  // renamed), then the product, renamed from the work directory beside it;
  // if the product cannot go into place, the header goes again, so that a
  // failed build leaves neither.
  BuildPaths final;
  if (failed(resolveBuildPaths(loc, options, final)))
    return failure();
  if (failed(final.header->write(header, error)))
    return emitError(loc) << error;
  if (std::error_code renamed = llvm::sys::fs::rename(product, final.product->realPath())) {
    llvm::sys::fs::remove(final.header->realPath());
    return emitError(loc) << "cannot write '" << options.outputPath << "': " << renamed.message();
  }
  return success();
}

} // namespace build

} // namespace kiln

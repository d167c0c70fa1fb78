//===- TrainBuild.cpp - kilnc build --mode=train --------------------------===//
//
// A training build: each variant's training step (nn-autodiff's
// @train_step, the pipeline `kilnc train` JIT-compiles, with the same
// schedule) and eval forward (an inference build with external weights:
// BatchNorm folded by its load pipelines from the training state) compiled
// ahead of time. What varies per model is generated: the description the
// trainer runtime reads (kiln/runtime/trainer.h: the state tensors, the
// step's argument order, the eval model as kiln/runtime/model.h describes
// it) and thin entry points with the documented ABI (OUT.h). Everything
// else (state buffers, checkpoints, the step's checks, packing for eval,
// the command-line trainer) is the runtime's. The product is assembled as
// an inference build's is (BuildSupport.h).
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Build.h"

#include "BuildSupport.h"

#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/Import/Import.h"
#include "kiln/runtime/trainer.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"

#include <cstdio>
#include <sstream>

using namespace mlir;

namespace kiln {

namespace {

using namespace build;

/// The compiled function of stage `stage` of variant `variant`'s step.
std::string stepName(const std::string &api, size_t variant, size_t stage) {
  return "kiln_" + api + "_v" + std::to_string(variant) + "_train_s" + std::to_string(stage);
}

/// "sgd: lr=0.2, momentum=0.9, ...": the optimizer's attributes as
/// nn-autodiff set them (the train section and kilnc build's flags), and
/// dropout's seed.
std::string hyperParameters(ModuleOp module) {
  std::string text;
  auto attributes = [&](Operation *op, StringRef name) {
    text += (text.empty() ? "" : "; ") + name.str() + ":";
    bool first = true;
    for (NamedAttribute attr : op->getAttrs()) {
      std::string value;
      if (auto f = attr.getValue().dyn_cast<FloatAttr>()) {
        char number[32];
        std::snprintf(number, sizeof number, "%g", f.getValueAsDouble());
        value = number;
      } else if (auto b = attr.getValue().dyn_cast<BoolAttr>()) {
        value = b.getValue() ? "true" : "false";
      } else if (auto i = attr.getValue().dyn_cast<IntegerAttr>()) {
        value = std::to_string(i.getInt());
      } else {
        continue;
      }
      text += (first ? " " : ", ") + attr.getName().str() + "=" + value;
      first = false;
    }
  };
  FuncOp step = module.lookupSymbol<FuncOp>(nn::kTrainStepFunc);
  Operation *update = nullptr, *dropout = nullptr;
  step.walk([&](Operation *op) {
    if (!update && isa<nn::SGDUpdateOp, nn::AdamUpdateOp, nn::AdamWUpdateOp>(op))
      update = op;
    if (!dropout && isa<nn::DropoutMaskOp>(op))
      dropout = op;
  });
  if (update)
    attributes(update, update->getName().getStringRef().drop_front(3).drop_back(7));
  if (dropout)
    text += "; dropout seed=" +
            std::to_string(dropout->getAttrOfType<IntegerAttr>("seed").getInt());
  return text;
}

/// What the header and the generated C say of the state.
struct StateTensorText {
  std::string key;
  bool integer = false;
  std::vector<int64_t> shape;
  bool optimizer = false;
  kiln_initial_kind_t initial = KILN_INITIAL_NONE;
  double bound = 0, value = 0;
};

/// Each parameter's and buffer's default initialisation (InitialState.h),
/// by key; empty where the model has state without one (the program then
/// needs --init: the diagnostic is kilnc train's to give, not the build's).
llvm::StringMap<InitialTensor> initialRules(ModuleOp module) {
  ScopedDiagnosticHandler quiet(module.getContext(), [](Diagnostic &) { return success(); });
  FailureOr<std::vector<InitialTensor>> tensors = defaultInitialisation(module);
  llvm::StringMap<InitialTensor> rules;
  if (succeeded(tensors))
    for (const InitialTensor &tensor : *tensors)
      rules[tensor.key] = tensor;
  return rules;
}

std::vector<StateTensorText> stateTensors(ModuleOp module, const codegen::LoweredModel &step,
                                          const TrainStepLayout &layout) {
  std::vector<std::string> keys;
  for (const TrainStepLayout::Slot &slot : layout.slots)
    keys.push_back(slot.key);
  llvm::StringMap<InitialTensor> rules = initialRules(module);
  std::vector<StateTensorText> tensors;
  for (const TrainStepLayout::Slot &slot : layout.slots) {
    const codegen::EntryTensor &in = step.inputs[slot.input];
    StateTensorText tensor{slot.key, in.type != Halide::Float(32), in.shape,
                           isOptimizerState(slot.key, keys)};
    auto rule = rules.find(slot.key);
    if (tensor.optimizer) {
      tensor.initial = KILN_INITIAL_ZERO;
    } else if (rule != rules.end() && rule->second.kind == InitialTensor::Kind::Fill) {
      tensor.initial = KILN_INITIAL_FILL;
      tensor.value = rule->second.value;
    } else if (rule != rules.end() && !tensor.integer) {
      tensor.initial = KILN_INITIAL_UNIFORM;
      tensor.bound = rule->second.bound;
    }
    tensors.push_back(tensor);
  }
  return tensors;
}

std::string headerText(const std::string &api, const std::string &modelName,
                       const std::vector<codegen::LoweredModel *> &evals,
                       const TrainStepLayout &layout,
                       const std::vector<StateTensorText> &state, const std::string &hyper,
                       const std::vector<codegen::HyperParameter> &hyperParameters) {
  const codegen::LoweredModel &eval = *evals.front();
  std::string hyperNames;
  for (size_t i = 0; i < hyperParameters.size(); ++i)
    hyperNames += (i ? ", " : "") + cString(hyperParameters[i].name);
  std::string m = macroPrefix(api), t = api + "_trainer_t";
  std::string names, targets;
  for (size_t i = 0; i < state.size(); ++i)
    names += (i ? ", " : "") + cString(state[i].key);
  for (size_t i = 0; i < evals.size(); ++i)
    targets += (i ? ", \"" : "\"") + evals[i]->target.str() + "\"";
  std::ostringstream h;
  h << "/* " << api << ".h: the C training API of Kiln model '" << modelName
    << "', generated by kilnc build --mode=train.\n"
    << " *\n"
    << " * int " << api << "_create(" << t << " **out_trainer)\n"
    << " *   A trainer: the state (every parameter, buffer and optimizer state tensor,\n"
    << " *   twice: a step reads one copy and writes the other) allocated, zero. Steps\n"
    << " *   and eval fail with " << m << "_ERROR_STATE until " << api
    << "_load_state succeeded.\n"
    << " * void " << api << "_destroy(" << t << " *trainer) frees it (NULL is allowed).\n"
    << " * int " << api << "_load_state(" << t << " *trainer, const char *path)\n"
    << " *   Reads a safetensors checkpoint keyed as PyTorch's state_dict and kilnc\n"
    << " *   train's checkpoints: every parameter and buffer with its shape (float32;\n"
    << " *   num_batches_tracked int64), and the optimizer state where present (zero\n"
    << " *   where absent, a fresh optimizer as torch.optim's): <key>.momentum_buffer,\n"
    << " *   <key>.exp_avg, <key>.exp_avg_sq, and step (int64). A failed load changes\n"
    << " *   nothing.\n"
    << " * int " << api << "_initialise(" << t << " *trainer, uint64_t seed)\n"
    << " *   Sets the state to PyTorch's default initialisation drawn from `seed` (what\n"
    << " *   kilnc train starts from without --init; the same bits), optimizer state 0;\n"
    << " *   " << m << "_ERROR_STATE if the model has state without a default.\n"
    << " * int " << api << "_save_state(" << t << " *trainer, const char *path)\n"
    << " *   Writes every state tensor under those names (what kilnc train writes, byte\n"
    << " *   for byte after the same steps): a file is written to a temporary file\n"
    << " *   beside it and renamed over it, so a failure leaves it as it was;\n"
    << " *   /dev/stdout, a FIFO or a character device is written in place.\n"
    << " * int " << api << "_train_step(" << t << " *trainer, const float *inputs,\n"
    << " *                    const int64_t *labels, int64_t batch, float *out_loss,\n"
    << " *                    int64_t *out_correct)\n"
    << " *   One step of the compiled training step on `batch` samples: `inputs` holds\n"
    << " *   batch x " << m << "_INPUT_SAMPLE_SIZE float32 values in the layout "
    << m << "_INPUT_SHAPE\n"
    << " *   (C order, the batch first), `labels` batch class indices in [0, "
    << m << "_CLASSES).\n"
    << " *   Train-mode forward, loss, backward, optimizer update; the loss (mean\n"
    << " *   cross-entropy) and the argmax hits are the step's own forward's, before the\n"
    << " *   update (either pointer may be NULL). Labels out of range and a batch below\n"
    << " *   " << m << "_SMALLEST_BATCH are refused before anything runs.\n"
    << " * int " << api << "_eval(" << t << " *trainer, const float *inputs, int64_t batch,\n"
    << " *              float *out_logits)\n"
    << " *   The inference-mode forward on the current state (BatchNorm with its running\n"
    << " *   statistics, folded; dropout off): batch x " << m << "_CLASSES logits, the same\n"
    << " *   code and bits as an inference build (kilnc build --weights=external) loading\n"
    << " *   the state's checkpoint. The state is packed for it at the first eval after a\n"
    << " *   load or step; NaN or infinite state gives NaN logits.\n"
    << " * int " << api << "_set_hyper_parameter(" << t
    << " *trainer, const char *name, double value)\n"
    << " * int " << api << "_hyper_parameter(" << t
    << " *trainer, const char *name, double *out_value)\n"
    << " *   Sets or reads one of the optimizer's hyper-parameters for the steps from\n"
    << " *   now on (" << m << "_HYPER_PARAMETER_NAMES; torch.optim's names, betas as beta1\n"
    << " *   and beta2). A trainer starts with the train section's values. Checked as\n"
    << " *   torch.optim checks them (finite; lr, momentum, weight_decay, eps >= 0;\n"
    << " *   betas in [0, 1)); what the build fixed (the optimizer, nesterov, whether\n"
    << " *   SGD has momentum buffers) cannot change: " << m
    << "_ERROR_INVALID_ARGUMENT, changing\n"
    << " *   nothing.\n"
    << " * int " << api << "_state_info(size_t index, const char **out_name, int *out_int64,\n"
    << " *                    size_t *out_rank, const int64_t **out_shape)\n"
    << " * void *" << api << "_state_data(" << t << " *trainer, size_t index)\n"
    << " *   State tensor `index` (< " << m << "_STATE_COUNT): its name, element type\n"
    << " *   (int64 or float32), shape (C order), and current value (dense), valid until\n"
    << " *   the next step or load. info returns " << m
    << "_ERROR_INVALID_ARGUMENT for an index\n"
    << " *   out of range; data NULL.\n"
    << " *\n"
    << " * Every int function returns 0, or a non-zero error code whose message\n"
    << " * " << api << "_last_error() gives (per thread). No pointer needs any alignment.\n"
    << " * Optimizer and defaults: " << hyper << ".\n"
    << " *\n"
    << " * Thread safety: one call at a time per trainer; trainers on several threads\n"
    << " * may run at once. " << api << "_set_num_threads sets the threads that all Kiln\n"
    << " * models linked into one program share (default: the cores this process may\n"
    << " * run on); " << api << "_release_scratch frees this thread's scratch arena.\n"
    << " * " << api << "_variant() is the Halide target of the code that runs on this CPU\n"
    << " * (NULL if none: then " << api << "_create fails with " << m << "_ERROR_TARGET).\n"
    << " * The code never prints, and leaves the program's own Halide runtime alone.\n"
    << " * Link: the object or static library needs -lstdc++ -lpthread -ldl -lm (the\n"
    << " * checkpoint writer is C++); the shared library carries them.\n"
    << " */\n"
    << "#ifndef " << m << "_H\n#define " << m << "_H\n\n"
    << "#include <stddef.h>\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << "#define " << m << "_INPUT_RANK " << eval.input().shape.size() << "\n"
    << "#define " << m << "_INPUT_SHAPE " << shapeList(eval.input().shape)
    << " /* -1: the batch */\n"
    << "#define " << m << "_INPUT_SAMPLE_SIZE " << perSample(eval.input().shape) << "\n"
    << "#define " << m << "_CLASSES " << layout.classes << "\n"
    << "#define " << m << "_SMALLEST_BATCH " << layout.smallestBatch << "\n"
    << "#define " << m << "_STATE_COUNT " << state.size() << "\n"
    << "#define " << m << "_STATE_NAMES {" << names << "}\n"
    << "#define " << m << "_VARIANT_COUNT " << evals.size() << "\n"
    << "#define " << m << "_VARIANT_TARGETS {" << targets << "}\n"
    << "#define " << m << "_HYPER_PARAMETERS " << cString(hyper) << "\n"
    << "#define " << m << "_HYPER_PARAMETER_NAMES {" << hyperNames << "}\n\n"
    << "/* Error codes besides those of the Halide runtime (negative). */\n"
    << "#define " << m << "_ERROR_INVALID_ARGUMENT " << KILN_MODEL_ERROR_INVALID_ARGUMENT
    << " /* a null pointer, a bad batch, a label out of range */\n"
    << "#define " << m << "_ERROR_STATE " << KILN_MODEL_ERROR_WEIGHTS
    << " /* no state loaded, or a bad checkpoint */\n"
    << "#define " << m << "_ERROR_TARGET " << KILN_MODEL_ERROR_TARGET
    << " /* this CPU supports none of the variants */\n"
    << "#define " << m << "_ERROR_WRITE " << KILN_TRAINER_ERROR_WRITE
    << " /* the checkpoint could not be written */\n\n"
    << "typedef struct kiln_trainer_s " << t << ";\n\n"
    << "int " << api << "_create(" << t << " **out_trainer);\n"
    << "void " << api << "_destroy(" << t << " *trainer);\n"
    << "int " << api << "_load_state(" << t << " *trainer, const char *path);\n"
    << "int " << api << "_initialise(" << t << " *trainer, uint64_t seed);\n"
    << "int " << api << "_save_state(" << t << " *trainer, const char *path);\n"
    << "int " << api << "_train_step(" << t
    << " *trainer, const float *inputs, const int64_t *labels,\n"
    << "    int64_t batch, float *out_loss, int64_t *out_correct);\n"
    << "int " << api << "_eval(" << t
    << " *trainer, const float *inputs, int64_t batch, float *out_logits);\n"
    << "int " << api << "_state_info(size_t index, const char **out_name, int *out_int64,\n"
    << "    size_t *out_rank, const int64_t **out_shape);\n"
    << "void *" << api << "_state_data(" << t << " *trainer, size_t index);\n"
    << "int " << api << "_set_hyper_parameter(" << t
    << " *trainer, const char *name, double value);\n"
    << "int " << api << "_hyper_parameter(" << t
    << " *trainer, const char *name, double *out_value);\n"
    << "const char *" << api << "_last_error(void);\n"
    << "void " << api << "_set_num_threads(int threads);\n"
    << "void " << api << "_release_scratch(void);\n"
    << "const char *" << api << "_variant(void);\n"
    << "/* The trainer's view of this model (kiln/runtime/train_runner.h). */\n"
    << "struct kiln_train_program_t;\n"
    << "const struct kiln_train_program_t *" << api << "_train_program(void);\n\n"
    << "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n#endif /* " << m << "_H */\n";
  return h.str();
}

std::vector<std::string> apiSymbols(const std::string &api) {
  std::vector<std::string> symbols;
  for (const char *suffix :
       {"_create", "_destroy", "_load_state", "_initialise", "_save_state", "_train_step", "_eval",
        "_state_info", "_state_data", "_set_hyper_parameter", "_hyper_parameter", "_last_error", "_set_num_threads", "_release_scratch",
        "_variant", "_train_program"})
    symbols.push_back(api + suffix);
  return symbols;
}

/// The step's stages as trainer.h describes them: per stage its
/// arguments, each a state index, a KILN_TRAINER_ARG_*, a hyper-parameter
/// or a scratch tensor; the scratch tensors; every stage's hyper-parameters.
struct StepText {
  struct Stage {
    std::vector<int> inputs, outputs;
  };
  std::vector<Stage> stages;
  std::vector<StateTensorText> scratch;
  std::vector<codegen::HyperParameter> hyper;
};

/// `step`'s StepText; `error` set for an argument it cannot bind.
StepText stepText(const codegen::LoweredModel &step, const TrainStepLayout &layout,
                  std::string &error) {
  StepText text;
  std::vector<int> slotOfInput(step.inputs.size(), INT32_MIN),
      slotOfOutput(step.outputs.size(), INT32_MIN);
  for (size_t s = 0; s < layout.slots.size(); ++s) {
    slotOfInput[layout.slots[s].input] = static_cast<int>(s);
    slotOfOutput[layout.slots[s].output] = static_cast<int>(s);
  }
  auto fail = [&](const codegen::EntryTensor &tensor, bool output) {
    error = "the training step's " + std::string(output ? "result" : "argument") + " '" +
            (tensor.key.empty() ? tensor.name : tensor.key) +
            "' is neither state, the batch nor a metric";
  };
  auto hyperIndex = [&](const codegen::HyperParameter &hyper) {
    for (size_t j = 0; j < text.hyper.size(); ++j)
      if (text.hyper[j].name == hyper.name)
        return static_cast<int>(j);
    text.hyper.push_back(hyper);
    return static_cast<int>(text.hyper.size() - 1);
  };
  std::map<std::string, int> scratchOf; // by the reading stage's parameter
  for (const codegen::LoweredStage &stage : step.stages) {
    StepText::Stage kinds;
    if (!stage.packedWeights.empty()) {
      error = "the training step has packed weights, which its trainer cannot bind";
      return {};
    }
    for (const codegen::EntryTensor &in : stage.inputs) {
      auto scratch = scratchOf.find(in.param.name());
      if (scratch != scratchOf.end()) {
        kinds.inputs.push_back(KILN_TRAINER_ARG_SCRATCH(scratch->second));
        continue;
      }
      size_t i = 0;
      while (i < step.inputs.size() && step.inputs[i].param.name() != in.param.name())
        ++i;
      if (i == step.inputs.size()) {
        fail(in, false);
        return {};
      }
      if (slotOfInput[i] != INT32_MIN)
        kinds.inputs.push_back(slotOfInput[i]);
      else if (in.key == "input" && in.type == Halide::Float(32))
        kinds.inputs.push_back(KILN_TRAINER_ARG_INPUT);
      else if (in.key == "labels" && in.type == Halide::Int(64))
        kinds.inputs.push_back(KILN_TRAINER_ARG_LABELS);
      else {
        fail(in, false);
        return {};
      }
    }
    // The hyper-parameters follow the inputs (LoweredStage::arguments).
    for (const codegen::HyperParameter &hyper : stage.hyperParameters)
      kinds.inputs.push_back(KILN_TRAINER_ARG_HYPER_PARAMETER(hyperIndex(hyper)));
    for (size_t j = 0; j < stage.outputs.size(); ++j) {
      const codegen::EntryTensor &out = stage.outputs[j];
      int result = stage.results[j];
      if (result < 0) {
        if (out.batched) {
          error = "the training step passes '" + out.name +
                  "', a tensor of the batch's extent, between its stages";
          return {};
        }
        scratchOf[out.param.name()] = static_cast<int>(text.scratch.size());
        kinds.outputs.push_back(KILN_TRAINER_ARG_SCRATCH(text.scratch.size()));
        text.scratch.push_back({out.name, out.type == Halide::Int(64), out.shape});
      } else if (slotOfOutput[result] != INT32_MIN) {
        kinds.outputs.push_back(slotOfOutput[result]);
      } else if (static_cast<size_t>(result) == layout.loss) {
        kinds.outputs.push_back(KILN_TRAINER_ARG_LOSS);
      } else if (static_cast<size_t>(result) == layout.correct) {
        kinds.outputs.push_back(KILN_TRAINER_ARG_CORRECT);
      } else {
        fail(out, true);
        return {};
      }
    }
    text.stages.push_back(kinds);
  }
  return text;
}

/// The step's optimizer as trainer.h describes it: its name, nesterov, and
/// whether it has momentum buffers.
struct OptimizerText {
  std::string name = "none";
  bool nesterov = false, momentumBuffers = false;
};

OptimizerText optimizerOf(ModuleOp module) {
  OptimizerText optimizer;
  module.lookupSymbol<FuncOp>(nn::kTrainStepFunc).walk([&](Operation *op) {
    if (auto sgd = dyn_cast<nn::SGDUpdateOp>(op)) {
      optimizer.name = "sgd";
      optimizer.nesterov = sgd.nesterov();
      optimizer.momentumBuffers |= static_cast<bool>(sgd.momentum_buffer());
    } else if (isa<nn::AdamUpdateOp>(op)) {
      optimizer.name = "adam";
    } else if (isa<nn::AdamWUpdateOp>(op)) {
      optimizer.name = "adamw";
    }
  });
  return optimizer;
}

/// The step's hyper-parameters: the one-line text of their defaults
/// (hyperParameters), the optimizer and the run-time arguments.
struct HyperText {
  std::string text;
  OptimizerText optimizer;
  std::vector<codegen::HyperParameter> parameters;
};

/// The train section as the generated C's kiln_train_section_t.
std::string trainSectionText(const std::string &api, ModuleOp module) {
  TrainSection train = trainSection(module);
  std::ostringstream c;
  c.precision(17);
  c << "static const kiln_train_section_t " << api << "_train_section = {" << train.epochs
    << ", " << train.batch << ", " << train.validation << ", " << train.patience << ", "
    << train.delta << ", " << train.seed << ", " << cString(train.data) << ", "
    << static_cast<double>(train.scale) << ", " << static_cast<double>(train.mean) << ", "
    << static_cast<double>(train.stddev) << "};\n\n";
  return c.str();
}

std::string trainerText(const std::string &api, const std::string &modelName,
                        const std::vector<codegen::LoweredModel *> &evals, ModuleOp evalModule,
                        ModuleOp module, const HyperText &hyper, const TrainStepLayout &layout,
                        const std::vector<StateTensorText> &state, const StepText &step) {
  std::string m = macroPrefix(api);
  std::string t = api + "_trainer_t";
  std::ostringstream c;
  c << "/* Generated by kilnc build --mode=train: Kiln model '" << modelName
    << "' as the data Kiln's\n"
    << " * trainer runtime reads (kiln/runtime/trainer.h), and the entry points of " << api
    << ".h. */\n"
    << "#include \"" << api << ".h\"\n\n#include <stdio.h>\n\n"
    // The eval forward: an inference model with external weights, whose
    // values are accepted as they are (a diverged state evaluates to NaN).
    << modelDataText(api, evals, evalModule, /*allowExtraKeys=*/true, /*allowNonfinite=*/true)
    << "#include \"kiln/runtime/trainer.h\"\n#include \"kiln/runtime/train_runner.h\"\n\n"
    << "/* The training step of each variant, its stages (Halide's argv form). */\n";
  size_t stages = step.stages.size();
  for (size_t i = 0; i < evals.size(); ++i)
    for (size_t s = 0; s < stages; ++s)
      c << "int " << stepName(api, i, s) << "_argv(void **args);\n";
  c << "\nstatic const kiln_model_pipeline_t " << api << "_steps[] = {";
  for (size_t i = 0; i < evals.size(); ++i)
    for (size_t s = 0; s < stages; ++s)
      c << (i + s ? ", " : "") << stepName(api, i, s) << "_argv";
  c << "};\n\n/* The state: name, int64, rank, shape, optimizer state, and the default\n"
    << " * initialisation (kiln_initial_kind_t, bound, value). */\n"
    << "static const kiln_trainer_tensor_t " << api << "_state_tensors[] = {\n";
  c.precision(17);
  for (const StateTensorText &tensor : state)
    c << "  {" << cString(tensor.key) << ", " << (tensor.integer ? 1 : 0) << ", "
      << tensor.shape.size() << ", " << arrayOf("int64_t", tensor.shape) << ", "
      << (tensor.optimizer ? 1 : 0) << ", " << static_cast<int>(tensor.initial) << ", "
      << tensor.bound << ", " << tensor.value << "},\n";
  c << "};\n\n/* The optimizer's hyper-parameters and their defaults (the train\n"
    << " * section's). */\n"
    << "static const kiln_trainer_hyper_parameter_t " << api << "_hyper[] = {\n";
  for (const codegen::HyperParameter &h : hyper.parameters)
    c << "  {" << cString(h.name) << ", " << h.value << "},\n";
  c << "  {NULL, 0}};\n\n"
    << "/* The tensors between the stages: name, int64, rank, shape. */\n"
    << "static const kiln_trainer_tensor_t " << api << "_scratch[] = {\n";
  for (const StateTensorText &tensor : step.scratch)
    c << "  {" << cString(tensor.key) << ", " << (tensor.integer ? 1 : 0) << ", "
      << tensor.shape.size() << ", " << arrayOf("int64_t", tensor.shape) << ", 0, 0, 0, 0},\n";
  c << "  {NULL, 0, 0, NULL, 0, 0, 0, 0}};\n\n"
    << "/* Each stage's arguments: a state index, or -1 input, -2 labels, -3 loss,\n"
    << " * -4 correct, -16 - j hyper-parameter j, -2^20 - j scratch tensor j. */\n"
    << "static const kiln_trainer_stage_t " << api << "_stages[] = {\n";
  for (const StepText::Stage &stage : step.stages)
    c << "  {" << stage.inputs.size() << ", " << arrayOf("int", stage.inputs) << ", "
      << stage.outputs.size() << ", " << arrayOf("int", stage.outputs) << "},\n";
  c << "};\n\n"
    << "static const kiln_trainer_model_t " << api << "_trainer = {\n"
    << "  " << cString(api) << ", &" << api << "_model, " << layout.classes << ", "
    << layout.smallestBatch << ",\n"
    << "  " << state.size() << ", " << api << "_state_tensors, " << api << "_steps,\n"
    << "  " << stages << ", " << api << "_stages, " << step.scratch.size() << ", " << api
    << "_scratch,\n"
    << "  " << cString(hyper.optimizer.name) << ", " << (hyper.optimizer.nesterov ? 1 : 0) << ", "
    << (hyper.optimizer.momentumBuffers ? 1 : 0) << ", " << hyper.parameters.size() << ", " << api
    << "_hyper};\n\n"
    << "int " << api << "_create(" << t << " **out_trainer) {\n"
    << "  return kiln_trainer_create(&" << api << "_trainer, out_trainer, " << api
    << "_error);\n}\n\n"
    << "void " << api << "_destroy(" << t << " *trainer) { kiln_trainer_destroy(trainer); }\n\n"
    << "int " << api << "_load_state(" << t << " *trainer, const char *path) {\n"
    << "  return kiln_trainer_load_state(trainer, path, " << api << "_error);\n}\n\n"
    << "int " << api << "_initialise(" << t << " *trainer, uint64_t seed) {\n"
    << "  return kiln_trainer_initialise(trainer, seed, " << api << "_error);\n}\n\n"
    << "int " << api << "_save_state(" << t << " *trainer, const char *path) {\n"
    << "  return kiln_trainer_save_state(trainer, path, " << api << "_error);\n}\n\n"
    << "int " << api << "_train_step(" << t
    << " *trainer, const float *inputs, const int64_t *labels,\n"
    << "    int64_t batch, float *out_loss, int64_t *out_correct) {\n"
    << "  return kiln_trainer_step(trainer, inputs, labels, batch, out_loss, out_correct, "
    << api << "_error);\n}\n\n"
    << "int " << api << "_eval(" << t
    << " *trainer, const float *inputs, int64_t batch, float *out_logits) {\n"
    << "  return kiln_trainer_eval(trainer, inputs, batch, out_logits, " << api
    << "_error);\n}\n\n"
    << "int " << api << "_state_info(size_t index, const char **out_name, int *out_int64,\n"
    << "    size_t *out_rank, const int64_t **out_shape) {\n"
    << "  if (index >= " << state.size() << ") {\n"
    << "    snprintf(" << api << "_error, sizeof " << api << "_error,\n"
    << "             \"invalid argument: state index %zu of " << state.size()
    << "\", index);\n"
    << "    return KILN_MODEL_ERROR_INVALID_ARGUMENT;\n  }\n"
    << "  const kiln_trainer_tensor_t *tensor = &" << api << "_state_tensors[index];\n"
    << "  if (out_name) *out_name = tensor->name;\n"
    << "  if (out_int64) *out_int64 = tensor->integer;\n"
    << "  if (out_rank) *out_rank = tensor->rank;\n"
    << "  if (out_shape) *out_shape = tensor->shape;\n"
    << "  return 0;\n}\n\n"
    << "void *" << api << "_state_data(" << t << " *trainer, size_t index) {\n"
    << "  return kiln_trainer_state_data(trainer, index);\n}\n\n"
    << "int " << api << "_set_hyper_parameter(" << t
    << " *trainer, const char *name, double value) {\n"
    << "  return kiln_trainer_set_hyper_parameter(trainer, name, value, " << api << "_error);\n}\n\n"
    << "int " << api << "_hyper_parameter(" << t
    << " *trainer, const char *name, double *out_value) {\n"
    << "  return kiln_trainer_hyper_parameter(trainer, name, out_value, " << api << "_error);\n}\n\n"
    << "const char *" << api << "_last_error(void) { return " << api << "_error; }\n\n"
    << "void " << api << "_set_num_threads(int threads) { kiln_thread_pool_set_threads(threads); }\n\n"
    << "void " << api << "_release_scratch(void) { kiln_scratch_arena_release(); }\n\n"
    << "const char *" << api << "_variant(void) { return kiln_model_variant(&" << api
    << "_model); }\n\n"
    << "/* What the trainer (kiln/runtime/train_loop.h) runs: kilnc train loads\n"
    << " * the shared library and calls it; the executable's main() too. */\n"
    << trainSectionText(api, module)
    << "static const int64_t " << api << "_input_shape[] = " << m << "_INPUT_SHAPE;\n"
    << "static const char *const " << api << "_hyper_names[] = {";
  for (const codegen::HyperParameter &h : hyper.parameters)
    c << cString(h.name) << ", ";
  c << "NULL};\n\n"
    << "static const kiln_train_program_t " << api << "_program = {\n"
    << "  " << cString(api) << ", " << m << "_INPUT_RANK, " << api << "_input_shape, " << m
    << "_CLASSES,\n"
    << "  " << m << "_STATE_COUNT, " << cString(hyper.text) << ",\n"
    << "  " << api << "_create, " << api << "_destroy, " << api << "_load_state, " << api
    << "_save_state,\n"
    << "  " << api << "_train_step, " << api << "_eval, " << api << "_last_error, " << api
    << "_set_num_threads,\n"
    << "  " << api << "_variant, " << m << "_SMALLEST_BATCH, " << api << "_state_info, " << api
    << "_state_data,\n"
    << "  &" << api << "_train_section, " << api << "_initialise,\n"
    << "  " << api << "_set_hyper_parameter, " << api << "_hyper_parameter, "
    << hyper.parameters.size() << ", " << api << "_hyper_names};\n\n"
    << "const struct kiln_train_program_t *" << api << "_train_program(void) {\n"
    << "  return &" << api << "_program;\n}\n";
  return c.str();
}

std::string mainText(const std::string &api) {
  std::ostringstream c;
  c << "/* Generated by kilnc build --mode=train: the main() of the " << api
    << " executable. */\n"
    << "#include \"" << api << ".h\"\n#include \"kiln/runtime/train_runner.h\"\n\n"
    << "int main(int argc, char **argv) {\n"
    << "  return kiln_train_runner_main(argc, argv, " << api << "_train_program());\n}\n";
  return c.str();
}

} // namespace

TrainSection trainSection(ModuleOp module) {
  TrainSection section;
  auto train = module->getAttrOfType<DictionaryAttr>(kTrainConfigAttr);
  if (train) {
    if (auto attr = train.getAs<IntegerAttr>("epochs"))
      section.epochs = attr.getInt();
    if (auto attr = train.getAs<IntegerAttr>("batch_size"))
      section.batch = attr.getInt();
    if (auto attr = train.getAs<FloatAttr>("validation"))
      section.validation = attr.getValueAsDouble();
    if (auto stopping = train.getAs<DictionaryAttr>("early_stopping")) {
      if (auto attr = stopping.getAs<IntegerAttr>("patience"))
        section.patience = attr.getInt();
      if (auto attr = stopping.getAs<FloatAttr>("delta"))
        section.delta = attr.getValueAsDouble();
    }
    if (auto attr = train.getAs<StringAttr>("data"))
      section.data = attr.getValue().str();
  } else {
    // No train section (an ONNX import): a train section's defaults
    // (docs/dsl.md), overridden by the command line's flags.
    TrainSection defaults;
    defaults.epochs = 10;
    defaults.data = "fashion_mnist";
    section = defaults;
  }
  section.seed = nn::trainingSeed(module, -1);
  build::pixelTransform(module, section.scale, section.mean, section.stddev);
  return section;
}

LogicalResult buildTrainOutputs(ModuleOp module, TrainCompilation &compiled,
                                const BuildOptions &options) {
  Location loc = module.getLoc();
  if (compiled.variants.empty())
    return emitError(loc) << "no target to build for";
  std::vector<codegen::LoweredModel *> evals, all;
  for (TrainVariant &variant : compiled.variants) {
    evals.push_back(&variant.eval);
    all.push_back(&variant.eval);
    all.push_back(&variant.step);
  }
  if (failed(checkRanks(loc, all)))
    return failure();
  const codegen::LoweredModel &step = compiled.variants.front().step;
  TrainStepLayout layout = trainStepLayout(module, step);
  std::string error;
  StepText stepArgs = stepText(step, layout, error);
  if (!error.empty())
    return emitError(loc) << error;
  // One table serves every variant: each target's step has the same stages.
  for (TrainVariant &variant : compiled.variants) {
    StepText other = stepText(variant.step, layout, error);
    bool same = error.empty() && other.stages.size() == stepArgs.stages.size() &&
                other.scratch.size() == stepArgs.scratch.size();
    for (size_t s = 0; same && s < other.stages.size(); ++s)
      same = other.stages[s].inputs == stepArgs.stages[s].inputs &&
             other.stages[s].outputs == stepArgs.stages[s].outputs;
    if (!same)
      return emitError(loc) << "internal error: the training step of "
                            << variant.step.target.str()
                            << " has other stages than that of the first target";
  }
  std::vector<StateTensorText> state = stateTensors(module, step, layout);
  HyperText hyper{hyperParameters(module), optimizerOf(module), stepArgs.hyper};

  Product product;
  product.api = apiNameFor(options);
  product.models = evals;
  product.jobs = pipelineJobs(product.api, evals);
  for (size_t i = 0; i < compiled.variants.size(); ++i) {
    codegen::LoweredModel &variantStep = compiled.variants[i].step;
    for (size_t s = 0; s < variantStep.stages.size(); ++s) {
      const codegen::LoweredStage &stage = variantStep.stages[s];
      product.jobs.push_back({stage.pipeline(), stage.arguments(), stepName(product.api, i, s),
                              objectTarget(variantStep)});
    }
  }
  const std::string &name = step.name;
  product.header = headerText(product.api, name, evals, layout, state, hyper.text,
                              hyper.parameters);
  product.modelC = trainerText(product.api, name, evals, *compiled.evalModule, module, hyper,
                               layout, state, stepArgs);
  product.mainC = mainText(product.api);
  product.symbols = apiSymbols(product.api);
  product.cxxRuntime = true;
  return assembleProduct(loc, options, product);
}

} // namespace kiln

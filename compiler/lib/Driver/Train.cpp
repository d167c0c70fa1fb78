//===- Train.cpp - kilnc train and kilnc eval: the trainer on a built step -===//
#include "kiln/Driver/Train.h"

#include "kiln/Driver/Build.h"
#include "kiln/Driver/Compile.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/Driver/WorkDirectory.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/trainer.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <dlfcn.h>

#include <memory>
#include <vector>

namespace kiln {

namespace {

int fail(const std::string &message) {
  llvm::errs() << "kilnc: error: " << message << "\n";
  return 1;
}

std::string takeMessage(kiln_status_t status) {
  std::string text = kiln_status_message(status);
  kiln_status_free(status);
  return text;
}

/// A loaded training library; unloaded when destroyed.
struct LoadedLibrary {
  void *handle = nullptr;
  ~LoadedLibrary() {
    if (handle)
      ::dlclose(handle);
  }
};

/// Writes PyTorch's default initialisation of every parameter and buffer
/// of `program` (optimizer state is left out: zero on load) to `path`.
bool writeInitialState(const std::vector<InitialTensor> &tensors, uint64_t seed,
                       const kiln_train_program_t &program, const std::string &path,
                       std::string &error) {
  llvm::StringMap<const InitialTensor *> byKey;
  for (const InitialTensor &tensor : tensors)
    byKey[tensor.key] = &tensor;
  kiln_safetensors_writer_t *raw = nullptr;
  if (kiln_status_t status = kiln_safetensors_writer_create(&raw)) {
    error = takeMessage(status);
    return false;
  }
  std::unique_ptr<kiln_safetensors_writer_t, void (*)(kiln_safetensors_writer_t *)> writer(
      raw, kiln_safetensors_writer_free);
  for (size_t i = 0; i < program.state_count; ++i) {
    const char *name = nullptr;
    int integer = 0;
    size_t rank = 0;
    const int64_t *shape = nullptr;
    if (program.state_info(i, &name, &integer, &rank, &shape) != 0) {
      error = program.last_error();
      return false;
    }
    auto rule = byKey.find(name);
    if (rule == byKey.end())
      continue; // optimizer state and the step count: a fresh optimizer's zeros
    int64_t count = 1;
    for (size_t d = 0; d < rank; ++d)
      count *= shape[d];
    std::vector<float> floats;
    std::vector<int64_t> integers;
    const void *data;
    if (integer) {
      if (rule->second->kind == InitialTensor::Kind::Uniform) {
        error = std::string("state '") + name + "' is int64, which a uniform initialisation "
                "cannot fill";
        return false;
      }
      integers.resize(static_cast<size_t>(count));
      fillInitial(*rule->second, integers.data(), count);
      data = integers.data();
    } else {
      floats.resize(static_cast<size_t>(count));
      fillInitial(*rule->second, seed, floats.data(), count);
      data = floats.data();
    }
    if (kiln_status_t status = kiln_safetensors_writer_add(
            raw, name, integer ? KILN_DTYPE_I64 : KILN_DTYPE_F32, rank, shape, data)) {
      error = takeMessage(status);
      return false;
    }
    byKey.erase(name);
  }
  if (!byKey.empty()) {
    error = "the training step has no state '" + byKey.begin()->getKey().str() + "'";
    return false;
  }
  if (kiln_status_t status = kiln_safetensors_writer_write(raw, path.c_str())) {
    error = takeMessage(status);
    return false;
  }
  return true;
}

} // namespace

int runTraining(mlir::ModuleOp module, const nn::AutodiffOptions &autodiff,
                TrainRunOptions options) {
  bool needsInit = !options.loop.init && !options.loop.resume && !options.loop.evaluate_only;
  mlir::FailureOr<TrainCompilation> compiled = compileTraining(module, CompileOptions(), autodiff);
  if (failed(compiled))
    return 1;
  // The options, outputs and data checked before seconds of compiling,
  // against the model's description.
  const codegen::LoweredModel &step = compiled->variants.front().step;
  const codegen::LoweredModel &eval = compiled->variants.front().eval;
  TrainStepLayout layout = trainStepLayout(module, step);
  TrainSection section = trainSection(module);
  kiln_train_section_t sectionDesc = {section.epochs,   section.batch,  section.validation,
                                      section.patience, section.delta,  section.seed,
                                      section.data.c_str(), section.scale, section.mean,
                                      section.stddev};
  std::vector<int64_t> inputShape = eval.input().shape;
  kiln_train_program_t description{};
  description.name = options.apiName.c_str();
  description.input_rank = inputShape.size();
  description.input_shape = inputShape.data();
  description.classes = layout.classes;
  description.smallest_batch = layout.smallestBatch;
  description.train = &sectionDesc;
  // The default initialisation is written only once the library is built:
  // the check stands a placeholder (the model, an input anyway) in for it.
  kiln_train_options_t check = options.loop;
  if (needsInit)
    check.init = check.input_file_count ? check.input_files[0] : "";
  if (int code = kiln_train_check(&description, &check))
    return code;
  // Checked before the library is built: a model whose state has no
  // default fails at its op.
  mlir::FailureOr<std::vector<InitialTensor>> initial = std::vector<InitialTensor>{};
  if (needsInit)
    initial = defaultInitialisation(module);
  if (failed(initial))
    return 1;

  llvm::SmallString<128> temp;
  llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, temp);
  std::string error;
  std::unique_ptr<WorkDirectory> work = WorkDirectory::create(temp, error);
  if (!work)
    return fail(error);
  BuildOptions build;
  build.kind = OutputKind::SharedLibrary;
  build.outputPath = work->file("lib" + options.apiName + ".so");
  build.cc = options.cc;
  if (failed(buildTrainOutputs(module, *compiled, build)))
    return 1;

  LoadedLibrary library;
  // RTLD_LOCAL|RTLD_DEEPBIND: the library's own runtime (its Halide runtime,
  // Kiln's trainer) binds to itself, never to kilnc's copies.
  library.handle = ::dlopen(build.outputPath.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!library.handle)
    return fail(std::string("cannot load the training library: ") + ::dlerror());
  using ProgramFn = const kiln_train_program_t *(*)();
  std::string symbol = options.apiName + "_train_program";
  auto entry = reinterpret_cast<ProgramFn>(::dlsym(library.handle, symbol.c_str()));
  if (!entry)
    return fail("the training library has no " + symbol);
  const kiln_train_program_t &program = *entry();

  std::string initPath;
  if (needsInit) {
    int64_t seed = nn::trainingSeed(module, options.seed);
    initPath = work->file("initial.safetensors");
    if (!writeInitialState(*initial, static_cast<uint64_t>(seed), program, initPath, error))
      return fail(error);
    options.loop.init = initPath.c_str();
    llvm::outs() << "initial state: PyTorch's default initialisation from seed " << seed << "\n";
    llvm::outs().flush();
  }
  return kiln_train_run(&program, &options.loop);
}

} // namespace kiln

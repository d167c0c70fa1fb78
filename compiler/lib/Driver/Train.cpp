//===- Train.cpp - kilnc train and kilnc eval: the trainer on a built step -===//
#include "kiln/Driver/Train.h"

#include "kiln/Driver/Build.h"
#include "kiln/Driver/Compile.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/Driver/WorkDirectory.h"
#include "kiln/runtime/trainer.h"

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
  // Checked, not run: the library's initialiser stands for itself.
  description.initialise = [](kiln_trainer_s *, uint64_t) { return 0; };
  if (int code = kiln_train_check(&description, &options.loop))
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

  // RTLD_LOCAL|RTLD_DEEPBIND: the library's own runtime (its Halide runtime,
  // Kiln's trainer) binds to itself, never to kilnc's copies. It is never
  // unloaded: its thread pool's workers run in its code until the process
  // ends, and a dlclose would unmap it under them.
  void *library = ::dlopen(build.outputPath.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!library)
    return fail(std::string("cannot load the training library: ") + ::dlerror());
  using ProgramFn = const kiln_train_program_t *(*)();
  std::string symbol = options.apiName + "_train_program";
  auto entry = reinterpret_cast<ProgramFn>(::dlsym(library, symbol.c_str()));
  if (!entry)
    return fail("the training library has no " + symbol);
  const kiln_train_program_t &program = *entry();

  return kiln_train_run(&program, &options.loop);
}

} // namespace kiln

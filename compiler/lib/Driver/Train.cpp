//===- Train.cpp - kilnc train and kilnc eval: the trainer on a built step -===//
#include "kiln/Driver/Train.h"

#include "kiln/CodeGen/Halide/TargetInfo.h"
#include "kiln/Driver/Build.h"
#include "kiln/Driver/Compile.h"
#include "kiln/Driver/InitialState.h"
#include "kiln/Driver/TrainStep.h"
#include "kiln/Driver/WorkDirectory.h"
#include "kiln/runtime/trainer.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/xxhash.h"

#include <Halide.h>
#include "llvm/Support/raw_ostream.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include <memory>
#include <vector>

namespace kiln {

namespace {

int fail(const std::string &message) {
  llvm::errs() << "kilnc: error: " << message << "\n";
  return 1;
}



/// Where built training libraries are kept between runs: KILN_CACHE_DIR,
/// else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln; empty (no cache) when
/// KILN_CACHE_DIR is set to "" or there is no home.
std::string cacheDirectory() {
  if (const char *dir = std::getenv("KILN_CACHE_DIR"))
    return dir;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/kiln";
  if (const char *home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/kiln";
  return {};
}

/// What the library's code depends on: the module as compiled (the model,
/// its training step with every hyper-parameter), the API name, the host
/// target and its cores (schedules follow both), the C compiler, and this
/// kilnc (its file's identity, so a rebuilt compiler never reuses another's
/// code). A hit loads the library a previous run built from the same input.
std::string cacheKey(mlir::ModuleOp module, const TrainRunOptions &options) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\napi " << options.apiName << "\ncc " << options.cc << "\nhost "
     << kiln::codegen::hostTarget().to_string() << "\ncores "
     << std::thread::hardware_concurrency();
  struct stat self;
  if (::stat("/proc/self/exe", &self) == 0)
    os << "\nkilnc " << self.st_dev << ":" << self.st_ino << ":" << self.st_size << ":"
       << self.st_mtim.tv_sec << "." << self.st_mtim.tv_nsec;
  os.flush();
  char key[40];
  std::snprintf(key, sizeof key, "%016llx-%zu",
                static_cast<unsigned long long>(llvm::xxHash64(text)), text.size());
  return key;
}

/// Copies the built library into the cache under `key`, atomically (a
/// temporary file renamed), so that concurrent runs see it whole or not at
/// all. A cache that cannot be written is no error: the run goes on.
void storeInCache(const std::string &library, const std::string &dir, const std::string &key) {
  if (llvm::sys::fs::create_directories(dir))
    return;
  std::string target = dir + "/" + key + ".so";
  llvm::SmallString<128> temp;
  int fd = -1;
  if (llvm::sys::fs::createUniqueFile(dir + "/.tmp-%%%%%%%%.so", fd, temp))
    return;
  ::close(fd);
  if (llvm::sys::fs::copy_file(library, temp) || llvm::sys::fs::rename(temp, target))
    llvm::sys::fs::remove(temp);
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

  // A library built before from the same module is loaded as it is.
  std::string cache = cacheDirectory(), key = cacheKey(module, options);
  std::string libraryPath = cache.empty() ? "" : cache + "/" + key + ".so";
  std::unique_ptr<WorkDirectory> work;
  if (libraryPath.empty() || !llvm::sys::fs::exists(libraryPath)) {
    llvm::SmallString<128> temp;
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, temp);
    std::string error;
    work = WorkDirectory::create(temp, error);
    if (!work)
      return fail(error);
    BuildOptions build;
    build.kind = OutputKind::SharedLibrary;
    build.outputPath = work->file("lib" + options.apiName + ".so");
    build.cc = options.cc;
    if (failed(buildTrainOutputs(module, *compiled, build)))
      return 1;
    if (!cache.empty())
      storeInCache(build.outputPath, cache, key);
    libraryPath = build.outputPath;
  }

  // RTLD_LOCAL|RTLD_DEEPBIND: the library's own runtime (its Halide runtime,
  // Kiln's trainer) binds to itself, never to kilnc's copies. It is never
  // unloaded: its thread pool's workers run in its code until the process
  // ends, and a dlclose would unmap it under them.
  void *library = ::dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!library)
    return fail("cannot load the training library " + libraryPath + ": " + ::dlerror() +
                (work ? "" : " (a damaged cache entry: remove it)"));
  using ProgramFn = const kiln_train_program_t *(*)();
  std::string symbol = options.apiName + "_train_program";
  auto entry = reinterpret_cast<ProgramFn>(::dlsym(library, symbol.c_str()));
  if (!entry)
    return fail("the training library has no " + symbol);
  const kiln_train_program_t &program = *entry();

  return kiln_train_run(&program, &options.loop);
}

} // namespace kiln

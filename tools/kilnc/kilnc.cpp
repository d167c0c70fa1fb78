//===- kilnc.cpp - Kiln's compiler driver ---------------------------------===//
//
// Command-line parsing only: the work is in compiler/lib/Driver.
//
//   kilnc check [--params] MODEL.kiln
//   kilnc emit --emit=ast|mlir|mlir-train|dot|mlir-folded|halide-stmt [-o OUT] MODEL.kiln
//   kilnc build MODEL.kiln --weights W.safetensors -o OUT [--emit=exe|obj|lib|shared]
//   kilnc build MODEL.kiln --weights=external -o OUT ...   (weights loaded at run time)
//   kilnc build ... --target=arm-64-linux [--cc=PATH]       (cross-compiled, docs/targets.md)
//   kilnc build MODEL.kiln --mode=train -o OUT [--emit=...]  (the training step, AOT)
//   kilnc train MODEL.kiln [--init W.safetensors | --seed S] --inputs x.npy --labels y.npy
//               --steps K --batch B --no-shuffle -o OUT.safetensors [--optimizer ...]
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Build.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/Summary.h"
#include "kiln/Driver/TerminalSafeStream.h"
#include "kiln/Driver/Train.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"

#include <cmath>
#include <cstdio>

namespace cl = llvm::cl;

namespace {

cl::SubCommand checkCommand("check",
                            "Verify a model and print a summary per layer");
cl::SubCommand emitCommand("emit", "Print one stage of the pipeline");
cl::SubCommand buildCommand("build",
                            "Compile a model with its weights to an executable, "
                            "object or library");
cl::SubCommand trainCommand("train",
                            "Train a model for a number of steps from a checkpoint and "
                            "write the new checkpoint");

cl::OptionCategory kilncCategory("kilnc options");

cl::opt<std::string> checkInput(cl::Positional, cl::Required,
                                cl::desc("<model.kiln>"), cl::sub(checkCommand),
                                cl::cat(kilncCategory));
cl::opt<bool> listParams("params",
                         cl::desc("Print the state_dict (keys, kinds, shapes) "
                                  "instead of the summary"),
                         cl::sub(checkCommand), cl::cat(kilncCategory));

enum class Stage { Ast, Mlir, MlirTrain, Dot, MlirFolded, HalideStmt };
cl::opt<std::string> emitInput(cl::Positional, cl::Required,
                               cl::desc("<model.kiln>"), cl::sub(emitCommand),
                               cl::cat(kilncCategory));
cl::opt<Stage> emitStage(
    "emit", cl::desc("The stage to print"), cl::Required,
    cl::values(clEnumValN(Stage::Ast, "ast", "the syntax tree"),
               clEnumValN(Stage::Mlir, "mlir", "the nn dialect module"),
               clEnumValN(Stage::MlirTrain, "mlir-train",
                          "the module after nn-autodiff: @forward and the training "
                          "step @train_step (needs a train section; no weights)"),
               clEnumValN(Stage::Dot, "dot",
                          "the layer graph for Graphviz (folded with --weights)"),
               clEnumValN(Stage::MlirFolded, "mlir-folded",
                          "the inference module: weights bound, BatchNorm folded, "
                          "activations fused (needs --weights)"),
               clEnumValN(Stage::HalideStmt, "halide-stmt",
                          "Halide's lowered statement of the scheduled pipeline "
                          "(needs --weights; with --mode=train, the training step's)")),
    cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> outputPath("o",
                                cl::desc("Output file (default: stdout), replaced whole; "
                                         "/dev/stdout, a FIFO or a character device is "
                                         "written in place; never an input"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(emitCommand), cl::cat(kilncCategory));

// build (and the weight-dependent emit stages)
cl::opt<std::string> buildInput(cl::Positional, cl::Required,
                                cl::desc("<model.kiln>"), cl::sub(buildCommand),
                                cl::cat(kilncCategory));
cl::opt<std::string> buildOutput("o", cl::Required,
                                 cl::desc("Output: OUT (exe), OUT.o, libOUT.a or libOUT.so; "
                                          "OUT.h is written beside it. Both are regular "
                                          "files (through a link: the file it points to), "
                                          "never an input"),
                                 cl::value_desc("path"), cl::sub(buildCommand),
                                 cl::cat(kilncCategory));
cl::opt<kiln::OutputKind> buildKind(
    "emit", cl::desc("What to build"), cl::init(kiln::OutputKind::Executable),
    cl::values(clEnumValN(kiln::OutputKind::Executable, "exe",
                          "a standalone program (default)"),
               clEnumValN(kiln::OutputKind::Object, "obj", "an object file + C header"),
               clEnumValN(kiln::OutputKind::StaticLibrary, "lib",
                          "a static library + C header"),
               clEnumValN(kiln::OutputKind::SharedLibrary, "shared",
                          "a shared library + C header")),
    cl::sub(buildCommand), cl::cat(kilncCategory));
enum class Mode { Infer, Train };
cl::opt<Mode> buildMode(
    "mode", cl::desc("What to compile"), cl::init(Mode::Infer),
    cl::values(clEnumValN(Mode::Infer, "infer", "the inference forward, weights bound or "
                                                 "external (default)"),
               clEnumValN(Mode::Train, "train",
                          "the training step (nn-autodiff's, with the train section's "
                          "hyper-parameters and --optimizer/--lr/--momentum/--weight-decay/"
                          "--seed) and the eval forward; no --weights: the state is loaded at "
                          "run time (OUT_load_state, --init)")),
    cl::sub(buildCommand), cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> weightsPath("weights",
                                 cl::desc("The model's weights (safetensors, PyTorch "
                                          "state_dict keys), or 'external': the built "
                                          "code loads them at run time"),
                                 cl::value_desc("file"), cl::sub(buildCommand),
                                 cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> targetName("target",
                                cl::desc("Halide target string, or a comma-separated list "
                                         "for one binary holding a variant per target "
                                         "(default: host)"),
                                cl::init("host"), cl::sub(buildCommand),
                                cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> ccPath("cc",
                            cl::desc("C compiler that compiles the generated C and links "
                                     "the output (default: cc, or the target's Debian "
                                     "cross compiler, e.g. aarch64-linux-gnu-gcc)"),
                            cl::value_desc("path"), cl::sub(buildCommand),
                            cl::cat(kilncCategory));
cl::opt<bool> noFold("no-fold",
                     cl::desc("Keep BatchNorm and activations as separate layers"),
                     cl::sub(buildCommand), cl::sub(emitCommand),
                     cl::cat(kilncCategory));
cl::opt<bool> report("report",
                     cl::desc("Say what became of each BatchNorm (as remarks)"),
                     cl::sub(buildCommand), cl::sub(emitCommand),
                     cl::cat(kilncCategory));
cl::opt<bool> allowExtraKeys("allow-extra-keys",
                             cl::desc("Warn about, rather than refuse, tensors the "
                                      "model does not have"),
                             cl::sub(buildCommand), cl::sub(emitCommand),
                             cl::cat(kilncCategory));
cl::opt<bool> allowNonfinite("allow-nonfinite",
                             cl::desc("Warn about, rather than refuse, NaN or infinite "
                                      "weights and negative BatchNorm running variances"),
                             cl::sub(buildCommand), cl::sub(emitCommand),
                             cl::cat(kilncCategory));
cl::opt<int> stageLayers(
    "stage-layers",
    cl::desc("Linear and conv layers per compiled pipeline: a model with more (by default, "
             "more than 8) is cut into stages, compiled in parallel and run in order "
             "(0: never cut)"),
    cl::init(kiln::codegen::LoweringOptions::kStageLayers), cl::value_desc("n"),
    cl::sub(buildCommand), cl::sub(emitCommand), cl::cat(kilncCategory));
// train and --emit=mlir-train: the command line over the train section.
cl::opt<std::string> trainOptimizer("optimizer",
                                    cl::desc("sgd, adam or adamw instead of the train "
                                             "section's (another optimizer than the "
                                             "section's starts from PyTorch's defaults)"),
                                    cl::sub(emitCommand), cl::sub(trainCommand), cl::sub(buildCommand),
                                    cl::cat(kilncCategory));
cl::opt<double> trainLr("lr", cl::desc("Learning rate, > 0 (default: the train section's)"),
                        cl::init(-1), cl::sub(emitCommand), cl::sub(trainCommand), cl::sub(buildCommand),
                        cl::cat(kilncCategory));
cl::opt<double> trainMomentum("momentum", cl::desc("SGD momentum, >= 0"), cl::init(-1),
                              cl::sub(emitCommand), cl::sub(trainCommand), cl::sub(buildCommand),
                              cl::cat(kilncCategory));
cl::opt<double> trainWeightDecay("weight-decay", cl::desc("Weight decay, >= 0"), cl::init(-1),
                                 cl::sub(emitCommand), cl::sub(trainCommand), cl::sub(buildCommand),
                                 cl::cat(kilncCategory));
cl::opt<long long> trainSeed("seed",
                             cl::desc("Seed of dropout's random stream and, without --init, "
                                      "of the initial weights, >= 0 (default: the train "
                                      "section's, else 0)"),
                             cl::init(-1), cl::sub(emitCommand), cl::sub(trainCommand),
                             cl::sub(buildCommand),
                             cl::cat(kilncCategory));

// train
cl::opt<std::string> trainInput(cl::Positional, cl::Required, cl::desc("<model.kiln>"),
                                cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainInit("init",
                               cl::desc("The initial state (safetensors): every parameter "
                                        "and buffer under its state_dict key; optimizer "
                                        "state (<key>.momentum_buffer, <key>.exp_avg, "
                                        "<key>.exp_avg_sq, step) where present, else zero "
                                        "(default: PyTorch's default initialisation of each "
                                        "layer, drawn from --seed)"),
                               cl::value_desc("file"), cl::sub(trainCommand),
                               cl::cat(kilncCategory));
cl::opt<std::string> trainInputs("inputs",
                                 cl::desc("Samples (NPY float32, C order): the model's "
                                          "input shape after one or more leading "
                                          "dimensions, which are flattened into rows "
                                          "([rows, C, H, W] or [batches, batch, C, H, W])"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::cat(kilncCategory));
cl::opt<std::string> trainLabels("labels",
                                 cl::desc("Class indices (NPY int64), one per row of "
                                          "--inputs, each in [0, classes)"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::cat(kilncCategory));
cl::opt<long long> trainSteps("steps",
                              cl::desc("Training steps to run, exactly (>= 1): one batch "
                                       "each, the rows in order, passing over the data "
                                       "again from row 0 when it ends"),
                              cl::init(0), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<long long> trainBatch("batch",
                              cl::desc("Rows per step, from 1 to the number of rows; the "
                                       "last batch of a pass holds the rows left (rows mod "
                                       "batch, if not 0) and runs as a smaller batch"),
                              cl::init(0), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<bool> trainNoShuffle("no-shuffle",
                             cl::desc("Take the rows in order (required: shuffling is not "
                                      "implemented yet)"),
                             cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<int> trainThreads("threads", cl::desc("Threads (default: one per core)"),
                          cl::init(0), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<long long> trainPrintEvery("print-every",
                                   cl::desc("Print the loss every N steps, and after the "
                                            "last (0: only the summary)"),
                                   cl::init(1), cl::value_desc("N"), cl::sub(trainCommand),
                                   cl::cat(kilncCategory));
cl::opt<std::string> trainOutput("o", cl::Required,
                                 cl::desc("The checkpoint (safetensors): parameters, "
                                          "buffers, optimizer state and step, written "
                                          "once the last step is done (a file replaced "
                                          "whole, or a stream); never an input"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::cat(kilncCategory));
cl::opt<bool> debugInfo("debug-info",
                        cl::desc("Print source locations in --emit=mlir"),
                        cl::sub(emitCommand), cl::cat(kilncCategory));

cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check that the diagnostics match the source's expected-error "
             "annotations (for tests)"),
    cl::sub(*cl::AllSubCommands), cl::cat(kilncCategory));

void printVersion(llvm::raw_ostream &os) {
  os << "kilnc (Kiln) " KILN_VERSION "\n  built on LLVM/MLIR " LLVM_VERSION_STRING "\n";
}

/// `--weights=external`: weights are inputs of the built code, loaded at
/// run time (a checkpoint called "external" is spelled ./external).
bool externalWeights() { return weightsPath == "external"; }

/// The files a command reads, which no output may be: the model ("-" is
/// standard input, which may be a file too) and the weights.
std::vector<std::string> inputFiles(const std::string &model) {
  std::vector<std::string> inputs = {model == "-" ? "/dev/stdin" : model};
  if (!externalWeights())
    inputs.push_back(weightsPath);
  return inputs;
}

/// emit's -o, resolved (OutputPath.h); null after printing why not.
std::unique_ptr<kiln::OutputPath> resolveEmitOutput() {
  std::string error;
  std::unique_ptr<kiln::OutputPath> output =
      kiln::OutputPath::resolve(outputPath, inputFiles(emitInput), /*filesOnly=*/false, error);
  if (!output)
    llvm::errs() << "kilnc: error: " << error << "\n";
  return output;
}

/// Writes what `print` prints to the -o file (or stdout), whole: a file is
/// replaced only once everything is printed.
int writeOutput(llvm::function_ref<void(llvm::raw_ostream &)> print) {
  if (outputPath == "-") {
    print(llvm::outs());
    return 0;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  print(os);
  std::unique_ptr<kiln::OutputPath> output = resolveEmitOutput();
  if (!output)
    return 1;
  std::string error;
  if (failed(output->write(os.str(), error))) {
    llvm::errs() << "kilnc: error: " << error << "\n";
    return 1;
  }
  return 0;
}

/// The options of every pipeline kilnc builds, from its flags.
kiln::CompileOptions compileOptions() {
  kiln::CompileOptions options;
  options.inference.weightsPath = weightsPath;
  options.inference.externalWeights = externalWeights();
  options.inference.allowExtraKeys = allowExtraKeys;
  options.inference.allowNonfinite = allowNonfinite;
  options.inference.fold = !noFold;
  options.inference.report = report;
  options.target = targetName;
  // Given, it cuts any model with more layers than that; by default only
  // those with more than LoweringOptions::kUnstagedLayers are cut.
  options.stageLayers = stageLayers;
  if (stageLayers.getNumOccurrences())
    options.unstagedLayers = stageLayers;
  return options;
}

/// Load the model and bind its weights; reports errors.
mlir::OwningOpRef<mlir::ModuleOp> loadWithWeights(llvm::SourceMgr &sourceMgr,
                                                  mlir::MLIRContext &context) {
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return nullptr;
  if (weightsPath.empty()) {
    llvm::errs() << "kilnc: error: --weights is required for this output\n";
    return nullptr;
  }
  return module;
}

bool autodiffOptions(kiln::nn::AutodiffOptions &options);
int fail(const std::string &message);

/// `kilnc build --mode=train`: the state is loaded at run time, so there are
/// no weights to bind or fold at build time.
int runTrainBuild(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context,
                  kiln::BuildOptions &options) {
  if (weightsPath.getNumOccurrences() || noFold || report || allowExtraKeys || allowNonfinite)
    return fail("--mode=train takes no --weights, --no-fold, --report, --allow-extra-keys or "
                "--allow-nonfinite: the built program loads its state at run time");
  kiln::nn::AutodiffOptions autodiff;
  if (!autodiffOptions(autodiff))
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  options.inputs = {buildInput == "-" ? "/dev/stdin" : buildInput.getValue()};
  kiln::BuildPaths paths;
  if (failed(kiln::resolveBuildPaths(module->getLoc(), options, paths)))
    return 1;
  mlir::FailureOr<kiln::TrainCompilation> compiled =
      kiln::compileTraining(*module, compileOptions(), autodiff);
  if (failed(compiled))
    return 1;
  return failed(kiln::buildTrainOutputs(*module, *compiled, options)) ? 1 : 0;
}

int runBuild(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  if (buildMode == Mode::Train) {
    kiln::BuildOptions options;
    options.outputPath = buildOutput;
    options.kind = buildKind;
    options.cc = ccPath;
    return runTrainBuild(sourceMgr, context, options);
  }
  for (cl::Option *flag : std::initializer_list<cl::Option *>{
           &trainOptimizer, &trainLr, &trainMomentum, &trainWeightDecay, &trainSeed})
    if (flag->getNumOccurrences())
      return fail("--" + flag->ArgStr.str() + " applies to --mode=train only");
  mlir::OwningOpRef<mlir::ModuleOp> module = loadWithWeights(sourceMgr, context);
  if (!module)
    return 1;
  kiln::BuildOptions options;
  options.allowExtraKeys = allowExtraKeys;
  options.allowNonfinite = allowNonfinite;
  options.outputPath = buildOutput;
  options.kind = buildKind;
  options.cc = ccPath;
  options.inputs = inputFiles(buildInput);
  // A bad -o fails before seconds of compiling.
  kiln::BuildPaths paths;
  if (failed(kiln::resolveBuildPaths(module->getLoc(), options, paths)))
    return 1;
  mlir::FailureOr<std::vector<kiln::TargetVariant>> variants =
      kiln::compileModel(*module, compileOptions());
  if (failed(variants))
    return 1;
  return failed(kiln::buildOutputs(*module, *variants, options)) ? 1 : 0;
}

/// Prints "kilnc: error: MESSAGE" with MESSAGE's control characters escaped.
int fail(const std::string &message) {
  llvm::errs() << "kilnc: error: ";
  {
    kiln::TerminalSafeStream safe(llvm::errs());
    safe << message;
  }
  llvm::errs() << "\n";
  return 1;
}

/// The command line over the train section, checked: a bad number is an
/// error naming the flag, before anything is compiled (an unknown
/// --optimizer is nn-autodiff's to report, or runTrain's).
bool autodiffOptions(kiln::nn::AutodiffOptions &options) {
  auto number = [](double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return std::string(text);
  };
  if (trainLr.getNumOccurrences() && !(trainLr > 0 && std::isfinite(trainLr))) {
    fail("--lr must be a finite number > 0, not " + number(trainLr));
    return false;
  }
  for (cl::opt<double> *flag : {&trainMomentum, &trainWeightDecay})
    if (flag->getNumOccurrences() && !(*flag >= 0 && std::isfinite(*flag))) {
      fail("--" + flag->ArgStr.str() + " must be a number >= 0, not " + number(*flag));
      return false;
    }
  if (trainSeed.getNumOccurrences() && trainSeed < 0) {
    fail("--seed must be >= 0, not " + std::to_string(trainSeed));
    return false;
  }
  options.optimizer = trainOptimizer;
  options.lr = trainLr;
  options.momentum = trainMomentum;
  options.weightDecay = trainWeightDecay;
  options.seed = trainSeed;
  return true;
}

int runTrain(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  kiln::nn::AutodiffOptions autodiff;
  if (!autodiffOptions(autodiff))
    return 1;
  if (!trainOptimizer.empty() && trainOptimizer != "sgd" && trainOptimizer != "adam" &&
      trainOptimizer != "adamw")
    return fail("unknown optimizer '" + trainOptimizer +
                "' (--optimizer): expected sgd, adam or adamw");
  if (!trainNoShuffle)
    return fail("shuffling is not implemented yet; pass --no-shuffle");
  if (trainSteps < 1)
    return fail("--steps must be at least 1, not " + std::to_string(trainSteps));
  if (trainBatch < 1)
    return fail("--batch must be at least 1, not " + std::to_string(trainBatch));
  if (trainThreads < 0)
    return fail("--threads must be >= 0, not " + std::to_string(trainThreads));
  if (trainPrintEvery < 0)
    return fail("--print-every must be >= 0, not " + std::to_string(trainPrintEvery));
  for (auto [flag, value] : {std::pair{"--inputs", &trainInputs}, {"--labels", &trainLabels}})
    if (value->empty())
      return fail(std::string(flag) + " is required");
  if (trainInit.getNumOccurrences() && trainInit.empty())
    return fail("--init needs a file (leave it out for PyTorch's default initialisation)");
  kiln::TrainRunOptions options;
  options.initPath = trainInit;
  options.seed = trainSeed;
  options.inputsPath = trainInputs;
  options.labelsPath = trainLabels;
  options.outputPath = trainOutput;
  options.steps = trainSteps;
  options.batch = trainBatch;
  options.printEvery = trainPrintEvery;
  options.threads = trainThreads;
  options.inputFiles = {trainInput == "-" ? "/dev/stdin" : trainInput.getValue(), trainInputs,
                        trainLabels};
  if (!trainInit.empty())
    options.inputFiles.push_back(trainInit);
  // A bad -o fails before the model is compiled.
  std::string error;
  if (!kiln::OutputPath::resolve(options.outputPath, options.inputFiles, /*filesOnly=*/false,
                                 error))
    return fail(error);
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module || failed(kiln::prepareForTraining(*module, autodiff)))
    return 1;
  if (failed(kiln::runTraining(*module, options, llvm::outs(), error)))
    return error.empty() ? 1 : fail(error);
  return 0;
}

/// `kilnc emit --emit=halide-stmt --mode=train`: the statement of each
/// variant's training step, as kilnc build --mode=train compiles it.
int emitTrainStmt(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  kiln::nn::AutodiffOptions autodiff;
  if (!autodiffOptions(autodiff))
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  mlir::FailureOr<kiln::TrainCompilation> compiled =
      kiln::compileTraining(*module, compileOptions(), autodiff);
  if (failed(compiled))
    return 1;
  std::string text;
  llvm::raw_string_ostream os(text);
  for (kiln::TrainVariant &variant : compiled->variants) {
    os << "// target " << variant.target.str() << " (" << variant.target.isaName()
       << "), entry point " << variant.step.entry << "\n";
    if (failed(kiln::printHalideStmt(variant.step, os)))
      return 1;
  }
  return writeOutput([&](llvm::raw_ostream &out) { out << os.str(); });
}

int runCommand(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  if (buildCommand)
    return runBuild(sourceMgr, context);
  if (trainCommand)
    return runTrain(sourceMgr, context);
  if (checkCommand) {
    mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
    if (!module)
      return 1;
    if (listParams)
      return failed(kiln::printStateDict(*module, llvm::outs())) ? 1 : 0;
    return failed(kiln::printSummary(*module, llvm::outs())) ? 1 : 0;
  }
  // A bad -o fails before anything is compiled.
  if (outputPath != "-" && !resolveEmitOutput())
    return 1;
  if (emitStage == Stage::Ast) {
    std::unique_ptr<kiln::ast::Model> model = kiln::parseAndCheck(sourceMgr, &context);
    if (!model)
      return 1;
    return writeOutput([&](llvm::raw_ostream &os) { kiln::ast::dump(*model, os); });
  }
  if (buildMode == Mode::Train && emitStage != Stage::HalideStmt)
    return fail("--mode=train applies to --emit=halide-stmt only (--emit=mlir-train prints the "
                "training step's module)");
  if (buildMode == Mode::Train)
    return emitTrainStmt(sourceMgr, context);
  bool needsWeights = emitStage == Stage::MlirFolded || emitStage == Stage::HalideStmt ||
                      (emitStage == Stage::Dot && !weightsPath.empty());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      needsWeights ? loadWithWeights(sourceMgr, context) : kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  if (emitStage == Stage::HalideStmt) {
    mlir::FailureOr<std::vector<kiln::TargetVariant>> variants =
        kiln::compileModel(*module, compileOptions());
    if (failed(variants))
      return 1;
    std::string text;
    llvm::raw_string_ostream os(text);
    for (kiln::TargetVariant &variant : *variants)
      for (kiln::codegen::LoweredModel &entry : variant.entries) {
        os << "// target " << variant.target.str() << " (" << variant.target.isaName()
           << "), entry point " << entry.entry << "\n";
        if (failed(kiln::printHalideStmt(entry, os)))
          return 1;
      }
    return writeOutput([&](llvm::raw_ostream &out) { out << os.str(); });
  }
  if (needsWeights) {
    kiln::CompileOptions options = compileOptions();
    if (failed(kiln::prepareForInference(*module, options.inference)))
      return 1;
  }
  if (emitStage == Stage::MlirTrain) {
    kiln::nn::AutodiffOptions options;
    if (!autodiffOptions(options) || failed(kiln::prepareForTraining(*module, options)))
      return 1;
  }
  if (emitStage == Stage::Dot)
    return writeOutput([&](llvm::raw_ostream &os) { kiln::printDot(*module, os); });
  mlir::OpPrintingFlags flags;
  if (debugInfo)
    flags.enableDebugInfo();
  return writeOutput([&](llvm::raw_ostream &os) {
    module->print(os, flags);
    os << "\n";
  });
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(kilncCategory);
  cl::SetVersionPrinter(printVersion);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Kiln model compiler\n\n"
      "  kilnc check [--params] MODEL.kiln   verify and summarize a model\n"
      "  kilnc emit --emit=STAGE MODEL.kiln  print one stage of the pipeline\n"
      "  kilnc build MODEL.kiln --weights W.safetensors -o OUT [--emit=exe|obj|lib|shared]\n"
      "  kilnc build MODEL.kiln --weights=external -o OUT ...  weights loaded at run time\n"
      "  kilnc build MODEL.kiln --mode=train -o OUT [--emit=exe|obj|lib|shared]\n"
      "      the training step and eval forward ahead of time: OUT --init W.safetensors\n"
      "      --inputs x.npy --labels y.npy --steps K --batch B --no-shuffle -o C.safetensors\n"
      "  kilnc train MODEL.kiln --init W.safetensors --inputs x.npy --labels y.npy\n"
      "              --steps K --batch B --no-shuffle -o OUT.safetensors\n"
      "      exactly K steps, batches of B rows in order, wrapping around to row 0 when\n"
      "      the data ends; the last batch of each pass holds the rows left (rows mod B)\n"
      "      and runs as a smaller batch\n");
  if (!checkCommand && !emitCommand && !buildCommand && !trainCommand) {
    llvm::errs() << "kilnc: error: expected a command: check, emit, build or train "
                    "(see kilnc --help)\n";
    return 1;
  }
  const std::string &inputPath = checkCommand  ? checkInput
                                 : emitCommand ? emitInput
                                 : trainCommand ? trainInput
                                               : buildInput;

  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  // Remarks and errors point at the user's source; the op dump MLIR adds by
  // default would only repeat the IR.
  context.printOpOnDiagnostic(false);

  llvm::SourceMgr sourceMgr;
  if (!verifyDiagnostics) {
    // Diagnostics quote the user's files: control characters are escaped.
    kiln::TerminalSafeStream errors(llvm::errs());
    mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context, errors);
    if (failed(kiln::readSource(inputPath, sourceMgr, &context)))
      return 1;
    return runCommand(sourceMgr, context);
  }
  if (failed(kiln::readSource(inputPath, sourceMgr, &context))) {
    llvm::errs() << "kilnc: error: cannot read '" << inputPath << "'\n";
    return 1;
  }
  mlir::SourceMgrDiagnosticVerifierHandler handler(sourceMgr, &context);
  (void)runCommand(sourceMgr, context);
  return failed(handler.verify()) ? 1 : 0;
}

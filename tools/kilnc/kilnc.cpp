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
//   kilnc show CKPT.safetensors                (tensors with min/mean/max, metadata)
//   kilnc plot A.csv [B.csv ...] [--label NAME]... -o OUT.svg [--title T]
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Build.h"
#include "kiln/Driver/KilnPrinter.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/Plot.h"
#include "kiln/Driver/Show.h"
#include "kiln/Driver/Summary.h"
#include "kiln/Driver/TerminalSafeStream.h"
#include "kiln/Driver/Train.h"
#include "kiln/Import/Import.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"

#include <cctype>
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
                            "Train a model: epochs over its data with validation, early "
                            "stopping and checkpoints, then the test set");
cl::SubCommand evalCommand("eval",
                           "Evaluate a checkpoint on the test set: loss, accuracy and the "
                           "confusion matrix");

cl::SubCommand showCommand("show",
                           "List a checkpoint's tensors (shape, dtype, min/mean/max) and "
                           "metadata");
cl::SubCommand plotCommand("plot",
                           "Plot training metrics (CSV, one row per epoch) as an SVG of loss "
                           "and accuracy curves");

cl::OptionCategory kilncCategory("kilnc options");

cl::opt<std::string> showInput(cl::Positional, cl::Required, cl::desc("<checkpoint.safetensors>"),
                               cl::sub(showCommand), cl::cat(kilncCategory));

cl::list<std::string> plotInputs(cl::Positional, cl::OneOrMore, cl::desc("<metrics.csv>..."),
                                 cl::sub(plotCommand), cl::cat(kilncCategory));
cl::list<std::string> plotLabels("label",
                                 cl::desc("The legend's name of each CSV's run, in order "
                                          "(default: the file's stem)"),
                                 cl::value_desc("name"), cl::sub(plotCommand),
                                 cl::cat(kilncCategory));
cl::opt<std::string> plotOutput("o", cl::Required,
                                cl::desc("The SVG (a file replaced whole, or a stream); "
                                         "never an input"),
                                cl::value_desc("file"), cl::sub(plotCommand),
                                cl::cat(kilncCategory));
cl::opt<std::string> plotTitle("title", cl::desc("The plot's title (default: Training)"),
                               cl::value_desc("text"), cl::sub(plotCommand),
                               cl::cat(kilncCategory));

cl::opt<std::string> checkInput(cl::Positional, cl::Required,
                                cl::desc("<model.kiln>"), cl::sub(checkCommand),
                                cl::cat(kilncCategory));
cl::opt<bool> listParams("params",
                         cl::desc("Print the state_dict (keys, kinds, shapes) "
                                  "instead of the summary"),
                         cl::sub(checkCommand), cl::cat(kilncCategory));

enum class Stage { Ast, Mlir, MlirTrain, Dot, MlirFolded, HalideStmt, Kiln };
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
                          "(needs --weights; with --mode=train, the training step's)"),
               clEnumValN(Stage::Kiln, "kiln",
                          "the model as DSL source (an ONNX model to read, edit and "
                          "train; --weights-out writes its initializers)")),
    cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> weightsOut(
    "weights-out",
    cl::desc("With --emit=kiln: write the model's weights (an ONNX model's initializers) "
             "to this safetensors file, under the printed model's state_dict keys"),
    cl::value_desc("file"), cl::sub(emitCommand), cl::cat(kilncCategory));
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
cl::opt<std::string> deviceName(
    "device",
    cl::desc("Where the pipelines run, the friendly spelling of --target (docs/gpu.md): "
             "cuda (host-cuda-cuda_capability_75), opencl (host-opencl), cpu (host), or "
             "auto (one binary with all three, which runs on CUDA, else OpenCL, else the "
             "CPU, whichever works where it runs)"),
    cl::value_desc("cuda|opencl|cpu|auto"), cl::sub(buildCommand), cl::sub(emitCommand),
    cl::cat(kilncCategory));
cl::opt<std::string> ccPath("cc",
                            cl::desc("C compiler that compiles the generated C and links "
                                     "the output (default: cc, or the target's Debian "
                                     "cross compiler, e.g. aarch64-linux-gnu-gcc)"),
                            cl::value_desc("path"), cl::sub(buildCommand),
                            cl::sub(trainCommand), cl::sub(evalCommand),
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

// train and eval
cl::opt<std::string> trainInput(cl::Positional, cl::Required, cl::desc("<model.kiln>"),
                                cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<std::string> evalInput(cl::Positional, cl::Required, cl::desc("<model.kiln>"),
                               cl::sub(evalCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainInit("init",
                               cl::desc("The initial state (safetensors): every parameter "
                                        "and buffer under its state_dict key; optimizer "
                                        "state (<key>.momentum_buffer, <key>.exp_avg, "
                                        "<key>.exp_avg_sq, step) where present, else zero "
                                        "(default: PyTorch's default initialisation of each "
                                        "layer, drawn from --seed)"),
                               cl::value_desc("file"), cl::sub(trainCommand),
                               cl::cat(kilncCategory));
cl::opt<std::string> evalWeights("weights",
                                 cl::desc("The state to evaluate (safetensors: a checkpoint "
                                          "of kilnc train, or a PyTorch state_dict)"),
                                 cl::value_desc("file"), cl::Required, cl::sub(evalCommand),
                                 cl::cat(kilncCategory));
cl::opt<std::string> trainResume("resume",
                                 cl::desc("Continue the run that wrote this checkpoint, where "
                                          "it stopped (epoch, batch, optimizer state, early "
                                          "stopping): the result is an uninterrupted run's"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::cat(kilncCategory));
cl::opt<std::string> trainData("data",
                               cl::desc("A directory of MNIST-style IDX files (train-images-"
                                        "idx3-ubyte, train-labels-idx1-ubyte, t10k-images-"
                                        "idx3-ubyte, t10k-labels-idx1-ubyte, plain or .gz); "
                                        "default: the train section's data set "
                                        "(fashion_mnist: /usr/share/datasets/fashion-mnist)"),
                               cl::value_desc("dir"), cl::sub(trainCommand),
                               cl::sub(evalCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainInputs("inputs",
                                 cl::desc("Training samples instead of --data (NPY float32, "
                                          "transformed, C order): the model's input shape "
                                          "after one or more leading dimensions, which are "
                                          "flattened into rows"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::sub(evalCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainLabels("labels",
                                 cl::desc("Class indices (NPY int64), one per row of "
                                          "--inputs, each in [0, classes)"),
                                 cl::value_desc("file"), cl::sub(trainCommand),
                                 cl::sub(evalCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainTestInputs("test-inputs",
                                     cl::desc("Test samples (NPY), evaluated at the end"),
                                     cl::value_desc("file"), cl::sub(trainCommand),
                                     cl::cat(kilncCategory));
cl::opt<std::string> trainTestLabels("test-labels",
                                     cl::desc("Their class indices (NPY int64)"),
                                     cl::value_desc("file"), cl::sub(trainCommand),
                                     cl::cat(kilncCategory));
cl::opt<long long> trainEpochs("epochs", cl::desc("Epochs, >= 1 (default: the train section's)"),
                               cl::init(-1), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<long long> trainSteps("steps",
                              cl::desc("Run exactly this many steps (>= 1) instead of epochs, "
                                       "passing over the data again when it ends"),
                              cl::init(0), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<long long> trainBatch("batch",
                              cl::desc("Samples per step (default: the train section's); the "
                                       "last batch of an epoch holds the samples left"),
                              cl::init(-1), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<double> trainValSplit("val-split",
                              cl::desc("Share of the training data held out for validation, "
                                       "in [0, 1) (default: the train section's validation)"),
                              cl::init(-1), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<long long> trainPatience("patience",
                                 cl::desc("Early stopping: epochs without a better validation "
                                          "loss before the run stops and restores the best "
                                          "state (0: none; default: the train section's)"),
                                 cl::init(-1), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<double> trainDelta("delta",
                           cl::desc("Early stopping: the least fall of the validation loss "
                                    "that counts as better (default: the train section's)"),
                           cl::init(-1), cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<bool> trainNoShuffle("no-shuffle", cl::desc("Take the training rows in order"),
                             cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<bool> trainDropLast("drop-last",
                            cl::desc("Leave out each epoch's last, partial batch"),
                            cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<int> trainThreads("threads",
                          cl::desc("Threads of Kiln's pool (default: one per core)"),
                          cl::init(0), cl::sub(trainCommand), cl::sub(evalCommand),
                          cl::cat(kilncCategory));
cl::opt<long long> trainPrintEvery("print-every",
                                   cl::desc("With --steps: print the loss every N steps, and "
                                            "after the last (0: only the summary)"),
                                   cl::init(-1), cl::value_desc("N"), cl::sub(trainCommand),
                                   cl::cat(kilncCategory));
cl::opt<long long> trainCheckpointEvery("checkpoint-every",
                                        cl::desc("Also write the checkpoint every N steps"),
                                        cl::init(0), cl::value_desc("N"),
                                        cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainMetrics("metrics",
                                  cl::desc("Write the metrics of every epoch as CSV"),
                                  cl::value_desc("file"), cl::sub(trainCommand),
                                  cl::cat(kilncCategory));
cl::opt<std::string> trainPlot("plot", cl::desc("Write the loss and accuracy curves as SVG"),
                               cl::value_desc("file"), cl::sub(trainCommand),
                               cl::cat(kilncCategory));
cl::opt<bool> trainNoProgress("no-progress",
                              cl::desc("Plain lines, no progress bar, even on a terminal"),
                              cl::sub(trainCommand), cl::cat(kilncCategory));
cl::opt<std::string> trainOutput("o", cl::Required,
                                 cl::desc("The checkpoint (safetensors): parameters, "
                                          "buffers, optimizer state and where the run "
                                          "stands, written after every epoch (replaced "
                                          "whole) and at the end; the best one by "
                                          "validation loss goes beside it as "
                                          "STEM.best.safetensors"),
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
  if (deviceName.getNumOccurrences())
    options.target = deviceName == "auto"
                         ? kiln::codegen::deviceTarget("cuda") + "," +
                               kiln::codegen::deviceTarget("opencl") + "," +
                               kiln::codegen::deviceTarget("cpu")
                         : kiln::codegen::deviceTarget(deviceName);
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
  // An ONNX model's initializers are its weights; --weights overrides them.
  if (weightsPath.empty() && !kiln::hasAllStateBound(*module)) {
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

/// A path flag's value, or null when the flag was not given.
const char *given(const cl::opt<std::string> &flag) {
  return flag.getNumOccurrences() ? flag.getValue().c_str() : nullptr;
}

/// A C identifier from the model file's stem ("lenet_bn"; "model" for
/// stdin): the name the trainer gives the model.
std::string apiNameOf(const std::string &input) {
  std::string stem = input == "-" ? "model" : llvm::sys::path::stem(input).str();
  for (char &c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c)))
      c = '_';
  if (stem.empty() || std::isdigit(static_cast<unsigned char>(stem[0])))
    stem = "model_" + stem;
  return stem;
}

/// The model file as the trainer's outputs may not be.
const std::string &modelFile(const std::string &input) {
  static std::string path;
  path = input == "-" ? "/dev/stdin" : input;
  return path;
}

int runTrain(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  kiln::nn::AutodiffOptions autodiff;
  if (!autodiffOptions(autodiff))
    return 1;
  if (!trainOptimizer.empty() && trainOptimizer != "sgd" && trainOptimizer != "adam" &&
      trainOptimizer != "adamw")
    return fail("unknown optimizer '" + trainOptimizer +
                "' (--optimizer): expected sgd, adam or adamw");
  for (const cl::opt<std::string> *flag : {&trainInit, &trainResume, &trainData, &trainInputs,
                                           &trainLabels, &trainMetrics, &trainPlot})
    if (flag->getNumOccurrences() && flag->empty())
      return fail("--" + flag->ArgStr.str() + " needs a file" +
                  (flag == &trainInit ? " (leave it out for PyTorch's default initialisation)"
                                      : ""));
  if (trainEpochs.getNumOccurrences() && trainEpochs < 1)
    return fail("--epochs must be at least 1, not " + std::to_string(trainEpochs));
  if (trainSteps.getNumOccurrences() && trainSteps < 1)
    return fail("--steps must be at least 1, not " + std::to_string(trainSteps));
  if (trainBatch.getNumOccurrences() && trainBatch < 1)
    return fail("--batch must be at least 1, not " + std::to_string(trainBatch));
  if (trainThreads < 0)
    return fail("--threads must be >= 0, not " + std::to_string(trainThreads));
  if (trainPrintEvery.getNumOccurrences() && trainPrintEvery < 0)
    return fail("--print-every must be >= 0, not " + std::to_string(trainPrintEvery));
  kiln::TrainRunOptions options;
  kiln_train_options_t &loop = options.loop;
  loop.output = trainOutput.c_str();
  loop.init = given(trainInit);
  loop.resume = given(trainResume);
  loop.data_dir = given(trainData);
  loop.inputs = given(trainInputs);
  loop.labels = given(trainLabels);
  loop.test_inputs = given(trainTestInputs);
  loop.test_labels = given(trainTestLabels);
  loop.metrics = given(trainMetrics);
  loop.plot = given(trainPlot);
  loop.epochs = trainEpochs;
  loop.steps = trainSteps;
  loop.batch = trainBatch;
  loop.val_split = trainValSplit.getNumOccurrences() ? trainValSplit.getValue() : -1.0;
  loop.patience = trainPatience;
  loop.delta = trainDelta.getNumOccurrences() ? trainDelta.getValue() : -1.0;
  loop.shuffle = trainNoShuffle ? 0 : 1;
  loop.drop_last = trainDropLast ? 1 : 0;
  loop.progress = trainNoProgress ? 0 : -1;
  loop.print_every = trainPrintEvery.getNumOccurrences() ? trainPrintEvery.getValue() : 1LL;
  loop.checkpoint_every = trainCheckpointEvery;
  loop.threads = trainThreads;
  loop.error_prefix = "kilnc: error: ";
  const char *model[] = {modelFile(trainInput).c_str()};
  loop.input_files = model;
  loop.input_file_count = 1;
  // The step is compiled with the given hyper-parameters as its defaults;
  // they go to the trainer too, so that a resumed run takes them over the
  // checkpoint's (the run it resumes).
  std::vector<const char *> hyperNames;
  std::vector<double> hyperValues;
  for (auto [flag, name] : {std::pair{&trainLr, "lr"}, std::pair{&trainMomentum, "momentum"},
                            std::pair{&trainWeightDecay, "weight_decay"}})
    if (flag->getNumOccurrences()) {
      hyperNames.push_back(name);
      hyperValues.push_back(*flag);
    }
  loop.hyper_count = hyperNames.size();
  loop.hyper_names = hyperNames.data();
  loop.hyper_values = hyperValues.data();
  options.seed = trainSeed;
  options.cc = ccPath;
  options.apiName = apiNameOf(trainInput);
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  // The data order's seed is the run's: --seed, else the train section's.
  loop.seed = kiln::nn::trainingSeed(*module, trainSeed);
  return kiln::runTraining(*module, autodiff, options);
}

/// `kilnc eval`: the test set (or NPY rows) through the eval forward of
/// the state in --weights.
int runEval(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  kiln::nn::AutodiffOptions autodiff;
  if (trainThreads < 0)
    return fail("--threads must be >= 0, not " + std::to_string(trainThreads));
  kiln::TrainRunOptions options;
  kiln_train_options_t &loop = options.loop;
  loop.evaluate_only = 1;
  loop.confusion = 1;
  loop.init = evalWeights.c_str();
  loop.data_dir = given(trainData);
  loop.inputs = given(trainInputs);
  loop.labels = given(trainLabels);
  loop.threads = trainThreads;
  loop.error_prefix = "kilnc: error: ";
  const char *model[] = {modelFile(evalInput).c_str()};
  loop.input_files = model;
  loop.input_file_count = 1;
  options.cc = ccPath;
  options.apiName = apiNameOf(evalInput);
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  // The eval forward of a model without a train section (an ONNX import):
  // the training step it is compiled beside needs an optimizer, which never
  // runs here.
  if (!(*module)->hasAttr(kiln::kTrainConfigAttr))
    autodiff.optimizer = "adam";
  return kiln::runTraining(*module, autodiff, options);
}

/// `kilnc emit --emit=kiln [--weights-out W]`: the model as DSL source and,
/// with --weights-out, its weights; each output is written whole, and
/// neither if either cannot be.
int emitKiln(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  std::unique_ptr<kiln::OutputPath> weights;
  if (weightsOut.getNumOccurrences()) {
    std::string error;
    weights = kiln::OutputPath::resolve(weightsOut, inputFiles(emitInput), /*filesOnly=*/true,
                                        error);
    if (!weights)
      return fail(error);
    if (outputPath != "-") {
      std::unique_ptr<kiln::OutputPath> text = resolveEmitOutput();
      if (!text)
        return 1;
      if (text->realPath() == weights->realPath())
        return fail("-o and --weights-out name the same file '" + weightsOut + "'");
    }
  }
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
  std::string text;
  llvm::raw_string_ostream os(text);
  if (failed(kiln::printKilnModel(*module, os)))
    return 1;
  if (weights && failed(kiln::writeKilnWeights(*module, weights->realPath().str())))
    return 1;
  return writeOutput([&](llvm::raw_ostream &out) { out << os.str(); });
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
  if (evalCommand)
    return runEval(sourceMgr, context);
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
  if (weightsOut.getNumOccurrences() && emitStage != Stage::Kiln)
    return fail("--weights-out applies to --emit=kiln only");
  if (emitStage == Stage::Kiln)
    return emitKiln(sourceMgr, context);
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

/// kilnc show: the listing, or one line saying why not.
int runShow() {
  std::string error;
  if (failed(kiln::showCheckpoint(showInput, llvm::outs(), error))) {
    llvm::errs() << "kilnc: error: " << error << "\n";
    return 1;
  }
  return 0;
}

/// kilnc plot: the SVG, or one line saying why not.
int runPlot() {
  kiln::PlotOptions options;
  options.inputs.assign(plotInputs.begin(), plotInputs.end());
  options.labels.assign(plotLabels.begin(), plotLabels.end());
  options.output = plotOutput;
  options.title = plotTitle;
  std::string error;
  if (failed(kiln::plotMetrics(options, error))) {
    llvm::errs() << "kilnc: error: " << error << "\n";
    return 1;
  }
  return 0;
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
      "      the training step, eval forward and trainer ahead of time: OUT runs as\n"
      "      kilnc train does (OUT --help)\n"
      "  kilnc train MODEL.kiln -o CKPT.safetensors [--data DIR] [--epochs N] [--batch B]\n"
      "              [--optimizer sgd|adam|adamw] [--lr X] [--momentum X] [--weight-decay X]\n"
      "              [--val-split X] [--patience N] [--seed S] [--threads T]\n"
      "              [--resume CKPT] [--metrics M.csv] [--plot P.svg] [--no-progress]\n"
      "      epochs over the data (default: the train section's), validation, early\n"
      "      stopping, a checkpoint per epoch, then the test set; --init W.safetensors\n"
      "      starts from a state, --inputs x.npy --labels y.npy trains on arrays and\n"
      "      --steps K runs exactly K steps\n"
      "  kilnc eval MODEL.kiln --weights CKPT.safetensors [--data DIR]\n"
      "      test-set loss, accuracy and confusion matrix\n"
      "  kilnc show CKPT.safetensors         a checkpoint's tensors (shape, dtype,\n"
      "      min/mean/max, NaN and Inf counted) and metadata\n"
      "  kilnc plot A.csv [B.csv ...] [--label NAME]... -o OUT.svg [--title T]\n"
      "      training metrics (docs/metrics.md) as loss and accuracy curves, a run each\n");
  if (!checkCommand && !emitCommand && !buildCommand && !trainCommand && !evalCommand &&
      !showCommand && !plotCommand) {
    llvm::errs() << "kilnc: error: expected a command: check, emit, build, train, eval, show "
                    "or plot "
                    "(see kilnc --help)\n";
    return 1;
  }
  if (deviceName.getNumOccurrences()) {
    bool known = deviceName == "auto" || !kiln::codegen::deviceTarget(deviceName).empty();
    if (!known) {
      llvm::errs() << "kilnc: error: --device must be cuda, opencl, cpu or auto, not '"
                   << deviceName << "'\n";
      return 1;
    }
    if (targetName.getNumOccurrences()) {
      llvm::errs() << "kilnc: error: --device and --target both choose the target; give "
                      "one (--device=" << deviceName << " is --target="
                   << (deviceName == "auto" ? std::string("CUDA,OpenCL,host")
                                            : kiln::codegen::deviceTarget(deviceName))
                   << ")\n";
      return 1;
    }
  }
  // Neither reads a model: they are done before the model source is read.
  if (showCommand)
    return runShow();
  if (plotCommand)
    return runPlot();
  const std::string &inputPath = checkCommand  ? checkInput
                                 : emitCommand ? emitInput
                                 : trainCommand ? trainInput
                                 : evalCommand  ? evalInput
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
    kiln::PartOfFileDiagnosticHandler onnxHandler(&context, errors);
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

//===- kilnc.cpp - Kiln's compiler driver ---------------------------------===//
//
// Command-line parsing only: the work is in compiler/lib/Driver.
//
//   kilnc check [--params] MODEL.kiln
//   kilnc emit --emit=ast|mlir|mlir-train|dot|mlir-folded|halide-stmt [-o OUT] MODEL.kiln
//   kilnc build MODEL.kiln --weights W.safetensors -o OUT [--emit=exe|obj|lib|shared]
//   kilnc build MODEL.kiln --weights=external -o OUT ...   (weights loaded at run time)
//   kilnc build ... --target=arm-64-linux [--cc=PATH]       (cross-compiled, docs/targets.md)
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Build.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/Summary.h"
#include "kiln/Driver/TerminalSafeStream.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"

namespace cl = llvm::cl;

namespace {

cl::SubCommand checkCommand("check",
                            "Verify a model and print a summary per layer");
cl::SubCommand emitCommand("emit", "Print one stage of the pipeline");
cl::SubCommand buildCommand("build",
                            "Compile a model with its weights to an executable, "
                            "object or library");

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
                          "(needs --weights)")),
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
// --emit=mlir-train: the command line over the train section.
cl::opt<std::string> trainOptimizer("optimizer",
                                    cl::desc("sgd, adam or adamw instead of the train "
                                             "section's (--emit=mlir-train)"),
                                    cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<double> trainLr("lr", cl::desc("Learning rate (--emit=mlir-train)"), cl::init(-1),
                        cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<double> trainMomentum("momentum", cl::desc("SGD momentum (--emit=mlir-train)"),
                              cl::init(-1), cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<double> trainWeightDecay("weight-decay",
                                 cl::desc("Weight decay (--emit=mlir-train)"), cl::init(-1),
                                 cl::sub(emitCommand), cl::cat(kilncCategory));
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

int runBuild(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
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

int runCommand(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  if (buildCommand)
    return runBuild(sourceMgr, context);
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
    options.optimizer = trainOptimizer;
    options.lr = trainLr;
    options.momentum = trainMomentum;
    options.weightDecay = trainWeightDecay;
    if (failed(kiln::prepareForTraining(*module, options)))
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
      "  kilnc build MODEL.kiln --weights=external -o OUT ...  weights loaded at run time\n");
  if (!checkCommand && !emitCommand && !buildCommand) {
    llvm::errs() << "kilnc: error: expected a command: check, emit or build "
                    "(see kilnc --help)\n";
    return 1;
  }
  const std::string &inputPath =
      checkCommand ? checkInput : emitCommand ? emitInput : buildInput;

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

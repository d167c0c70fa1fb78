//===- kilnc.cpp - Kiln's compiler driver ---------------------------------===//
//
// Command-line parsing only: the work is in compiler/lib/Driver.
//
//   kilnc check [--params] MODEL.kiln
//   kilnc emit --emit=ast|mlir|dot [-o OUT] MODEL.kiln
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/Summary.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"

namespace cl = llvm::cl;

namespace {

cl::SubCommand checkCommand("check",
                            "Verify a model and print a summary per layer");
cl::SubCommand emitCommand("emit", "Print one stage of the pipeline");

cl::OptionCategory kilncCategory("kilnc options");

cl::opt<std::string> checkInput(cl::Positional, cl::Required,
                                cl::desc("<model.kiln>"), cl::sub(checkCommand),
                                cl::cat(kilncCategory));
cl::opt<bool> listParams("params",
                         cl::desc("Print the state_dict (keys, kinds, shapes) "
                                  "instead of the summary"),
                         cl::sub(checkCommand), cl::cat(kilncCategory));

enum class Stage { Ast, Mlir, Dot };
cl::opt<std::string> emitInput(cl::Positional, cl::Required,
                               cl::desc("<model.kiln>"), cl::sub(emitCommand),
                               cl::cat(kilncCategory));
cl::opt<Stage> emitStage(
    "emit", cl::desc("The stage to print"), cl::Required,
    cl::values(clEnumValN(Stage::Ast, "ast", "the syntax tree"),
               clEnumValN(Stage::Mlir, "mlir", "the nn dialect module"),
               clEnumValN(Stage::Dot, "dot", "the layer graph for Graphviz")),
    cl::sub(emitCommand), cl::cat(kilncCategory));
cl::opt<std::string> outputPath("o", cl::desc("Output file (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
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

/// Writes through `print` to the -o file, replacing it only on success.
int writeOutput(llvm::function_ref<void(llvm::raw_ostream &)> print) {
  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output =
      mlir::openOutputFile(outputPath, &error);
  if (!output) {
    llvm::errs() << "kilnc: error: " << error << "\n";
    return 1;
  }
  print(output->os());
  output->keep();
  return 0;
}

int runCommand(llvm::SourceMgr &sourceMgr, mlir::MLIRContext &context) {
  if (checkCommand) {
    mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
    if (!module)
      return 1;
    if (listParams)
      kiln::printStateDict(*module, llvm::outs());
    else
      kiln::printSummary(*module, llvm::outs());
    return 0;
  }
  if (emitStage == Stage::Ast) {
    std::unique_ptr<kiln::ast::Model> model = kiln::parseAndCheck(sourceMgr, &context);
    if (!model)
      return 1;
    return writeOutput([&](llvm::raw_ostream &os) { kiln::ast::dump(*model, os); });
  }
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);
  if (!module)
    return 1;
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
      "  kilnc emit --emit=ast|mlir|dot MODEL.kiln\n");
  if (!checkCommand && !emitCommand) {
    llvm::errs() << "kilnc: error: expected a command: check or emit "
                    "(see kilnc --help)\n";
    return 1;
  }
  const std::string &inputPath = checkCommand ? checkInput : emitInput;

  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  if (!verifyDiagnostics) {
    mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
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

//===- Driver.cpp - Kiln's pipelines, assembled in one place --------------===//
#include "kiln/Driver/Driver.h"

#include "kiln/Dialect/NN/IR/NNDialect.h"
#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/Frontend/Parser.h"
#include "kiln/Frontend/Sema.h"
#include "kiln/Import/Import.h"
#include "kiln/Import/ONNXImport.h"
#include "kiln/Dialect/NN/IR/NNOps.h"
#include "kiln/Dialect/NN/IR/Utils.h"

#include "mlir/Dialect/Arithmetic/IR/Arithmetic.h"
#include "mlir/Dialect/StandardOps/IR/Ops.h"
#include "kiln/Driver/Weights.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {

void registerKilnDialects(mlir::DialectRegistry &registry) {
  registry.insert<nn::NNDialect, mlir::StandardOpsDialect,
                  mlir::arith::ArithmeticDialect>();
}

void registerKilnPasses() { nn::registerNNPasses(); }

namespace {

/// The innermost name of a NameLoc chain and the file position under it.
bool partOfFile(mlir::Location loc, std::string &name, mlir::FileLineColLoc &file) {
  while (auto named = loc.dyn_cast<mlir::NameLoc>()) {
    name = named.getName().str();
    loc = named.getChildLoc();
  }
  file = loc.dyn_cast<mlir::FileLineColLoc>();
  if (!file || file.getLine() != 0)
    return false;
  // The whole of an ONNX model: "model.onnx: error: ...".
  return !name.empty() || isONNXModelPath(file.getFilename().getValue());
}

const char *severity(mlir::DiagnosticSeverity kind) {
  switch (kind) {
  case mlir::DiagnosticSeverity::Error: return "error";
  case mlir::DiagnosticSeverity::Warning: return "warning";
  case mlir::DiagnosticSeverity::Note: return "note";
  case mlir::DiagnosticSeverity::Remark: return "remark";
  }
  return "error";
}

} // namespace

PartOfFileDiagnosticHandler::PartOfFileDiagnosticHandler(mlir::MLIRContext *context,
                                                         llvm::raw_ostream &os)
    : mlir::ScopedDiagnosticHandler(context) {
  setHandler([&os](mlir::Diagnostic &diag) -> mlir::LogicalResult {
    std::string name;
    mlir::FileLineColLoc file;
    if (!partOfFile(diag.getLocation(), name, file))
      return mlir::failure();
    auto print = [&](mlir::Diagnostic &d) {
      std::string noteName = name;
      mlir::FileLineColLoc noteFile = file;
      if (!partOfFile(d.getLocation(), noteName, noteFile))
        noteName = name;
      os << noteFile.getFilename().getValue() << ": " << (noteName.empty() ? "" : noteName + ": ")
         << severity(d.getSeverity()) << ": " << d.str() << "\n";
    };
    print(diag);
    for (mlir::Diagnostic &note : diag.getNotes())
      print(note);
    os.flush();
    return mlir::success();
  });
}

namespace {

/// What a file that is not a regular file is, for messages.
const char *fileKind(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

/// Reads `fd` to its end, but never more than `limit` + 1 bytes.
bool readBounded(int fd, uint64_t limit, std::string &out, std::string &error) {
  char chunk[1 << 16];
  while (out.size() <= limit) {
    ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      error = std::strerror(errno);
      return false;
    }
    if (got == 0)
      return true;
    out.append(chunk, static_cast<size_t>(got));
  }
  return true;
}

} // namespace

bool hasAllStateBound(mlir::ModuleOp module) {
  bool bound = true;
  module.walk([&](mlir::Operation *op) {
    if (mlir::isa<nn::ParamOp, nn::BufferOp>(op)) {
      bound &= static_cast<bool>(nn::getBoundValue(op->getResult(0)));
    }
  });
  return bound;
}

mlir::LogicalResult readSource(llvm::StringRef path, llvm::SourceMgr &sourceMgr,
                               mlir::MLIRContext *context) {
  auto location = mlir::FileLineColLoc::get(context, path, 0, 0);
  // A model is a regular file (or stdin, "-"). Anything else is refused
  // before reading: /dev/zero or /dev/urandom would be read until memory
  // runs out, and a FIFO without a writer would block forever (it is
  // opened non-blocking, then refused). Reading stops at the limit, so a
  // file that grows while it is read is refused too.
  std::string text, error;
  bool isStdin = path == "-";
  int fd = isStdin ? STDIN_FILENO : ::open(path.str().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return mlir::emitError(location) << "cannot read '" << path << "': " << std::strerror(errno);
  auto closeFile = llvm::make_scope_exit([&] {
    if (!isStdin)
      ::close(fd);
  });
  struct stat info;
  if (!isStdin) {
    if (::fstat(fd, &info) != 0)
      return mlir::emitError(location) << "cannot read '" << path << "': " << std::strerror(errno);
    if (!S_ISREG(info.st_mode))
      return mlir::emitError(location) << "cannot read '" << path << "': it is "
                                       << fileKind(info.st_mode) << ", not a model file";
    if (static_cast<uint64_t>(info.st_size) > kMaxSourceBytes)
      return mlir::emitError(location) << "'" << path << "' is " << info.st_size
                                       << " bytes; model files are limited to " << kMaxSourceBytes
                                       << " bytes";
  }
  if (!readBounded(fd, kMaxSourceBytes, text, error))
    return mlir::emitError(location) << "cannot read '" << path << "': " << error;
  if (text.size() > kMaxSourceBytes)
    return mlir::emitError(location) << "'" << path << "' is more than " << kMaxSourceBytes
                                     << " bytes; model files are limited to " << kMaxSourceBytes
                                     << " bytes";
  // Keep the name the user gave, so diagnostics say what they typed.
  auto named = llvm::MemoryBuffer::getMemBufferCopy(text, path);
  sourceMgr.AddNewSourceBuffer(std::move(named), llvm::SMLoc());
  return mlir::success();
}

std::unique_ptr<ast::Model> parseAndCheck(llvm::SourceMgr &sourceMgr,
                                          mlir::MLIRContext *context) {
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  FrontendDiagnostics diags(context, buffer->getBufferIdentifier());
  std::unique_ptr<ast::Model> model = parseModel(buffer->getBuffer(), diags);
  if (!model || failed(checkModel(*model, diags)))
    return nullptr;
  return model;
}

mlir::OwningOpRef<mlir::ModuleOp> loadModel(llvm::SourceMgr &sourceMgr,
                                            mlir::MLIRContext *context) {
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (isONNXModelPath(buffer->getBufferIdentifier())) {
    module = importONNXModel(buffer->getBuffer(), buffer->getBufferIdentifier(), context);
  } else {
    std::unique_ptr<ast::Model> model = parseAndCheck(sourceMgr, context);
    if (!model)
      return nullptr;
    FrontendDiagnostics diags(context, buffer->getBufferIdentifier());
    module = importModel(*model, diags);
  }
  if (!module)
    return nullptr;
  // The importer checks every shape itself; a verifier failure here is a
  // bug in Kiln, reported as such rather than passed on.
  if (failed(mlir::verify(*module))) {
    mlir::emitError(module->getLoc())
        << "internal error: the imported module does not verify";
    return nullptr;
  }
  return module;
}

mlir::LogicalResult prepareForInference(mlir::ModuleOp module,
                                        const InferenceOptions &options) {
  // Loading weights at run time needs a weight: Halide cannot build a load
  // pipeline with no outputs (an internal error in bounds inference).
  bool hasState = false;
  module.walk([&](mlir::Operation *op) { hasState |= mlir::isa<nn::ParamOp, nn::BufferOp>(op); });
  if (options.externalWeights && !hasState)
    return mlir::emitError(module.getLoc())
           << "the model has no weights or buffers, so there is nothing to load at run time: "
              "build it without --weights=external";
  // Weights loaded at run time replace any the model carries (an ONNX
  // import's initializers): a value left bound would be compiled in, and the
  // file loaded at run time silently ignored.
  if (options.externalWeights)
    module.walk([&](mlir::Operation *op) {
      if (mlir::isa<nn::ParamOp, nn::BufferOp>(op))
        op->removeAttr("value");
    });
  if (!options.externalWeights && !(options.weightsPath.empty() && hasAllStateBound(module)) &&
      failed(bindWeights(module, options.weightsPath, options.allowExtraKeys,
                         options.allowNonfinite)))
    return mlir::failure();
  if (!options.fold)
    return mlir::success();
  mlir::PassManager pm(module.getContext());
  std::unique_ptr<mlir::Pass> fold = nn::createFoldBatchNormPass();
  if (options.report && failed(fold->initializeOptions("report=true")))
    return mlir::emitError(module.getLoc()) << "internal error: bad pass option";
  pm.addNestedPass<mlir::FuncOp>(std::move(fold));
  pm.addNestedPass<mlir::FuncOp>(nn::createFuseActivationsPass());
  return pm.run(module);
}

mlir::LogicalResult prepareForTraining(mlir::ModuleOp module,
                                       const nn::AutodiffOptions &options) {
  mlir::PassManager pm(module.getContext());
  pm.addPass(nn::createAutodiffPass(options));
  return pm.run(module);
}

} // namespace kiln

//===- FrontendFuzzer.cpp - libFuzzer target for kilnc's front half -------===//
//
// Runs the bytes of each input through what `kilnc check` runs before it
// prints anything: lex, parse, Sema, import to the nn dialect, verify
// (kiln::loadModel). Besides what the sanitizers catch (ASan, UBSan, LSan,
// and libFuzzer's -timeout / -rss_limit_mb), it aborts on four properties:
//
//   1. loadModel fails  => it reported at least one error (errors as values:
//      a failure the user never hears about is a bug);
//   2. loadModel succeeds => it reported no error;
//   3. no diagnostic says "internal error" (Driver.cpp's name for a module
//      that the importer built but that does not verify);
//   4. a module that loads round-trips: printed in custom form with
//      locations, parsed back, it verifies and prints identically; printed in
//      generic form and parsed back, it prints as the custom form did;
//   5. `kilnc check`'s table and `--params` of a module that loads (checked
//      counts) either print or fail with an error, never both, never silently;
//   6. every diagnostic, as kilnc prints it (TerminalSafeStream), holds no
//      control character but newline and tab.
//
// On an abort the swallowed diagnostics of that input are printed, so the
// report says what the compiler thought of it.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Driver.h"
#include "kiln/Driver/Summary.h"
#include "kiln/Driver/TerminalSafeStream.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

/// What the diagnostics of one input amounted to. Messages are kept (the
/// first few) only to explain an abort; nothing is printed otherwise.
struct DiagnosticTally {
  static constexpr size_t kKeptMessages = 32;

  unsigned errors = 0;
  unsigned total = 0;
  bool internalError = false;
  bool controlCharacter = false;
  std::vector<std::string> messages;

  void record(mlir::Diagnostic &diag) {
    ++total;
    if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
      ++errors;
    std::string text;
    llvm::raw_string_ostream os(text);
    os << diag.getLocation() << ": " << diag;
    for (mlir::Diagnostic &note : diag.getNotes())
      os << "\n  note: " << note.getLocation() << ": " << note;
    os.flush();
    if (llvm::StringRef(text).contains("internal error"))
      internalError = true;
    // What the terminal would get: C0 controls but \n and \t, DEL, and C1
    // controls (as bytes or as UTF-8's C2 80-9F) must all be escaped.
    std::string shown = kiln::escapeControlCharacters(text);
    for (size_t i = 0; i < shown.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(shown[i]);
      bool c1 = c == 0xC2 && i + 1 < shown.size() &&
                static_cast<unsigned char>(shown[i + 1]) >= 0x80 &&
                static_cast<unsigned char>(shown[i + 1]) <= 0x9F;
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F || c1)
        controlCharacter = true;
    }
    if (messages.size() < kKeptMessages)
      messages.push_back(std::move(text));
  }
};

[[noreturn]] void fail(const char *property, const DiagnosticTally &tally,
                       const std::string &detail = "") {
  llvm::errs() << "kiln-frontend-fuzzer: property violated: " << property
               << "\n";
  if (!detail.empty())
    llvm::errs() << detail << "\n";
  llvm::errs() << "diagnostics (" << tally.total << ", " << tally.errors
               << " errors):\n";
  for (const std::string &message : tally.messages)
    llvm::errs() << "  " << message << "\n";
  llvm::errs().flush();
  std::abort();
}

std::string print(mlir::ModuleOp module, mlir::OpPrintingFlags flags) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os, flags);
  os.flush();
  return text;
}

std::string customWithLocations(mlir::ModuleOp module) {
  mlir::OpPrintingFlags flags;
  flags.enableDebugInfo();
  return print(module, flags);
}

std::string genericWithLocations(mlir::ModuleOp module) {
  mlir::OpPrintingFlags flags;
  flags.enableDebugInfo();
  flags.printGenericOpForm();
  return print(module, flags);
}

/// Parses `text` back and returns its custom form with locations; on any
/// failure aborts naming `property`.
std::string reparse(llvm::StringRef text, mlir::MLIRContext *context,
                    DiagnosticTally &tally, const char *property) {
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, context);
  if (!module)
    fail(property, tally, "does not parse back:\n" + text.str());
  if (failed(mlir::verify(*module)))
    fail(property, tally, "parses back but does not verify:\n" + text.str());
  return customWithLocations(*module);
}

void checkRoundTrip(mlir::ModuleOp module, mlir::MLIRContext *context,
                    DiagnosticTally &tally) {
  std::string custom = customWithLocations(module);
  std::string again = reparse(custom, context, tally, "custom form round trip");
  if (again != custom)
    fail("custom form round trip", tally,
         "printed:\n" + custom + "\nreprinted:\n" + again);

  std::string generic = genericWithLocations(module);
  std::string fromGeneric =
      reparse(generic, context, tally, "generic form round trip");
  if (fromGeneric != custom)
    fail("generic form round trip", tally,
         "custom:\n" + custom + "\ngeneric:\n" + generic +
             "\ngeneric parsed back:\n" + fromGeneric);
}

/// `kilnc check` and `kilnc check --params` (property 5): a failure has an
/// error, a success none.
void checkSummaries(mlir::ModuleOp module, DiagnosticTally &tally) {
  for (bool params : {false, true}) {
    unsigned before = tally.errors;
    std::string text;
    llvm::raw_string_ostream os(text);
    bool failed = params ? mlir::failed(kiln::printStateDict(module, os))
                         : mlir::failed(kiln::printSummary(module, os));
    if (failed && tally.errors == before)
      fail("a failed summary reports an error", tally);
    if (!failed && tally.errors != before)
      fail("a printed summary reports no error", tally);
  }
}

/// Kiln's dialects, registered once.
const mlir::DialectRegistry &kilnRegistry() {
  static const mlir::DialectRegistry *registry = [] {
    auto *r = new mlir::DialectRegistry();
    kiln::registerKilnDialects(*r);
    return r;
  }();
  return *registry;
}

/// A context is shared by this many inputs, then replaced.
/// Why shared: building one (loading nn, std and arith) takes ~0.5 ms under
/// ASan, more than most mutated inputs take to be rejected (CONTEXT_PER_INPUT
/// below gives 1,800 exec/s, sharing 3,800: 25 s runs from the models/ seeds
/// on a 2-core machine).
/// Why replaced: what a context holds across inputs is only what its uniquer
/// interned (attributes, types, locations) and the dialects, which are
/// always the same three; interning changes no result, but it keeps every
/// location and string an input ever made, so memory would grow with the run.
/// Each input gets its own diagnostic handler, removed when it ends.
/// Build with -DKILN_FUZZ_CONTEXT_PER_INPUT to give every input a fresh one.
#ifdef KILN_FUZZ_CONTEXT_PER_INPUT
constexpr unsigned kInputsPerContext = 1;
#else
constexpr unsigned kInputsPerContext = 1000;
#endif

mlir::MLIRContext &contextForNextInput() {
  static std::unique_ptr<mlir::MLIRContext> context;
  static unsigned uses = 0;
  if (!context || uses == kInputsPerContext) {
    context.reset(); // the old one goes first: peak memory stays one context
    // Threads would only add nondeterminism: the front half runs on one.
    context = std::make_unique<mlir::MLIRContext>(
        kilnRegistry(), mlir::MLIRContext::Threading::DISABLED);
    context->loadAllAvailableDialects();
    uses = 0;
  }
  ++uses;
  return *context;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Same limit as kiln::readSource, so the fuzzer sees only what kilnc would.
  if (size > kiln::kMaxSourceBytes)
    return 0;

  mlir::MLIRContext &context = contextForNextInput();
  DiagnosticTally tally;
  mlir::ScopedDiagnosticHandler swallow(&context, [&](mlir::Diagnostic &diag) {
    tally.record(diag);
    return mlir::success();
  });

  // No copy: the buffer ends where libFuzzer's allocation ends (no NUL
  // after it), so ASan sees any read past the last byte.
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBuffer(
          llvm::StringRef(reinterpret_cast<const char *>(data), size),
          "fuzz.kiln", /*RequiresNullTerminator=*/false),
      llvm::SMLoc());

  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::loadModel(sourceMgr, &context);

  if (tally.internalError)
    fail("no internal errors", tally);
  if (tally.controlCharacter)
    fail("diagnostics as printed hold no control characters", tally);
  if (!module) {
    if (tally.errors == 0)
      fail("a failure reports an error", tally);
    return 0;
  }
  if (tally.errors != 0)
    fail("a success reports no error", tally);
  checkRoundTrip(*module, &context, tally);
  checkSummaries(*module, tally);
  if (tally.controlCharacter)
    fail("diagnostics as printed hold no control characters", tally);
  return 0;
}

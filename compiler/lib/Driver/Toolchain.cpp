//===- Toolchain.cpp - the tools and runtime kilnc links a target with ----===//
//
// One place answers "which C compiler, linker and archiver build for this
// target" and "where is Kiln's runtime for it" (see Toolchain.h for the
// layout). Everything is resolved before Halide compiles anything, so a
// missing cross compiler fails in milliseconds with the package to install.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Toolchain.h"

#include "kiln/Driver/WorkDirectory.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <cerrno>
#include <sys/wait.h>

using namespace mlir;

namespace kiln {

namespace {

/// The machine kilnc was built for (CMAKE_LIBRARY_ARCHITECTURE): its own
/// tools serve it, any other triple is a cross build.
constexpr const char *kHostTriple = KILN_HOST_TRIPLE;

/// Debian names a triple's cross packages with dashes for underscores:
/// gcc-aarch64-linux-gnu, binutils-x86-64-linux-gnu.
std::string debianPackage(StringRef base, StringRef triple) {
  std::string name = (base + "-" + triple).str();
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

/// A program named on the command line (a path) or found on PATH; empty if
/// neither.
std::string findProgram(StringRef name) {
  if (name.contains('/'))
    return llvm::sys::fs::can_execute(name) ? name.str() : std::string();
  llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName(name);
  return found ? *found : std::string();
}

/// PREFIX of PREFIX/bin/kilnc, from the running executable (symbolic links
/// resolved, so a link to an installed kilnc still finds its prefix).
std::string installPrefix() {
  static int anchor;
  std::string exe = llvm::sys::fs::getMainExecutable("kilnc", &anchor);
  SmallString<256> real;
  if (!exe.empty() && !llvm::sys::fs::real_path(exe, real))
    exe = real.str().str();
  return llvm::sys::path::parent_path(llvm::sys::path::parent_path(exe)).str();
}

std::string join(StringRef first, std::initializer_list<StringRef> rest) {
  SmallString<256> path(first);
  for (StringRef part : rest)
    llvm::sys::path::append(path, part);
  return path.str().str();
}

LogicalResult findRuntime(Location loc, StringRef triple, bool cross, RuntimePaths &out) {
  out.prefix = installPrefix();
  out.includeDir = join(out.prefix, {"include"});
  out.libraryDir = join(out.prefix, {"lib", "kiln", triple});
  out.modelLibrary = join(out.libraryDir, {"libkiln_runtime_model.a"});
  out.runnerLibrary = join(out.libraryDir, {"libkiln_runtime.a"});
  std::string where = "kilnc looks for its runtime relative to itself: PREFIX/bin/kilnc "
                      "reads PREFIX/include and PREFIX/lib/kiln, here PREFIX is '" +
                      out.prefix + "'";
  std::string header = join(out.includeDir, {"kiln", "runtime", "model.h"});
  if (!llvm::sys::fs::exists(header))
    return emitError(loc) << "Kiln's runtime headers are missing: no '" << header << "' ("
                          << where << ")";
  for (const std::string &file : {out.modelLibrary, out.runnerLibrary}) {
    if (llvm::sys::fs::exists(file))
      continue;
    if (cross)
      return emitError(loc) << "this Kiln has no runtime for " << triple << ": no '" << file
                            << "' (Kiln's build makes it where it finds the cross compilers "
                            << debianPackage("gcc", triple) << " and "
                            << debianPackage("g++", triple)
                            << " and the target's zlib, see docs/targets.md; " << where << ")";
    return emitError(loc) << "Kiln's runtime library is missing: no '" << file << "' ("
                          << where << ")";
  }
  return success();
}

/// The line of a tool's output that says what went wrong: the first that
/// mentions an error (other than collect2's "ld returned 1 exit status"),
/// else the first that is not only context ("In function 'f':").
std::string firstErrorLine(StringRef output) {
  SmallVector<StringRef> lines;
  output.split(lines, '\n', -1, /*KeepEmpty=*/false);
  auto isContext = [](StringRef line) {
    return line.startswith("collect2:") || line.endswith(":") ||
           line.startswith("In file included from") || line.trim().startswith("from ");
  };
  for (StringRef line : lines)
    if (line.contains_insensitive("error") && !line.startswith("collect2:"))
      return line.trim().str();
  for (StringRef line : lines)
    if (!isContext(line) && !line.trim().empty())
      return line.trim().str();
  return lines.empty() ? std::string("no output") : lines.front().trim().str();
}

} // namespace

std::vector<std::string> Toolchain::systemLibraries() const {
  return {"-lpthread", "-ldl", "-lm"};
}

std::vector<std::string> Toolchain::executableLibraries() const {
  return {"-lz", "-lstdc++", "-lpthread", "-ldl", "-lm"};
}

bool tripleForTarget(const Halide::Target &target, std::string &triple, std::string &error) {
  using T = Halide::Target;
  if (target.os != T::Linux) {
    error = "kilnc build links outputs for Linux only, not '" + target.to_string() + "'";
    return false;
  }
  if (target.arch == T::X86 && target.bits == 64)
    triple = "x86_64-linux-gnu";
  else if (target.arch == T::ARM && target.bits == 64)
    triple = "aarch64-linux-gnu";
  else {
    error = "kilnc build links outputs for 64-bit x86 and ARM, not '" + target.to_string() + "'";
    return false;
  }
  return true;
}

FailureOr<Toolchain> resolveToolchain(Location loc, ArrayRef<Halide::Target> targets,
                                      StringRef cc) {
  if (targets.empty())
    return LogicalResult(emitError(loc) << "no target to link for");
  Toolchain toolchain;
  std::string error;
  const Halide::Target &target = targets.front();
  if (!tripleForTarget(target, toolchain.triple, error))
    return LogicalResult(emitError(loc) << error);
  // One program holds every variant: they must share a machine (and tools).
  for (const Halide::Target &other : targets.drop_front()) {
    std::string triple;
    if (!tripleForTarget(other, triple, error))
      return LogicalResult(emitError(loc) << error);
    if (triple != toolchain.triple)
      return LogicalResult(emitError(loc)
                           << "the targets of one build must run on one machine: '"
                           << target.to_string() << "' is " << toolchain.triple << ", '"
                           << other.to_string() << "' is " << triple);
  }
  toolchain.cross = toolchain.triple != kHostTriple;
  std::string prefix = toolchain.cross ? toolchain.triple + "-" : "";
  std::string targetName = target.to_string();

  if (!cc.empty()) {
    toolchain.cc = findProgram(cc);
    if (toolchain.cc.empty())
      return LogicalResult(emitError(loc) << "--cc: cannot find an executable '" << cc << "'");
  } else {
    std::string name = toolchain.cross ? prefix + "gcc" : "cc";
    toolchain.cc = findProgram(name);
    if (toolchain.cc.empty())
      return LogicalResult(emitError(loc)
                           << "cannot find the C compiler '" << name << "' for target "
                           << targetName << " on PATH (Debian package "
                           << (toolchain.cross ? debianPackage("gcc", toolchain.triple)
                                               : std::string("gcc"))
                           << "), or name one with --cc=PATH");
  }
  for (auto [tool, out] : {std::pair<const char *, std::string *>{"ld", &toolchain.ld},
                           {"ar", &toolchain.ar},
                           {"objcopy", &toolchain.objcopy}}) {
    std::string name = prefix + tool;
    *out = findProgram(name);
    if (out->empty())
      return LogicalResult(emitError(loc)
                           << "cannot find '" << name << "' for target " << targetName
                           << " on PATH (Debian package "
                           << (toolchain.cross ? debianPackage("binutils", toolchain.triple)
                                               : std::string("binutils"))
                           << ")");
  }
  if (failed(findRuntime(loc, toolchain.triple, toolchain.cross, toolchain.runtime)))
    return failure();
  return toolchain;
}

namespace {

/// ExecuteAndWait, with the child known to the work directory's signal
/// handler while it runs (startingTool, toolStarted, toolEnded). It is
/// waited for without being reaped first (WNOWAIT), and forgotten before it is reaped: a pid the
/// handler may still kill is never one the system has handed out again.
int runAndWait(StringRef program, ArrayRef<StringRef> argv,
               ArrayRef<Optional<StringRef>> redirects, std::string &message) {
  bool executionFailed = false;
  startingTool();
  llvm::sys::ProcessInfo child = llvm::sys::ExecuteNoWait(program, argv, llvm::None, redirects,
                                                          0, &message, &executionFailed);
  toolStarted(executionFailed ? 0 : child.Pid);
  if (executionFailed) {
    toolEnded();
    return -1;
  }
  siginfo_t info;
  while (::waitid(P_PID, child.Pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  toolEnded();
  return llvm::sys::Wait(child, 0, /*WaitUntilTerminates=*/true, &message).ReturnCode;
}

} // namespace

LogicalResult runTool(Location loc, StringRef program, ArrayRef<std::string> args,
                      StringRef logPath) {
  std::vector<StringRef> argv = {program};
  for (const std::string &arg : args)
    argv.push_back(arg);
  // stdin as kilnc's; stdout and stderr both into the log.
  Optional<StringRef> redirects[] = {llvm::None, logPath, logPath};
  std::string message;
  int status = runAndWait(program, argv, redirects, message);
  std::string output;
  if (auto buffer = llvm::MemoryBuffer::getFile(logPath))
    output = (*buffer)->getBuffer().str();
  llvm::sys::fs::remove(logPath);
  StringRef tool = llvm::sys::path::filename(program);
  if (status == 0) {
    llvm::errs() << output;
    return success();
  }
  if (status < 0)
    return emitError(loc) << "'" << tool << "' could not run or crashed: " << message;
  return emitError(loc) << "'" << tool << "' failed (exit " << status
                        << "): " << firstErrorLine(output);
}

} // namespace kiln

//===- WorkDirectory.h - a build's temporary directory ----------*- C++ -*-===//
//
// `kilnc build` makes its intermediate files (Halide's objects, the
// generated C, the tools' outputs) in PARENT/.kiln-build-XXXXXX beside the
// product. The directory goes when the build ends, however it ends: when the
// WorkDirectory is destroyed, and when SIGINT, SIGTERM or SIGHUP ends kilnc
// first. The signal handler stops the tool the build waits for (runTool),
// removes the directory and what is in it, then lets the signal end the
// process as it would have (through the handler installed before, LLVM's,
// which re-raises it), so the exit status still says which signal it was.
// A signal that was ignored when kilnc started (nohup, a shell's background
// job) stays ignored. The handler covers one work directory at a time.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_WORKDIRECTORY_H
#define KILN_DRIVER_WORKDIRECTORY_H

#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>
#include <sys/types.h>

namespace kiln {

class WorkDirectory {
public:
  /// Creates a new directory in `parent`; null, with `error` set, if it
  /// cannot.
  static std::unique_ptr<WorkDirectory> create(llvm::StringRef parent, std::string &error);
  ~WorkDirectory();
  WorkDirectory(const WorkDirectory &) = delete;
  WorkDirectory &operator=(const WorkDirectory &) = delete;

  const std::string &path() const { return path_; }
  /// The path of `name` in it.
  std::string file(llvm::StringRef name) const;

private:
  explicit WorkDirectory(std::string path, bool guarded)
      : path_(std::move(path)), guarded_(guarded) {}
  std::string path_;
  bool guarded_; // the signal handler covers it
};

/// The child process a build waits for, which the signal handler stops
/// (SIGTERM, then SIGKILL after 2 s) and reaps before it removes the work
/// directory, so that the tool writes nothing more there. Between
/// startingTool() and toolStarted() the child may exist before its pid is
/// known here (a loaded machine may run it first), so a signal then is held
/// and acted on by toolStarted, with the pid known. toolEnded() forgets it.
void startingTool();
/// `pid` is 0 when the tool could not start.
void toolStarted(pid_t pid);
void toolEnded();

} // namespace kiln

#endif // KILN_DRIVER_WORKDIRECTORY_H

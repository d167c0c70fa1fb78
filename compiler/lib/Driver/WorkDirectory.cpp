//===- WorkDirectory.cpp - a build's temporary directory ------------------===//
//
// The signal handler may run at any point of the build, on any thread, so
// it uses only async-signal-safe calls (kill, waitpid, nanosleep, unlinkat,
// rmdir, sigaction, raise; getdents64 through syscall, as readdir is not
// safe) on state prepared before it can run: the directory's path in a
// static buffer and an open descriptor of it. Installing and removing the
// handler happens with the three signals blocked, so the handler never sees
// half-made state.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/WorkDirectory.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln {

namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kSignalCount = sizeof kSignals / sizeof kSignals[0];

/// Which signals kilnc started with ignored. Recorded by a static
/// initializer, before main: LLVM's InitLLVM installs handlers for all three
/// over whatever it finds, so by the time a build runs the inherited
/// SIG_IGN (nohup, a background job of a non-interactive shell) is gone.
struct StartDispositions {
  bool ignored[kSignalCount] = {};
  StartDispositions() {
    for (int i = 0; i < kSignalCount; ++i) {
      struct sigaction action;
      ignored[i] = ::sigaction(kSignals[i], nullptr, &action) == 0 &&
                   action.sa_handler == SIG_IGN;
    }
  }
};
const StartDispositions startDispositions;

// What the handler reads.
struct sigaction previous[kSignalCount];
bool installed[kSignalCount];
char directoryPath[PATH_MAX];
std::atomic<int> directoryFd{-1};
// The tool being waited for: a pid, 0 (none), kStarting or kHeld.
constexpr pid_t kStarting = -1; // being started: its pid is not known yet
constexpr pid_t kHeld = -2;     // as kStarting, and a signal (heldSignal) came
std::atomic<pid_t> runningTool{0};
std::atomic<int> heldSignal{0};
// One work directory at a time is guarded; another one made meanwhile (two
// builds in one process) is only removed when it is destroyed.
std::atomic<bool> guarding{false};

/// Blocks the three signals on this thread while alive.
class SignalsBlocked {
public:
  SignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : kSignals)
      sigaddset(&set, signal);
    pthread_sigmask(SIG_BLOCK, &set, &saved_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

private:
  sigset_t saved_;
};

void pause10ms() {
  struct timespec delay = {0, 10 * 1000 * 1000};
  nanosleep(&delay, nullptr);
}

/// Stops and reaps the tool: SIGTERM lets a compiler driver remove its own
/// temporary files; SIGKILL follows if it has not exited within 2 s.
void stopTool(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    pid_t done = ::waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR))
      return;
    pause10ms();
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

/// Removes everything in the directory open as `fd` (files, and empty
/// directories: nothing in a build makes deeper ones). Each pass reads the
/// directory from its start, unlinking as it reads, until a pass finds
/// nothing to remove, since removing entries while reading may skip some.
void removeContents(int fd) {
  alignas(struct dirent64) char buffer[4096];
  for (int pass = 0; pass < 16; ++pass) {
    if (::lseek(fd, 0, SEEK_SET) < 0)
      return;
    bool removed = false;
    long got;
    while ((got = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer)) > 0) {
      for (long offset = 0; offset < got;) {
        auto *entry = reinterpret_cast<struct dirent64 *>(buffer + offset);
        offset += entry->d_reclen;
        const char *name = entry->d_name;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0)
          continue;
        if (::unlinkat(fd, name, 0) == 0 || ::unlinkat(fd, name, AT_REMOVEDIR) == 0)
          removed = true;
      }
    }
    if (!removed)
      return;
  }
}

extern "C" void removeOnSignal(int signal) {
  int savedErrno = errno;
  pid_t tool = runningTool.load();
  while (tool == kStarting || tool == kHeld) {
    // toolStarted acts on the signal once the tool's pid is known.
    heldSignal = signal;
    if (runningTool.compare_exchange_weak(tool, kHeld)) {
      errno = savedErrno;
      return;
    }
  }
  tool = runningTool.exchange(0);
  if (tool > 0)
    stopTool(tool);
  int fd = directoryFd.exchange(-1);
  if (fd >= 0) {
    removeContents(fd);
    ::close(fd);
    ::rmdir(directoryPath);
  }
  // End the process as the signal would have: the handler before ours
  // (LLVM's removes the files registered with it and re-raises the signal
  // with the default action), or the default action itself. The signal is
  // blocked while this handler runs, so it arrives once it returns.
  for (int i = 0; i < kSignalCount; ++i)
    if (kSignals[i] == signal)
      ::sigaction(signal, &previous[i], nullptr);
  errno = savedErrno;
  ::raise(signal);
}

void installHandlers() {
  struct sigaction action = {};
  action.sa_handler = removeOnSignal;
  sigemptyset(&action.sa_mask);
  for (int signal : kSignals)
    sigaddset(&action.sa_mask, signal);
  for (int i = 0; i < kSignalCount; ++i)
    installed[i] = !startDispositions.ignored[i] &&
                   ::sigaction(kSignals[i], &action, &previous[i]) == 0;
}

/// Puts back the handlers ours replaced, where ours is still the one
/// installed (a handler installed after ours is left alone).
void removeHandlers() {
  for (int i = 0; i < kSignalCount; ++i) {
    struct sigaction current;
    if (installed[i] && ::sigaction(kSignals[i], nullptr, &current) == 0 &&
        current.sa_handler == removeOnSignal)
      ::sigaction(kSignals[i], &previous[i], nullptr);
    installed[i] = false;
  }
}

} // namespace

std::unique_ptr<WorkDirectory> WorkDirectory::create(llvm::StringRef parent, std::string &error) {
  llvm::SmallString<128> model(parent);
  llvm::sys::path::append(model, ".kiln-build-%%%%%%");
  llvm::SmallString<128> path;
  // Blocked from before the directory exists until the handler knows it.
  SignalsBlocked blocked;
  if (std::error_code code = llvm::sys::fs::createUniqueDirectory(model, path)) {
    error = "cannot create a build directory in '" + parent.str() + "': " + code.message();
    return nullptr;
  }
  bool guard = path.size() < sizeof directoryPath && !guarding.exchange(true);
  if (guard) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      guarding = false;
      guard = false;
    } else {
      std::memcpy(directoryPath, path.c_str(), path.size() + 1);
      directoryFd = fd;
      installHandlers();
    }
  }
  return std::unique_ptr<WorkDirectory>(new WorkDirectory(path.str().str(), guard));
}

WorkDirectory::~WorkDirectory() {
  // Removed while the handler still covers it, so a signal meanwhile
  // finishes the job rather than leaving half of it.
  llvm::sys::fs::remove_directories(path_);
  if (!guarded_)
    return;
  SignalsBlocked blocked;
  removeHandlers();
  int fd = directoryFd.exchange(-1);
  if (fd >= 0)
    ::close(fd);
  guarding = false;
}

std::string WorkDirectory::file(llvm::StringRef name) const {
  llvm::SmallString<128> path(path_);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

void startingTool() { runningTool = kStarting; }

void toolStarted(pid_t pid) {
  pid_t expected = kStarting;
  if (runningTool.compare_exchange_strong(expected, pid))
    return;
  // A signal came while the tool started: act on it now, as the handler
  // would have with the pid known (this ends the process).
  runningTool = pid;
  removeOnSignal(heldSignal);
}

void toolEnded() { runningTool = 0; }

} // namespace kiln

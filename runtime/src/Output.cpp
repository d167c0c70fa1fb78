//===- Output.cpp - Where output files go (output.h) ----------------------===//
//
// One implementation of the rules in output.h, used by every writer of the
// runtime (writeFileAtomically), the runner's --output check and kilnc.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/output.h"

#include "Support.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace kiln::runtime;

namespace {

/// The descriptor a path names by its spelling (/dev/stdout, /dev/fd/3,
/// ...), or -1. On Linux these are links to whatever the descriptor holds
/// (a pipe, a terminal, a file the shell opened); writing the descriptor
/// itself is what the user means, where opening the link's target anew
/// would lose the shell's offset or, for a file, rename over it.
int descriptorNamed(const char *path) {
  if (std::strcmp(path, "/dev/stdout") == 0)
    return STDOUT_FILENO;
  if (std::strcmp(path, "/dev/stderr") == 0)
    return STDERR_FILENO;
  for (const char *prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    size_t length = std::strlen(prefix);
    if (std::strncmp(path, prefix, length) != 0)
      continue;
    const char *digits = path + length;
    if (*digits < '0' || *digits > '9')
      return -1;
    long fd = 0;
    for (const char *c = digits; *c; ++c) {
      if (*c < '0' || *c > '9' || fd > INT_MAX / 10)
        return -1;
      fd = fd * 10 + (*c - '0');
    }
    return fd <= INT_MAX ? static_cast<int>(fd) : -1;
  }
  return -1;
}

kiln_status_t errnoStatus(int err, const std::string &message) {
  return makeStatus(kiln_status_code_for_errno(err), message + ": " + errnoText(err));
}

char *copyOf(const std::string &text) {
  char *copy = static_cast<char *>(std::malloc(text.size() + 1));
  if (copy)
    std::memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

std::string quoted(const std::string &path) { return "'" + path + "'"; }

/// `path` made absolute and free of links: realpath of an existing file, or
/// of the directory of a new one with its name appended.
kiln_status_t realPathOf(const std::string &path, bool exists, std::string &out) {
  if (exists) {
    char *real = ::realpath(path.c_str(), nullptr);
    if (!real)
      return errnoStatus(errno, quoted(path) + ": cannot resolve it");
    out = real;
    std::free(real);
    return nullptr;
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..")
    return makeStatus(KILN_INVALID_ARGUMENT, quoted(path) + " names a directory, not a file");
  char *real = ::realpath(dir.c_str(), nullptr);
  if (!real)
    return errnoStatus(errno, quoted(path) + ": cannot resolve its directory " + quoted(dir));
  out = real;
  std::free(real);
  out += (out == "/" ? "" : "/") + name;
  return nullptr;
}

/// Fails if `info` (a regular file) is one of `inputs`.
kiln_status_t checkNotAnInput(const std::string &path, const struct stat &info,
                              const char *const *inputs, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!inputs || !inputs[i] || !*inputs[i])
      continue;
    struct stat input;
    if (::stat(inputs[i], &input) != 0 || !S_ISREG(input.st_mode))
      continue;
    if (input.st_dev == info.st_dev && input.st_ino == info.st_ino)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        quoted(path) + " is the same file as the input " + quoted(inputs[i]) +
                            "; an output never overwrites an input");
  }
  return nullptr;
}

kiln_status_t resolve(const std::string &path, unsigned flags, const char *const *inputs,
                      size_t count, kiln_output_t &out) {
  bool regularOnly = flags & KILN_OUTPUT_REGULAR_ONLY;
  std::string need = "; this output must be a regular file";
  if (path.empty())
    return makeStatus(KILN_INVALID_ARGUMENT, "an output path is empty");
  struct stat info;
  bool known = false; // `info` describes an existing file to compare with inputs
  std::string where;
  int fd = descriptorNamed(path.c_str());
  if (fd >= 0) {
    if (regularOnly)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        quoted(path) + " is descriptor " + std::to_string(fd) + need);
    if (::fstat(fd, &info) != 0)
      return errnoStatus(errno, quoted(path) + ": descriptor " + std::to_string(fd));
    known = S_ISREG(info.st_mode);
    out.kind = KILN_OUTPUT_DESCRIPTOR;
    out.fd = fd;
  } else if (::lstat(path.c_str(), &info) != 0) {
    if (errno != ENOENT)
      return errnoStatus(errno, quoted(path));
    KILN_RETURN_IF_ERROR(realPathOf(path, false, where));
    out.kind = KILN_OUTPUT_FILE;
  } else {
    if (S_ISLNK(info.st_mode) && ::stat(path.c_str(), &info) != 0) {
      if (errno == ENOENT)
        return makeStatus(KILN_NOT_FOUND,
                          quoted(path) + " is a symbolic link to a missing file");
      return errnoStatus(errno, quoted(path));
    }
    if (S_ISREG(info.st_mode)) {
      KILN_RETURN_IF_ERROR(realPathOf(path, true, where));
      known = true;
      out.kind = KILN_OUTPUT_FILE;
    } else if ((S_ISFIFO(info.st_mode) || S_ISCHR(info.st_mode)) && !regularOnly) {
      where = path;
      out.kind = KILN_OUTPUT_IN_PLACE;
    } else {
      return makeStatus(KILN_INVALID_ARGUMENT,
                        quoted(path) + " is " + kiln_file_kind(info.st_mode) +
                            (regularOnly ? need
                                         : "; an output is a regular file, a FIFO or a "
                                           "character device"));
    }
  }
  if (known)
    KILN_RETURN_IF_ERROR(checkNotAnInput(path, info, inputs, count));
  out.name = copyOf(path);
  out.path = out.kind == KILN_OUTPUT_DESCRIPTOR ? nullptr : copyOf(where);
  if (!out.name || (out.kind != KILN_OUTPUT_DESCRIPTOR && !out.path))
    return outOfMemory();
  return nullptr;
}

bool writeAll(int fd, const void *data, size_t size) {
  auto *in = static_cast<const uint8_t *>(data);
  while (size > 0) {
    ssize_t put = ::write(fd, in, size);
    if (put < 0 && errno == EINTR)
      continue;
    if (put <= 0)
      return false;
    in += put;
    size -= static_cast<size_t>(put);
  }
  return true;
}

// Best effort: makes the rename itself durable. A failure here does not undo
// the (already complete) write, so it is not reported.
void syncDirectoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

kiln_status_t writeChunks(int fd, const std::string &name, const std::vector<Chunk> &chunks) {
  for (const Chunk &chunk : chunks)
    if (!writeAll(fd, chunk.data, chunk.size))
      return errnoStatus(errno, name + ": write failed");
  return nullptr;
}

kiln_status_t replaceFile(const std::string &name, const std::string &path,
                          const std::vector<Chunk> &chunks) {
  // The temporary file sits beside the file replaced so that rename stays
  // within one file system (and so is atomic). O_EXCL with a per-process
  // counter keeps concurrent writers, in this process or others, apart; mode
  // 0666 lets the umask decide permissions, as for any newly created file.
  static std::atomic<unsigned> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0)
    return errnoStatus(errno, name + ": cannot create temporary file '" + temp + "'");
  auto fail = [&](const char *step) {
    int err = errno;
    if (fd >= 0)
      ::close(fd);
    ::unlink(temp.c_str());
    return makeStatus(kiln_status_code_for_errno(err),
                      name + ": " + step + " failed: " + errnoText(err));
  };
  for (const Chunk &chunk : chunks)
    if (!writeAll(fd, chunk.data, chunk.size))
      return fail("write");
  if (::fsync(fd) != 0)
    return fail("fsync");
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0)
    return fail("close");
  if (::rename(temp.c_str(), path.c_str()) != 0)
    return fail("rename");
  syncDirectoryOf(path);
  return nullptr;
}

/// A FIFO or character device: opened without O_CREAT or O_TRUNC (which a
/// device ignores or refuses) and written from its start. What is opened
/// must still be a stream: a regular file put there since it was resolved
/// would be overwritten in place, not replaced whole, so it is refused.
kiln_status_t writeInPlace(const std::string &name, const std::string &path,
                           const std::vector<Chunk> &chunks) {
  int fd;
  do
    fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return errnoStatus(errno, name + ": cannot open it for writing");
  struct stat info;
  kiln_status_t status = nullptr;
  if (::fstat(fd, &info) != 0)
    status = errnoStatus(errno, name);
  else if (!S_ISFIFO(info.st_mode) && !S_ISCHR(info.st_mode))
    status = makeStatus(KILN_IO_ERROR, name + " changed into " + kiln_file_kind(info.st_mode) +
                                           " while it was being written");
  else
    status = writeChunks(fd, name, chunks);
  if (::close(fd) != 0 && !status && errno != EINTR)
    status = errnoStatus(errno, name + ": close failed");
  return status;
}

kiln_status_t writeResolved(const kiln_output_t &output, const std::vector<Chunk> &chunks) {
  if (!output.name || (output.kind != KILN_OUTPUT_DESCRIPTOR && !output.path))
    return makeStatus(KILN_INVALID_ARGUMENT, "kiln_output_write: the output is not resolved");
  switch (output.kind) {
  case KILN_OUTPUT_FILE:
    return replaceFile(output.name, output.path, chunks);
  case KILN_OUTPUT_DESCRIPTOR:
    return writeChunks(output.fd, output.name, chunks);
  case KILN_OUTPUT_IN_PLACE:
    return writeInPlace(output.name, output.path, chunks);
  }
  return makeStatus(KILN_INVALID_ARGUMENT, "kiln_output_write: unknown output kind");
}

} // namespace

namespace kiln::runtime {

kiln_status_t writeFileAtomically(const std::string &path, const std::vector<Chunk> &chunks) {
  kiln_output_t output = {KILN_OUTPUT_FILE, nullptr, nullptr, -1};
  kiln_status_t status = resolve(path, 0, nullptr, 0, output);
  if (!status)
    status = writeResolved(output, chunks);
  kiln_output_release(&output);
  return status;
}

} // namespace kiln::runtime

extern "C" {

kiln_status_t kiln_output_resolve(const char *path, unsigned flags, const char *const *inputs,
                                  size_t input_count, kiln_output_t *out_output) {
  if (!out_output)
    return makeStatus(KILN_INVALID_ARGUMENT, "kiln_output_resolve: NULL argument");
  *out_output = {KILN_OUTPUT_FILE, nullptr, nullptr, -1};
  if (!path)
    return makeStatus(KILN_INVALID_ARGUMENT, "kiln_output_resolve: NULL argument");
  kiln_status_t status =
      guard([&] { return resolve(path, flags, inputs, input_count, *out_output); });
  if (status)
    kiln_output_release(out_output);
  return status;
}

kiln_status_t kiln_output_write(const kiln_output_t *output, const void *data, size_t size) {
  if (!output || (size > 0 && !data))
    return makeStatus(KILN_INVALID_ARGUMENT, "kiln_output_write: NULL argument");
  return guard([&] { return writeResolved(*output, {{data, size}}); });
}

void kiln_output_release(kiln_output_t *output) {
  if (!output)
    return;
  std::free(output->name);
  std::free(output->path);
  *output = {KILN_OUTPUT_FILE, nullptr, nullptr, -1};
}

} // extern "C"

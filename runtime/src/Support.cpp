//===- Support.cpp - Internal helpers of the Kiln runtime -----------------===//
#include "Support.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::runtime {

bool shapeCount(const std::vector<int64_t> &shape, uint64_t *out) {
  uint64_t count = 1;
  for (int64_t dim : shape)
    if (dim < 0 || !checkedMul(count, static_cast<uint64_t>(dim), &count))
      return false;
  *out = count;
  return true;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

kiln_status_t newArray(kiln_dtype_t dtype, const std::vector<int64_t> &shape,
                       const std::string &what, kiln_array_t **out_array,
                       bool zeroFill) {
  if (shape.size() > KILN_MAX_RANK)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      what + ": rank " + std::to_string(shape.size()) +
                          " exceeds the limit of " +
                          std::to_string(KILN_MAX_RANK));
  uint64_t count = 0, bytes = 0;
  if (!shapeCount(shape, &count) ||
      !checkedMul(count, kiln_dtype_size(dtype), &bytes) || bytes > SIZE_MAX)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      what + ": shape " + formatShape(shape) +
                          " is negative or too large");
  auto array = std::make_unique<kiln_array_s>();
  array->dtype = dtype;
  array->shape = shape;
  array->count = count;
  array->byteSize = bytes;
  array->data = allocateAligned(bytes);
  if (!array->data)
    return outOfMemory();
  if (zeroFill)
    std::memset(array->data.get(), 0, bytes);
  *out_array = array.release();
  return nullptr;
}

std::string errnoText(int err) {
  char buffer[256];
  return kiln_errno_text(err, buffer, sizeof buffer);
}

static bool writeAll(int fd, const void *data, size_t size) {
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
static void syncDirectoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

kiln_status_t writeFileAtomically(const std::string &path,
                                  const std::vector<Chunk> &chunks) {
  // The temporary file sits beside the target so that rename stays within
  // one file system (and so is atomic). O_EXCL with a per-process counter
  // keeps concurrent writers, in this process or others, apart; mode 0666
  // lets the umask decide permissions, as for any newly created file.
  static std::atomic<unsigned> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp = path + ".tmp." + std::to_string(::getpid()) + "." +
           std::to_string(counter++);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    int err = errno;
    return makeStatus(kiln_status_code_for_errno(err),
                      path + ": cannot create temporary file '" + temp +
                          "': " + errnoText(err));
  }
  auto fail = [&](const char *step) {
    int err = errno;
    if (fd >= 0)
      ::close(fd);
    ::unlink(temp.c_str());
    return makeStatus(kiln_status_code_for_errno(err),
                      path + ": " + step + " failed: " + errnoText(err));
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

} // namespace kiln::runtime

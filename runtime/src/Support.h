//===- Support.h - Internal helpers of the Kiln runtime -------------------===//
//
// Status construction, the exception guard used at every C entry point,
// checked arithmetic, aligned buffers and POSIX file I/O for the C++ sources,
// mostly thin wrappers of the C helpers in CSupport.h. Not installed.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_SRC_SUPPORT_H
#define KILN_RUNTIME_SRC_SUPPORT_H

#include "CSupport.h"

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace kiln::runtime {

// A failure with `message`. Never fails itself: if the status cannot be
// allocated, the preallocated out-of-memory status comes back instead.
inline kiln_status_t makeStatus(kiln_status_code_t code, const std::string &message) {
  return kiln_status_make(code, "%s", message.c_str());
}
// The shared out-of-memory status (kiln_status_free ignores it).
inline kiln_status_t outOfMemory() { return kiln_status_out_of_memory(); }

// Runs `body` (returning kiln_status_t) and turns any exception into a status,
// so no exception ever crosses the C boundary: std::string and std::vector
// report allocation failure by throwing bad_alloc.
template <typename Body> kiln_status_t guard(Body &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return outOfMemory();
  } catch (const std::exception &e) {
    return makeStatus(KILN_INTERNAL, std::string("unexpected exception: ") +
                                         e.what());
  } catch (...) {
    return makeStatus(KILN_INTERNAL, "unexpected exception");
  }
}

// Checked arithmetic: false when the result does not fit in 64 bits.
inline bool checkedMul(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checkedAdd(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}
// The element count of `shape` (non-negative extents), or false on overflow.
bool shapeCount(const std::vector<int64_t> &shape, uint64_t *out);
// "[128, 784]"
std::string formatShape(const std::vector<int64_t> &shape);

// ToTensor then Normalize, in float32 as torchvision computes them: a scale
// of 1/k for a whole k (scale(1/255)) is ToTensor's division by k, which
// differs from a multiplication by the rounded 1/255 in the last bit of some
// pixels. The trainer and the inference runner's --images share it, so a
// built program classifies the test set as the trainer's evaluation does.
// The scale may come rounded to float (the runner's kiln_model_desc_t):
// k is taken when 1/scale is within float's rounding of a whole number.
struct PixelTransform {
  float scale = 1, divisor = 0, mean = 0, std = 1;
  PixelTransform(double scale, double mean, double std)
      : scale(static_cast<float>(scale)), mean(static_cast<float>(mean)),
        std(static_cast<float>(std)) {
    double reciprocal = 1.0 / scale;
    if (scale > 0 && std::fabs(reciprocal - std::round(reciprocal)) < 1e-6 * reciprocal)
      divisor = static_cast<float>(std::round(reciprocal));
  }
  float operator()(uint8_t pixel) const {
    float x = divisor != 0 ? static_cast<float>(pixel) / divisor
                           : static_cast<float>(pixel) * scale;
    return (x - mean) / std;
  }
};

// Memory aligned to 64 bytes, the widest vector Halide's AVX-512 code stores.
struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], FreeDeleter>;
constexpr size_t kAlignment = KILN_ALIGNMENT;
// Null when `size` bytes cannot be allocated. Never null for size 0.
inline AlignedBytes allocateAligned(size_t size) {
  return AlignedBytes(static_cast<uint8_t *>(kiln_aligned_alloc(size)));
}

// Allocates an array of `dtype` and `shape`; `what` prefixes errors. Readers
// that overwrite every byte pass zeroFill = false, so that memory a hostile
// header asks for is only touched as real data arrives.
kiln_status_t newArray(kiln_dtype_t dtype, const std::vector<int64_t> &shape,
                       const std::string &what, kiln_array_t **out_array,
                       bool zeroFill = true);

// An open file descriptor (kiln_input_file_t), closed on destruction.
class InputFile {
public:
  InputFile() = default;
  InputFile(const InputFile &) = delete;
  InputFile &operator=(const InputFile &) = delete;
  ~InputFile() { kiln_input_file_close(&file_); }
  // Opens a regular file for reading and records its size.
  kiln_status_t open(const std::string &path) {
    path_ = path;
    return kiln_input_file_open(&file_, path_.c_str());
  }
  uint64_t size() const { return file_.size; }
  int fd() const { return file_.fd; }
  // Reads exactly `n` bytes at `offset`; an early end is an I/O error (the
  // size was checked against fstat, so the file changed underneath us).
  kiln_status_t readAt(uint64_t offset, void *dst, size_t n) const {
    return kiln_input_file_read_at(&file_, offset, dst, n);
  }
  // Gives up ownership of the descriptor (e.g. to zlib's gzdopen).
  int release() {
    int fd = file_.fd;
    file_.fd = -1;
    return fd;
  }

private:
  std::string path_; // file_.path points into it
  kiln_input_file_t file_ = {nullptr, -1, 0};
};

// A piece of a file to be written.
struct Chunk {
  const void *data;
  size_t size;
};
// Writes `chunks` to `path` by the rules of kiln/runtime/output.h
// (Output.cpp): a regular file atomically (a new temporary file beside the
// file `path` resolves to, fsync, rename; on any failure the temporary file
// is removed and the old file left as it was), a FIFO, character device or
// /dev/stdout in place; anything else is an error, nothing written.
kiln_status_t writeFileAtomically(const std::string &path,
                                  const std::vector<Chunk> &chunks);

// strerror, thread-safe.
std::string errnoText(int err);

/// A command line's "--name=value" (the runners'): cuts `arg`, a copy of
/// `argument`, to "--name" and returns the value, in `argument`; null where
/// `arg` is not a "--" option with an "=".
// `text` with its control characters escaped (kiln_escape_controls): what
// the runners and the trainer print of paths and messages goes to a
// terminal.
inline std::string escaped(const char *text) {
  std::string out(kiln_escape_controls(text, nullptr, 0), '\0');
  kiln_escape_controls(text, out.data(), out.size() + 1);
  return out;
}
inline std::string escaped(const std::string &text) { return escaped(text.c_str()); }

inline const char *splitInlineValue(std::string &arg, const char *argument) {
  size_t equals = arg.find('=');
  if (arg.rfind("--", 0) != 0 || equals == std::string::npos)
    return nullptr;
  arg.resize(equals);
  return argument + equals + 1;
}

} // namespace kiln::runtime

// The storage behind kiln_array_t, shared by NPY, IDX and the array API.
struct kiln_array_s {
  kiln_dtype_t dtype;
  std::vector<int64_t> shape;
  size_t count;
  size_t byteSize;
  kiln::runtime::AlignedBytes data;
};

#endif // KILN_RUNTIME_SRC_SUPPORT_H

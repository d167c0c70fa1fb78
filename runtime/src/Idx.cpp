//===- Idx.cpp - IDX files, plain or gzip-compressed ----------------------===//
//
// zlib's gzread decompresses a file that starts with the gzip magic (1f 8b)
// and reads any other file as it is ("transparent" mode), so one code path
// reads both, and compression is decided by the bytes, not the file name.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/idx.h"

#include "Support.h"

#include <zlib.h>

#include <algorithm>

using namespace kiln::runtime;

namespace {

struct GzCloser {
  void operator()(gzFile_s *file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

class IdxReader {
public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {}

  kiln_status_t read(kiln_array_t **out_array) {
    InputFile input;
    KILN_RETURN_IF_ERROR(input.open(path_));
    uint64_t fileSize = input.size();
    file_.reset(gzdopen(input.fd(), "rb"));
    if (!file_)
      return makeStatus(KILN_OUT_OF_MEMORY, path_ + ": cannot start zlib");
    input.release(); // gzclose closes the descriptor now

    // magic := 0x00 0x00 type ndims; then ndims big-endian u32 extents.
    uint8_t magic[4];
    KILN_RETURN_IF_ERROR(readExactly(magic, 4, "the magic number"));
    if (magic[0] != 0 || magic[1] != 0)
      return dataLoss("bad magic number " + hex(magic) + " (expected 0x000008NN)");
    if (magic[2] != 0x08)
      return makeStatus(KILN_UNIMPLEMENTED,
                        path_ + ": magic " + hex(magic) + ": element type code " +
                            std::to_string(magic[2]) +
                            " is not supported (only 0x08, unsigned byte)");
    // Images have 3 dimensions and labels 1; 4 allows e.g. colour images.
    if (magic[3] < 1 || magic[3] > 4)
      return dataLoss("magic " + hex(magic) + ": " + std::to_string(magic[3]) +
                      " dimensions (expected 1 to 4)");
    std::vector<int64_t> shape;
    for (int i = 0; i < magic[3]; ++i) {
      uint8_t extent[4];
      KILN_RETURN_IF_ERROR(
          readExactly(extent, 4, "dimension " + std::to_string(i)));
      shape.push_back(int64_t(extent[0]) << 24 | extent[1] << 16 |
                      extent[2] << 8 | extent[3]);
    }
    uint64_t size = 0;
    if (!shapeCount(shape, &size) || size > KILN_IDX_MAX_DATA_SIZE)
      return dataLoss("dimensions " + formatShape(shape) +
                      " describe more than the 1 GiB Kiln accepts");
    // A plain file must hold the data already; checking before allocating
    // keeps a 16-byte file from costing a 1 GiB allocation.
    uint64_t headerSize = 4 + 4 * shape.size();
    if (gzdirect(file_.get()) && fileSize - headerSize < size)
      return dataLoss("file is truncated: dimensions " + formatShape(shape) +
                      " need " + std::to_string(size) + " data bytes, the file has " +
                      std::to_string(fileSize - headerSize));
    kiln_array_t *array = nullptr;
    KILN_RETURN_IF_ERROR(
        newArray(KILN_DTYPE_U8, shape, path_, &array, /*zeroFill=*/false));
    std::unique_ptr<kiln_array_s> owned(array);
    KILN_RETURN_IF_ERROR(readExactly(array->data.get(), size,
                                     "data of " + formatShape(shape)));
    // Reading one more byte also makes zlib check the gzip trailer (CRC and
    // length), which it only does at the end of the stream.
    uint8_t extra;
    int got = gzread(file_.get(), &extra, 1);
    if (got < 0)
      return zlibError("after the data");
    if (got > 0)
      return dataLoss("trailing bytes after the " + std::to_string(size) +
                      " data bytes of " + formatShape(shape));
    *out_array = owned.release();
    return nullptr;
  }

private:
  std::string path_;
  GzFile file_;

  kiln_status_t dataLoss(const std::string &message) {
    return makeStatus(KILN_DATA_LOSS, path_ + ": " + message);
  }
  // zlib's last error, without the "<fd:N>: " it puts in front (the file
  // was opened with gzdopen, so zlib only knows the descriptor).
  std::string zlibText(int *code) {
    std::string text = gzerror(file_.get(), code);
    size_t colon = text.find(": ");
    return colon == std::string::npos ? text : text.substr(colon + 2);
  }
  kiln_status_t zlibError(const std::string &where) {
    int code = Z_OK;
    std::string text = zlibText(&code);
    if (code == Z_ERRNO)
      return makeStatus(KILN_IO_ERROR, path_ + ": read failed " + where);
    return dataLoss("corrupt gzip stream " + where + ": " + text);
  }
  static std::string hex(const uint8_t *bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text = "0x";
    for (int i = 0; i < 4; ++i)
      (text += digits[bytes[i] >> 4]) += digits[bytes[i] & 15];
    return text;
  }
  // Reads exactly `n` bytes (`what`, for messages); fewer means truncation.
  kiln_status_t readExactly(void *dst, uint64_t n, const std::string &what) {
    auto *out = static_cast<uint8_t *>(dst);
    uint64_t done = 0;
    while (done < n) {
      // gzread counts in unsigned int; read in chunks well below INT_MAX.
      unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n - done, 1u << 30));
      int got = gzread(file_.get(), out + done, chunk);
      if (got < 0)
        return zlibError("while reading " + what);
      if (got == 0)
        break;
      done += static_cast<uint64_t>(got);
    }
    if (done < n) {
      int code = Z_OK;
      std::string text = zlibText(&code);
      return dataLoss("file is truncated: " + what + ": expected " +
                      std::to_string(n) + " bytes, got " + std::to_string(done) +
                      (code != Z_OK ? " (" + text + ")" : ""));
    }
    return nullptr;
  }
};

} // namespace

extern "C" kiln_status_t kiln_idx_read(const char *path, kiln_array_t **out_array) {
  return guard([&]() -> kiln_status_t {
    if (!path || !out_array)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_idx_read: NULL argument");
    *out_array = nullptr;
    return IdxReader(path).read(out_array);
  });
}

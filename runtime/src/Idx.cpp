//===- Idx.cpp - IDX files, plain or gzip-compressed ----------------------===//
//
// A file that starts with the gzip magic (1f 8b) is decompressed, any other
// is read as it is, so compression is decided by the bytes, not the file
// name. Decompression drives zlib's inflate directly rather than gzread:
// gzread takes a stream that stops before its CRC-32 and length trailer
// (or in the middle of its last block) for a normal end of file and ignores
// bytes after it, so a truncated download would read as a good file. Here
// every gzip member must end (Z_STREAM_END, which inflate only reports once
// the trailer's CRC-32 and length have matched) and nothing but another
// member may follow. Reading stops at the size the IDX header implies (plus
// one byte, to find trailing data), so a gzip bomb costs no more than that.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/idx.h"

#include "Support.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

using namespace kiln::runtime;

namespace {

// The bytes of an IDX file in order, decompressed if it is gzip.
class ByteStream {
public:
  ByteStream(const InputFile &input, const std::string &path) : input_(input), path_(path) {}
  ByteStream(const ByteStream &) = delete;
  ByteStream &operator=(const ByteStream &) = delete;
  ~ByteStream() {
    if (inflating_)
      inflateEnd(&z_);
  }

  // Looks at the first bytes: gzip or plain.
  kiln_status_t start() {
    uint8_t magic[2] = {};
    if (input_.size() >= 2)
      KILN_RETURN_IF_ERROR(input_.readAt(0, magic, 2));
    compressed_ = magic[0] == 0x1f && magic[1] == 0x8b;
    if (!compressed_)
      return nullptr;
    // 15 + 16: a 32 KiB window and a gzip wrapper (header, CRC-32, length).
    if (inflateInit2(&z_, 15 + 16) != Z_OK)
      return makeStatus(KILN_OUT_OF_MEMORY, path_ + ": cannot start zlib");
    inflating_ = true;
    return nullptr;
  }
  bool compressed() const { return compressed_; }

  // Up to `n` bytes into `dst`; fewer (`*got`) only at the end of the data,
  // where truncated() then says whether a gzip stream ended early.
  kiln_status_t read(uint8_t *dst, uint64_t n, uint64_t *got) {
    *got = 0;
    if (!compressed_) {
      uint64_t n0 = std::min<uint64_t>(n, input_.size() - offset_);
      KILN_RETURN_IF_ERROR(input_.readAt(offset_, dst, n0));
      offset_ += n0;
      *got = n0;
      return nullptr;
    }
    while (*got < n && !ended_) {
      if (memberEnded_) {
        KILN_RETURN_IF_ERROR(nextMember());
        continue;
      }
      if (z_.avail_in == 0) {
        KILN_RETURN_IF_ERROR(refill());
        if (z_.avail_in == 0) { // the file ends inside a member
          truncated_ = ended_ = true;
          break;
        }
      }
      uInt chunk = static_cast<uInt>(std::min<uint64_t>(n - *got, 1u << 30));
      z_.next_out = dst + *got;
      z_.avail_out = chunk;
      int ret = inflate(&z_, Z_NO_FLUSH);
      *got += chunk - z_.avail_out;
      if (ret == Z_STREAM_END)
        memberEnded_ = true;
      else if (ret == Z_MEM_ERROR)
        return outOfMemory();
      else if (ret != Z_OK && ret != Z_BUF_ERROR) // Z_BUF_ERROR: needs input
        return corrupt(z_.msg ? z_.msg : "inflate failed");
    }
    return nullptr;
  }
  bool truncated() const { return truncated_; }

  // An error once all the data has been read if the file holds more.
  kiln_status_t finish(const std::string &what) {
    uint8_t extra;
    uint64_t got = 0;
    KILN_RETURN_IF_ERROR(read(&extra, 1, &got));
    if (got > 0)
      return makeStatus(KILN_DATA_LOSS, path_ + ": trailing bytes after the " + what);
    if (truncated_)
      return makeStatus(KILN_DATA_LOSS,
                        path_ + ": file is truncated: the gzip stream stops before its end "
                                "(the CRC-32 and length trailer are missing)");
    return nullptr;
  }

private:
  const InputFile &input_;
  const std::string &path_;
  bool compressed_ = false, inflating_ = false;
  bool memberEnded_ = false, ended_ = false, truncated_ = false;
  uint64_t offset_ = 0; // of the next byte of the file to read
  z_stream z_{};
  uint8_t buffer_[1 << 16];

  kiln_status_t corrupt(const char *why) {
    return makeStatus(KILN_DATA_LOSS, path_ + ": corrupt gzip stream (near byte " +
                                          std::to_string(offset_ - z_.avail_in) +
                                          " of the file): " + why);
  }
  // More input after what inflate has not consumed yet (at most a few bytes
  // are left over, when a member's end is looked past).
  kiln_status_t refill() {
    size_t kept = z_.avail_in;
    if (kept > 0)
      std::memmove(buffer_, z_.next_in, kept);
    size_t n = static_cast<size_t>(
        std::min<uint64_t>(sizeof buffer_ - kept, input_.size() - offset_));
    KILN_RETURN_IF_ERROR(input_.readAt(offset_, buffer_ + kept, n));
    offset_ += n;
    z_.next_in = buffer_;
    z_.avail_in = static_cast<uInt>(kept + n);
    return nullptr;
  }
  // After a member's trailer: the end of the file, or another member (as
  // `cat a.gz b.gz` or `gzip -c a b` make), else an error.
  kiln_status_t nextMember() {
    if (z_.avail_in < 2)
      KILN_RETURN_IF_ERROR(refill());
    if (z_.avail_in == 0) {
      ended_ = true;
      return nullptr;
    }
    if (z_.avail_in < 2 || z_.next_in[0] != 0x1f || z_.next_in[1] != 0x8b)
      return makeStatus(KILN_DATA_LOSS,
                        path_ + ": " + std::to_string(input_.size() - (offset_ - z_.avail_in)) +
                            " bytes after the end of the gzip stream that are not another "
                            "gzip member");
    if (inflateReset(&z_) != Z_OK)
      return corrupt("cannot restart inflate");
    memberEnded_ = false;
    return nullptr;
  }
};

class IdxReader {
public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {}

  kiln_status_t read(kiln_array_t **out_array) {
    InputFile input;
    KILN_RETURN_IF_ERROR(input.open(path_));
    ByteStream stream(input, path_);
    KILN_RETURN_IF_ERROR(stream.start());

    // magic := 0x00 0x00 type ndims; then ndims big-endian u32 extents.
    uint8_t magic[4];
    KILN_RETURN_IF_ERROR(readExactly(stream, magic, 4, "the magic number"));
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
          readExactly(stream, extent, 4, "dimension " + std::to_string(i)));
      shape.push_back(int64_t(extent[0]) << 24 | extent[1] << 16 |
                      extent[2] << 8 | extent[3]);
    }
    uint64_t size = 0;
    if (!shapeCount(shape, &size) || size > KILN_IDX_MAX_DATA_SIZE)
      return dataLoss("dimensions " + formatShape(shape) +
                      " describe more than the 1 GiB Kiln accepts");
    // A plain file must hold exactly the data already; checking before
    // allocating keeps a 16-byte file from costing a 1 GiB allocation, and a
    // huge one from being read up to the limit.
    uint64_t headerSize = 4 + 4 * shape.size();
    if (!stream.compressed() && input.size() - headerSize < size)
      return dataLoss("file is truncated: dimensions " + formatShape(shape) +
                      " need " + std::to_string(size) + " data bytes, the file has " +
                      std::to_string(input.size() - headerSize));
    if (!stream.compressed() && input.size() - headerSize > size)
      return dataLoss("trailing bytes after the " + std::to_string(size) + " data bytes of " +
                      formatShape(shape) + " (the file has " +
                      std::to_string(input.size() - headerSize) + ")");
    kiln_array_t *array = nullptr;
    KILN_RETURN_IF_ERROR(
        newArray(KILN_DTYPE_U8, shape, path_, &array, /*zeroFill=*/false));
    std::unique_ptr<kiln_array_s> owned(array);
    KILN_RETURN_IF_ERROR(readExactly(stream, array->data.get(), size,
                                     "data of " + formatShape(shape)));
    KILN_RETURN_IF_ERROR(stream.finish(std::to_string(size) + " data bytes of " +
                                       formatShape(shape)));
    *out_array = owned.release();
    return nullptr;
  }

private:
  std::string path_;

  kiln_status_t dataLoss(const std::string &message) {
    return makeStatus(KILN_DATA_LOSS, path_ + ": " + message);
  }
  static std::string hex(const uint8_t *bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text = "0x";
    for (int i = 0; i < 4; ++i)
      (text += digits[bytes[i] >> 4]) += digits[bytes[i] & 15];
    return text;
  }
  // Reads exactly `n` bytes (`what`, for messages); fewer means truncation.
  kiln_status_t readExactly(ByteStream &stream, void *dst, uint64_t n,
                            const std::string &what) {
    uint64_t got = 0;
    KILN_RETURN_IF_ERROR(stream.read(static_cast<uint8_t *>(dst), n, &got));
    if (got < n)
      return dataLoss("file is truncated: " + what + ": expected " + std::to_string(n) +
                      " bytes, got " + std::to_string(got) +
                      (stream.truncated() ? " (the gzip stream stops before its end)" : ""));
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

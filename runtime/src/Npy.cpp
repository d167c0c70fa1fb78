//===- Npy.cpp - NumPy .npy files of float32 ------------------------------===//
//
// Format (numpy.lib.format): "\x93NUMPY", major and minor version bytes, the
// header length (u16 little-endian in 1.0, u32 in 2.0 and 3.0), then the
// header: a Python dict literal padded with spaces and ending in '\n', then
// the raw array data.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/npy.h"

#include "Support.h"

#include <cstring>
#include <string_view>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the NPY reader and writer assume a little-endian host");

using namespace kiln::runtime;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// The header dictionary, once parsed.
struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
};

// A strict recursive-descent parser for the dictionaries numpy writes.
class HeaderParser {
public:
  explicit HeaderParser(std::string_view text) : text_(text) {}
  std::string error;

  // header := '{' (entry (',' entry)* ','?)? '}' ' '* '\n'
  // entry  := string ':' value, with exactly the keys descr, fortran_order
  //           and shape, each once.
  bool parse(NpyHeader &out) {
    if (!expect('{'))
      return false;
    bool seenDescr = false, seenOrder = false, seenShape = false;
    while (!peek('}')) {
      std::string key;
      if (!parseString(key) || !expect(':'))
        return false;
      if (key == "descr") {
        if (!once(seenDescr, key) || !parseString(out.descr))
          return false;
      } else if (key == "fortran_order") {
        if (!once(seenOrder, key) || !parseBool(out.fortranOrder))
          return false;
      } else if (key == "shape") {
        if (!once(seenShape, key) || !parseTuple(out.shape))
          return false;
      } else {
        return fail("unexpected key '" + key + "'");
      }
      if (!peek('}') && !expect(','))
        return false;
    }
    ++pos_; // '}'
    while (pos_ < text_.size() && text_[pos_] == ' ')
      ++pos_;
    if (pos_ + 1 != text_.size() || text_[pos_] != '\n')
      return fail("header must end with spaces and a newline after '}'");
    if (!seenDescr || !seenOrder || !seenShape)
      return fail(std::string("missing key '") +
                  (!seenDescr ? "descr" : !seenOrder ? "fortran_order" : "shape") + "'");
    return true;
  }

private:
  std::string_view text_;
  size_t pos_ = 0;

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
  void skipSpaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ')
      ++pos_;
  }
  bool peek(char c) {
    skipSpaces();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool expect(char c) {
    if (!peek(c))
      return fail(std::string("expected '") + c + "' at byte " + std::to_string(pos_));
    ++pos_;
    return true;
  }
  bool once(bool &seen, const std::string &key) {
    if (seen)
      return fail("key '" + key + "' appears twice");
    seen = true;
    return true;
  }
  // string := "'" [^'\\]* "'"   (numpy writes repr(), which quotes with ')
  bool parseString(std::string &out) {
    if (!expect('\''))
      return false;
    size_t end = text_.find_first_of("'\\", pos_);
    if (end == std::string_view::npos || text_[end] != '\'')
      return fail("unterminated or escaped string at byte " + std::to_string(pos_));
    out = std::string(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }
  // bool := 'True' | 'False'
  bool parseBool(bool &out) {
    skipSpaces();
    for (auto [word, value] : {std::pair{"True", true}, std::pair{"False", false}})
      if (text_.substr(pos_, std::strlen(word)) == word) {
        pos_ += std::strlen(word);
        out = value;
        return true;
      }
    return fail("fortran_order must be True or False");
  }
  // tuple := '(' ')' | '(' int ',' (int (',' int)* ','?)? ')'
  // (as in Python, a one-element tuple needs its comma: "(3)" is just 3)
  bool parseTuple(std::vector<int64_t> &out) {
    if (!expect('('))
      return false;
    while (!peek(')')) {
      if (out.size() == KILN_MAX_RANK)
        return fail("shape has more than " + std::to_string(KILN_MAX_RANK) + " dimensions");
      int64_t value = 0;
      if (!parseInt(value))
        return false;
      out.push_back(value);
      if (!peek(')') && !expect(','))
        return false;
      if (out.size() == 1 && text_[pos_ - 1] != ',')
        return fail("a one-element shape needs a trailing comma, as in (3,)");
    }
    ++pos_;
    return true;
  }
  // int := [0-9]+ (extents only: no sign, at most 2^63-1)
  bool parseInt(int64_t &out) {
    skipSpaces();
    size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (!checkedMul(value, 10, &value) ||
          !checkedAdd(value, static_cast<uint64_t>(text_[pos_] - '0'), &value) ||
          value > static_cast<uint64_t>(INT64_MAX))
        return fail("shape extent too large at byte " + std::to_string(start));
      ++pos_;
    }
    if (pos_ == start)
      return fail("shape must hold non-negative integers (byte " +
                  std::to_string(start) + ")");
    out = static_cast<int64_t>(value);
    return true;
  }
};

// Reads `path` into a new array of `dtype`: KILN_DTYPE_F32 from '<f4' (or
// '<f8', rounded), KILN_DTYPE_I64 from '<i8' only (class labels: a float
// file is refused rather than truncated to integers).
kiln_status_t readNpy(const std::string &path, kiln_dtype_t dtype, kiln_array_t **out_array) {
  InputFile input;
  KILN_RETURN_IF_ERROR(input.open(path));
  auto dataLoss = [&](const std::string &message) {
    return makeStatus(KILN_DATA_LOSS, path + ": " + message);
  };
  uint8_t preamble[12] = {};
  if (input.size() < 10)
    return dataLoss("file is too short to be NPY (" + std::to_string(input.size()) + " bytes)");
  KILN_RETURN_IF_ERROR(input.readAt(0, preamble, input.size() < 12 ? 10 : 12));
  if (std::memcmp(preamble, kMagic, kMagicSize) != 0)
    return dataLoss("not an NPY file (magic \\x93NUMPY missing)");
  uint8_t major = preamble[6], minor = preamble[7];
  if (major < 1 || major > 3 || minor != 0)
    return makeStatus(KILN_UNIMPLEMENTED, path + ": NPY version " + std::to_string(major) +
                                              "." + std::to_string(minor) +
                                              " is not supported (1.0, 2.0, 3.0 are)");
  size_t headerStart = major == 1 ? 10 : 12;
  uint64_t headerSize = major == 1 ? preamble[8] | preamble[9] << 8
                                   : uint64_t(preamble[8]) | uint64_t(preamble[9]) << 8 |
                                         uint64_t(preamble[10]) << 16 |
                                         uint64_t(preamble[11]) << 24;
  if (headerSize > KILN_NPY_MAX_HEADER_SIZE)
    return dataLoss("header length " + std::to_string(headerSize) + " exceeds the limit of " +
                    std::to_string(KILN_NPY_MAX_HEADER_SIZE));
  if (headerStart + headerSize > input.size())
    return dataLoss("header length " + std::to_string(headerSize) +
                    " runs past the end of the file");
  std::string text(headerSize, '\0');
  KILN_RETURN_IF_ERROR(input.readAt(headerStart, text.data(), headerSize));
  NpyHeader header;
  HeaderParser parser(text);
  if (!parser.parse(header))
    return dataLoss("malformed header: " + parser.error);
  bool integers = dtype == KILN_DTYPE_I64;
  size_t elementSize = integers ? (header.descr == "<i8" ? 8 : 0)
                                : header.descr == "<f4" ? 4 : header.descr == "<f8" ? 8 : 0;
  if (elementSize == 0) {
    bool bigEndian = !header.descr.empty() && header.descr[0] == '>';
    return makeStatus(KILN_UNIMPLEMENTED,
                      path + ": dtype '" + header.descr + "' is not supported" +
                          (bigEndian ? integers ? " (big-endian; save with arr.astype('<i8'))"
                                                : " (big-endian; save with arr.astype('<f4'))"
                           : integers ? " (Kiln reads integers as '<i8', int64)"
                                      : " (Kiln reads '<f4' and '<f8')"));
  }
  if (header.fortranOrder)
    return makeStatus(KILN_UNIMPLEMENTED,
                      path + ": fortran_order is True; Kiln reads C-order arrays "
                             "(save np.ascontiguousarray(arr))");
  uint64_t count = 0, bytes = 0;
  if (!shapeCount(header.shape, &count) || !checkedMul(count, elementSize, &bytes))
    return dataLoss("shape " + formatShape(header.shape) + " overflows a 64-bit byte count");
  // Checked before the file's size, so that a header over a huge (sparse)
  // file is refused without reading or allocating its data.
  size_t outSize = integers ? 8 : 4;
  if (count > KILN_NPY_MAX_DATA_SIZE / outSize)
    return dataLoss("shape " + formatShape(header.shape) + " has " + std::to_string(count) +
                    " elements, more than the " +
                    std::to_string(KILN_NPY_MAX_DATA_SIZE / outSize) +
                    (integers ? " (4 GiB of int64)" : " (4 GiB of float32)") + " Kiln reads");
  uint64_t dataStart = headerStart + headerSize, available = input.size() - dataStart;
  if (available != bytes)
    return dataLoss("shape " + formatShape(header.shape) + " of '" + header.descr +
                    "' needs " + std::to_string(bytes) + " data bytes but the file has " +
                    std::to_string(available) +
                    (available < bytes ? " (truncated)" : " (trailing bytes)"));
  kiln_array_t *array = nullptr;
  KILN_RETURN_IF_ERROR(newArray(dtype, header.shape, path, &array, /*zeroFill=*/false));
  std::unique_ptr<kiln_array_s> owned(array);
  auto *dst = reinterpret_cast<float *>(array->data.get());
  if (integers || elementSize == 4) {
    KILN_RETURN_IF_ERROR(input.readAt(dataStart, array->data.get(), bytes));
  } else {
    // Convert in blocks so that a large f8 file needs no second full copy.
    double block[4096];
    for (uint64_t done = 0; done < count;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(count - done, 4096));
      KILN_RETURN_IF_ERROR(input.readAt(dataStart + done * 8, block, n * 8));
      for (size_t i = 0; i < n; ++i)
        dst[done + i] = static_cast<float>(block[i]);
      done += n;
    }
  }
  *out_array = owned.release();
  return nullptr;
}

kiln_status_t writeNpy(const std::string &path, const float *data, size_t rank,
                       const int64_t *shape) {
  std::vector<int64_t> dims(shape, shape + rank);
  uint64_t count = 0, bytes = 0;
  if (!shapeCount(dims, &count) || !checkedMul(count, 4, &bytes) || bytes > SIZE_MAX)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      path + ": shape " + formatShape(dims) + " is negative or too large");
  if (bytes > 0 && !data)
    return makeStatus(KILN_INVALID_ARGUMENT, path + ": data is NULL");
  std::string text = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < rank; ++i)
    text += std::to_string(dims[i]) + (rank == 1 || i + 1 < rank ? "," : "") +
            (i + 1 < rank ? " " : "");
  text += "), }";
  // numpy pads so that the data starts on a 64-byte boundary (for mmap and
  // aligned loads); version 2.0 is only needed when the header passes 64 KiB.
  size_t preambleSize = text.size() + 1 + 10 <= 65535 ? 10 : 12;
  text.append((64 - (preambleSize + text.size() + 1) % 64) % 64, ' ');
  text += '\n';
  std::string preamble(kMagic, kMagicSize);
  preamble += static_cast<char>(preambleSize == 10 ? 1 : 2);
  preamble += '\0';
  for (size_t i = 0; i < preambleSize - 8; ++i)
    preamble += static_cast<char>(text.size() >> (8 * i));
  return writeFileAtomically(path, {{preamble.data(), preamble.size()},
                                    {text.data(), text.size()},
                                    {data, static_cast<size_t>(bytes)}});
}

} // namespace

extern "C" {

kiln_status_t kiln_npy_read_f32(const char *path, kiln_array_t **out_array) {
  return guard([&]() -> kiln_status_t {
    if (!path || !out_array)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_npy_read_f32: NULL argument");
    *out_array = nullptr;
    return readNpy(path, KILN_DTYPE_F32, out_array);
  });
}

kiln_status_t kiln_npy_read_i64(const char *path, kiln_array_t **out_array) {
  return guard([&]() -> kiln_status_t {
    if (!path || !out_array)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_npy_read_i64: NULL argument");
    *out_array = nullptr;
    return readNpy(path, KILN_DTYPE_I64, out_array);
  });
}

kiln_status_t kiln_npy_write_f32(const char *path, const float *data, size_t rank,
                                 const int64_t *shape) {
  return guard([&]() -> kiln_status_t {
    if (!path || (rank > 0 && !shape))
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_npy_write_f32: NULL argument");
    if (rank > KILN_MAX_RANK)
      return makeStatus(KILN_INVALID_ARGUMENT, std::string(path) + ": rank " +
                                                   std::to_string(rank) + " is too large");
    return writeNpy(path, data, rank, shape);
  });
}

} // extern "C"

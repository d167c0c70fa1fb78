//===- NpyFuzzer.cpp - libFuzzer target for the NPY reader ----------------===//
//
// Each input is a whole .npy file, read through the runtime's reader
// (kiln_npy_read_f32, what a generated program's --input runs). Besides
// what the sanitizers catch, it aborts on the reader's promises
// (runtime/include/kiln/runtime/npy.h):
//
//   1. a failed read returns a message that starts with the path, holds no
//      control character (the header's text is escaped) and no array;
//   2. a read array is float32 of at most KILN_MAX_RANK dimensions, its
//      count is the product of its shape, the header (magic, version, its
//      length) and the data tile the file exactly, and the values are the
//      file's: its bytes for '<f4', each double rounded for '<f8'.
//
//===----------------------------------------------------------------------===//
#include "FuzzSupport.h"
#include "kiln/runtime/npy.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void fail(const char *what) { kiln::fuzz::abortWith("npy fuzzer", what); }

using kiln::fuzz::MemFile;

using kiln::fuzz::hasControlCharacter;

void checkRead(const kiln_array_t *array, const uint8_t *data, size_t size) {
  if (kiln_array_dtype(array) != KILN_DTYPE_F32)
    fail("the array is not float32");
  size_t rank = kiln_array_rank(array);
  if (rank > KILN_MAX_RANK)
    fail("the array has more dimensions than KILN_MAX_RANK");
  uint64_t count = 1;
  for (size_t d = 0; d < rank; ++d) {
    int64_t extent = kiln_array_shape(array)[d];
    if (extent < 0)
      fail("a negative extent");
    count *= static_cast<uint64_t>(extent);
  }
  if (count != kiln_array_count(array))
    fail("count is not the product of the shape");
  if (size < 10 || (data[6] != 1 && size < 12))
    fail("read a file shorter than its preamble");
  size_t preamble = data[6] == 1 ? 10 : 12;
  uint64_t headerSize = data[6] == 1 ? data[8] | data[9] << 8
                                     : uint64_t(data[8]) | uint64_t(data[9]) << 8 |
                                           uint64_t(data[10]) << 16 | uint64_t(data[11]) << 24;
  if (headerSize > size - preamble)
    fail("read a file whose header runs past its end");
  const uint8_t *values = data + preamble + headerSize;
  uint64_t dataBytes = size - preamble - headerSize;
  const auto *out = static_cast<const float *>(kiln_array_const_data(array));
  if (dataBytes == count * 4) {
    // '<f4' (an '<f8' file of this size would need half as many elements).
    if (count > 0 && std::memcmp(out, values, count * 4) != 0)
      fail("the floats are not the file's bytes");
  } else if (dataBytes == count * 8) {
    for (uint64_t i = 0; i < count; ++i) {
      double value;
      std::memcpy(&value, values + 8 * i, 8);
      float expected = static_cast<float>(value);
      if (std::memcmp(&expected, &out[i], 4) != 0 && !(std::isnan(expected) && std::isnan(out[i])))
        fail("a double was not rounded to the nearest float");
    }
  } else {
    fail("the data is not exactly as long as the shape says");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MemFile input("fuzz.npy", data, size);
  kiln_array_t *array = nullptr;
  kiln_status_t status = kiln_npy_read_f32(input.path.c_str(), &array);
  if (status) {
    if (array)
      fail("a failed read returned an array");
    const char *message = kiln_status_message(status);
    if (kiln_status_code(status) != KILN_OUT_OF_MEMORY &&
        std::strncmp(message, input.path.c_str(), input.path.size()) != 0)
      fail("a failed read's message does not start with the path");
    if (hasControlCharacter(message))
      fail("a message holds a control character");
    kiln_status_free(status);
    return 0;
  }
  checkRead(array, data, size);
  kiln_array_free(array);
  return 0;
}

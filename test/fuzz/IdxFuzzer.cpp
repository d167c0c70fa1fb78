//===- IdxFuzzer.cpp - libFuzzer target for the IDX reader ----------------===//
//
// Each input is a whole IDX file, plain or gzip-compressed, read through the
// runtime's reader (kiln_idx_read, what a generated program's --images and
// --labels run). Besides what the sanitizers catch, it aborts on the
// reader's promises (runtime/include/kiln/runtime/idx.h):
//
//   1. a failed read returns a message that starts with the path, holds no
//      control character, and no array;
//   2. a read array is unsigned bytes of 1 to 4 dimensions, at most
//      KILN_IDX_MAX_DATA_SIZE of them, its count the product of its shape;
//   3. its bytes are the file's: for a plain file the bytes after the
//      header, exactly; for gzip (1f 8b) what zlib's own gzread makes of the
//      file, exactly: the magic, the dimensions, the data and nothing after.
//      gzread is lenient (a missing trailer or junk after the stream pass),
//      so the reader may refuse what it reads, never accept what it refuses
//      or read different bytes.
//
//===----------------------------------------------------------------------===//
#include "FuzzSupport.h"
#include "kiln/runtime/idx.h"

#include <zlib.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void fail(const char *what) { kiln::fuzz::abortWith("idx fuzzer", what); }

using kiln::fuzz::MemFile;

using kiln::fuzz::hasControlCharacter;

/// What gzread makes of the file, up to `limit` bytes (a read array is at
/// most that much plus its header, so a bomb costs no more).
std::string gunzipped(const std::string &path, size_t limit) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file)
    fail("gzopen failed");
  std::string out;
  char buffer[65536];
  int got;
  while (out.size() < limit && (got = gzread(file, buffer, sizeof buffer)) > 0)
    out.append(buffer, static_cast<size_t>(got));
  gzclose(file);
  return out;
}

void checkRead(const kiln_array_t *array, const MemFile &input, const uint8_t *data,
               size_t size) {
  if (kiln_array_dtype(array) != KILN_DTYPE_U8)
    fail("the array is not unsigned bytes");
  size_t rank = kiln_array_rank(array);
  if (rank < 1 || rank > 4)
    fail("the array does not have 1 to 4 dimensions");
  uint64_t count = 1;
  for (size_t d = 0; d < rank; ++d)
    count *= static_cast<uint64_t>(kiln_array_shape(array)[d]);
  if (count != kiln_array_count(array) || count > KILN_IDX_MAX_DATA_SIZE)
    fail("count is not the product of the shape, or above the limit");
  bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  size_t headerSize = 4 + 4 * rank;
  std::string bytes = gzip ? gunzipped(input.path, headerSize + count + 1)
                           : std::string(reinterpret_cast<const char *>(data), size);
  if (bytes.size() != headerSize + count)
    fail("the file does not hold exactly the header and the data");
  auto *u = reinterpret_cast<const uint8_t *>(bytes.data());
  if (u[0] != 0 || u[1] != 0 || u[2] != 8 || u[3] != rank)
    fail("the magic does not say what was read");
  for (size_t d = 0; d < rank; ++d) {
    const uint8_t *e = u + 4 + 4 * d;
    int64_t extent = int64_t(e[0]) << 24 | e[1] << 16 | e[2] << 8 | e[3];
    if (extent != kiln_array_shape(array)[d])
      fail("an extent is not the header's");
  }
  if (count > 0 && std::memcmp(kiln_array_const_data(array), u + headerSize, count) != 0)
    fail("the data is not the file's");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MemFile input("fuzz.idx", data, size);
  kiln_array_t *array = nullptr;
  kiln_status_t status = kiln_idx_read(input.path.c_str(), &array);
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
  checkRead(array, input, data, size);
  kiln_array_free(array);
  return 0;
}

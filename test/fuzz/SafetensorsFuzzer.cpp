//===- SafetensorsFuzzer.cpp - libFuzzer target for the weights reader ----===//
//
// Each input is a whole safetensors file, opened through the runtime's C
// reader (kiln_safetensors_open, the code generated models run on a user's
// checkpoint with --weights=external). Besides what the sanitizers catch, it
// aborts on the reader's promises (runtime/include/kiln/runtime/safetensors.h):
//
//   1. a failed open returns a non-empty message and no file;
//   2. an opened file's tensors are sorted by name, each count is the product
//      of its shape and byte_size = count × dtype size, their byte sizes add
//      up to the data buffer (the file minus 8 bytes and the header), and
//      every tensor reads back as float and (integer dtypes) as int64;
//   3. metadata keys are sorted and each key finds its value.
//
//===----------------------------------------------------------------------===//
#include "FuzzSupport.h"
#include "kiln/runtime/safetensors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const char *what) { kiln::fuzz::abortWith("safetensors fuzzer", what); }

using kiln::fuzz::MemFile;

bool isInteger(kiln_dtype_t dtype) {
  return dtype != KILN_DTYPE_F16 && dtype != KILN_DTYPE_BF16 && dtype != KILN_DTYPE_F32 &&
         dtype != KILN_DTYPE_F64;
}

void checkOpened(kiln_safetensors_t *file, const uint8_t *data, size_t fileSize) {
  uint64_t headerSize = 0;
  if (fileSize < 8)
    fail("opened a file shorter than its header length");
  for (int i = 7; i >= 0; --i)
    headerSize = headerSize << 8 | data[i];
  size_t count = kiln_safetensors_count(file);
  uint64_t dataBytes = 0;
  std::string previous;
  for (size_t i = 0; i < count; ++i) {
    kiln_tensor_info_t info;
    if (kiln_status_t status = kiln_safetensors_info(file, i, &info)) {
      kiln_status_free(status);
      fail("info failed for an index below count");
    }
    if (i > 0 && !(previous < std::string(info.name)))
      fail("tensors not sorted by name, or a duplicate name");
    previous = info.name;
    uint64_t elements = 1;
    for (size_t d = 0; d < info.rank; ++d)
      elements *= static_cast<uint64_t>(info.shape[d]);
    if (elements != info.count || info.byte_size != info.count * kiln_dtype_size(info.dtype))
      fail("count or byte_size disagrees with shape and dtype");
    dataBytes += info.byte_size;
    std::vector<float> values(info.count);
    if (kiln_status_t status =
            kiln_safetensors_read_f32(file, info.name, info.count, values.data())) {
      kiln_status_free(status);
      fail("read_f32 failed on an opened file");
    }
    if (isInteger(info.dtype)) {
      std::vector<int64_t> ints(info.count);
      kiln_status_t status = kiln_safetensors_read_i64(file, info.name, info.count, ints.data());
      if (status && kiln_status_code(status) != KILN_OUT_OF_RANGE)
        fail("read_i64 failed on an integer tensor other than by range");
      kiln_status_free(status);
    }
  }
  if (dataBytes != fileSize - 8 - headerSize)
    fail("the tensors do not tile the data buffer exactly");
  std::string previousKey;
  for (size_t i = 0, e = kiln_safetensors_metadata_count(file); i < e; ++i) {
    const char *key = nullptr, *value = nullptr, *found = nullptr;
    if (kiln_status_t status = kiln_safetensors_metadata_at(file, i, &key, &value)) {
      kiln_status_free(status);
      fail("metadata_at failed for an index below count");
    }
    if (i > 0 && !(previousKey < std::string(key)))
      fail("metadata keys not sorted, or a duplicate key");
    previousKey = key;
    kiln_status_t status = kiln_safetensors_metadata_get(file, key, &found);
    if (status || std::strcmp(found, value) != 0)
      fail("metadata_get does not find metadata_at's value");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MemFile input("fuzz.safetensors", data, size);
  kiln_safetensors_t *file = nullptr;
  kiln_status_t status = kiln_safetensors_open(input.path.c_str(), &file);
  if (status) {
    if (file)
      fail("a failed open returned a file");
    if (kiln_status_message(status)[0] == '\0')
      fail("a failed open has an empty message");
    kiln_status_free(status);
    return 0;
  }
  checkOpened(file, data, size);
  kiln_safetensors_close(file);
  return 0;
}

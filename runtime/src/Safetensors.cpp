//===- Safetensors.cpp - Reading safetensors files ------------------------===//
#include "kiln/runtime/safetensors.h"

#include "SafetensorsHeader.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace kiln::runtime;

struct kiln_safetensors_s {
  std::string path;
  AlignedBytes storage; // header and data, laid out so that data is aligned
  const uint8_t *data = nullptr;
  uint64_t dataSize = 0;
  SafetensorsHeader header;
};

namespace {

uint64_t loadLittleU64(const uint8_t *p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = value << 8 | p[i];
  return value;
}

template <typename T> T load(const uint8_t *p) {
  T value; // memcpy: offsets in a file need not be aligned for T
  std::memcpy(&value, p, sizeof value);
  return value;
}

float floatFromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// IEEE binary16 to binary32, exactly (every half is a float).
float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 31) // infinity or NaN, payload kept
    return floatFromBits(sign | 0x7f800000u | mantissa << 13);
  // Subnormal: mantissa * 2^-24; normal: (1024 + mantissa) * 2^(exponent-25).
  float magnitude =
      exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -24)
                    : std::ldexp(static_cast<float>(mantissa | 0x400),
                                 static_cast<int>(exponent) - 25);
  return sign ? -magnitude : magnitude;
}

// bfloat16 is the top half of a binary32.
float bfloat16ToFloat(uint16_t b) {
  return floatFromBits(static_cast<uint32_t>(b) << 16);
}

float elementAsFloat(kiln_dtype_t dtype, const uint8_t *p) {
  switch (dtype) {
  case KILN_DTYPE_F32: return load<float>(p);
  case KILN_DTYPE_F64: return static_cast<float>(load<double>(p));
  case KILN_DTYPE_F16: return halfToFloat(load<uint16_t>(p));
  case KILN_DTYPE_BF16: return bfloat16ToFloat(load<uint16_t>(p));
  case KILN_DTYPE_I64: return static_cast<float>(load<int64_t>(p));
  case KILN_DTYPE_I32: return static_cast<float>(load<int32_t>(p));
  case KILN_DTYPE_I16: return load<int16_t>(p);
  case KILN_DTYPE_I8: return load<int8_t>(p);
  case KILN_DTYPE_U64: return static_cast<float>(load<uint64_t>(p));
  case KILN_DTYPE_U32: return static_cast<float>(load<uint32_t>(p));
  case KILN_DTYPE_U16: return load<uint16_t>(p);
  case KILN_DTYPE_U8: return load<uint8_t>(p);
  case KILN_DTYPE_BOOL: return *p ? 1.0f : 0.0f;
  }
  return 0.0f;
}

bool isInteger(kiln_dtype_t dtype) {
  return dtype != KILN_DTYPE_F32 && dtype != KILN_DTYPE_F64 &&
         dtype != KILN_DTYPE_F16 && dtype != KILN_DTYPE_BF16;
}

// The element as int64 for integer dtypes; false if a U64 does not fit.
bool elementAsInt64(kiln_dtype_t dtype, const uint8_t *p, int64_t *out) {
  switch (dtype) {
  case KILN_DTYPE_I64: *out = load<int64_t>(p); return true;
  case KILN_DTYPE_I32: *out = load<int32_t>(p); return true;
  case KILN_DTYPE_I16: *out = load<int16_t>(p); return true;
  case KILN_DTYPE_I8: *out = load<int8_t>(p); return true;
  case KILN_DTYPE_U64: {
    uint64_t value = load<uint64_t>(p);
    *out = static_cast<int64_t>(value);
    return value <= static_cast<uint64_t>(INT64_MAX);
  }
  case KILN_DTYPE_U32: *out = load<uint32_t>(p); return true;
  case KILN_DTYPE_U16: *out = load<uint16_t>(p); return true;
  case KILN_DTYPE_U8: *out = load<uint8_t>(p); return true;
  case KILN_DTYPE_BOOL: *out = *p ? 1 : 0; return true;
  default: return false;
  }
}

void fillInfo(const TensorEntry &t, kiln_tensor_info_t *out) {
  out->name = t.name.c_str();
  out->dtype = t.dtype;
  out->rank = t.shape.size();
  out->shape = t.shape.data();
  out->count = t.count;
  out->byte_size = t.end - t.begin;
}

const TensorEntry *findTensor(const kiln_safetensors_t *file, const char *name) {
  const auto &tensors = file->header.tensors;
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const TensorEntry &t, const char *n) { return t.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

// Looks up `name` for the entry point `fn`, checking the common arguments.
kiln_status_t lookup(const char *fn, const kiln_safetensors_t *file,
                     const char *name, const TensorEntry **out) {
  if (!file || !name)
    return makeStatus(KILN_INVALID_ARGUMENT, std::string(fn) + ": file or name is NULL");
  *out = findTensor(file, name);
  if (!*out)
    return makeStatus(KILN_NOT_FOUND, file->path + ": no tensor '" + name + "'");
  return nullptr;
}

kiln_status_t checkCount(const kiln_safetensors_t *file, const TensorEntry &t,
                         size_t count, const void *values) {
  if (count != t.count)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      file->path + ": tensor '" + t.name + "' has " +
                          std::to_string(t.count) + " elements (shape " +
                          formatShape(t.shape) + ") but the destination holds " +
                          std::to_string(count));
  if (!values && count > 0)
    return makeStatus(KILN_INVALID_ARGUMENT, file->path + ": destination is NULL");
  return nullptr;
}

kiln_status_t openFile(const std::string &path, kiln_safetensors_t **out_file) {
  InputFile input;
  KILN_RETURN_IF_ERROR(input.open(path));
  if (input.size() < 8)
    return makeStatus(KILN_DATA_LOSS, path + ": file has " +
                                          std::to_string(input.size()) +
                                          " bytes, fewer than the 8 of the header length");
  uint8_t prefix[8];
  KILN_RETURN_IF_ERROR(input.readAt(0, prefix, 8));
  uint64_t headerSize = loadLittleU64(prefix);
  if (headerSize > KILN_SAFETENSORS_MAX_HEADER_SIZE)
    return makeStatus(KILN_DATA_LOSS, path + ": header length " +
                                          std::to_string(headerSize) +
                                          " exceeds the limit of 100000000 bytes");
  if (headerSize > input.size() - 8)
    return makeStatus(KILN_DATA_LOSS, path + ": header length " +
                                          std::to_string(headerSize) +
                                          " runs past the end of the file (" +
                                          std::to_string(input.size()) + " bytes)");
  auto file = std::make_unique<kiln_safetensors_s>();
  file->path = path;
  file->dataSize = input.size() - 8 - headerSize;
  // Place the header so that the data buffer starts on a 64-byte boundary.
  size_t pad = (kAlignment - headerSize % kAlignment) % kAlignment;
  uint64_t total = pad + headerSize + file->dataSize;
  if (total > SIZE_MAX || !(file->storage = allocateAligned(total)))
    return makeStatus(KILN_OUT_OF_MEMORY, path + ": cannot allocate " +
                                              std::to_string(total) + " bytes");
  uint8_t *header = file->storage.get() + pad;
  KILN_RETURN_IF_ERROR(input.readAt(8, header, headerSize + file->dataSize));
  file->data = header + headerSize;
  KILN_RETURN_IF_ERROR(parseSafetensorsHeader(
      path, std::string_view(reinterpret_cast<const char *>(header), headerSize),
      file->dataSize, file->header));
  *out_file = file.release();
  return nullptr;
}

} // namespace

extern "C" {

kiln_status_t kiln_safetensors_open(const char *path, kiln_safetensors_t **out_file) {
  return guard([&]() -> kiln_status_t {
    if (!path || !out_file)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_open: path or out_file is NULL");
    *out_file = nullptr;
    return openFile(path, out_file);
  });
}

void kiln_safetensors_close(kiln_safetensors_t *file) { delete file; }

size_t kiln_safetensors_count(const kiln_safetensors_t *file) {
  return file ? file->header.tensors.size() : 0;
}

kiln_status_t kiln_safetensors_info(const kiln_safetensors_t *file, size_t index,
                                    kiln_tensor_info_t *out_info) {
  return guard([&]() -> kiln_status_t {
    if (!file || !out_info)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_safetensors_info: NULL argument");
    if (index >= file->header.tensors.size())
      return makeStatus(KILN_OUT_OF_RANGE,
                        file->path + ": tensor index " + std::to_string(index) +
                            " but the file has " +
                            std::to_string(file->header.tensors.size()));
    fillInfo(file->header.tensors[index], out_info);
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_find(const kiln_safetensors_t *file, const char *name,
                                    kiln_tensor_info_t *out_info) {
  return guard([&]() -> kiln_status_t {
    const TensorEntry *t;
    KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_find", file, name, &t));
    if (!out_info)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_safetensors_find: out_info is NULL");
    fillInfo(*t, out_info);
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_data(const kiln_safetensors_t *file, const char *name,
                                    const void **out_data, size_t *out_size) {
  return guard([&]() -> kiln_status_t {
    const TensorEntry *t;
    KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_data", file, name, &t));
    if (!out_data || !out_size)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_safetensors_data: NULL output");
    *out_data = file->data + t->begin;
    *out_size = t->end - t->begin;
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_read_f32(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        float *out_values) {
  return guard([&]() -> kiln_status_t {
    const TensorEntry *t;
    KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_read_f32", file, name, &t));
    KILN_RETURN_IF_ERROR(checkCount(file, *t, count, out_values));
    const uint8_t *p = file->data + t->begin;
    size_t size = kiln_dtype_size(t->dtype);
    for (size_t i = 0; i < count; ++i, p += size)
      out_values[i] = elementAsFloat(t->dtype, p);
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_read_i64(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        int64_t *out_values) {
  return guard([&]() -> kiln_status_t {
    const TensorEntry *t;
    KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_read_i64", file, name, &t));
    if (!isInteger(t->dtype))
      return makeStatus(KILN_INVALID_ARGUMENT,
                        file->path + ": tensor '" + t->name + "' is " +
                            kiln_dtype_name(t->dtype) + ", not an integer dtype");
    KILN_RETURN_IF_ERROR(checkCount(file, *t, count, out_values));
    const uint8_t *p = file->data + t->begin;
    size_t size = kiln_dtype_size(t->dtype);
    for (size_t i = 0; i < count; ++i, p += size)
      if (!elementAsInt64(t->dtype, p, &out_values[i]))
        return makeStatus(KILN_OUT_OF_RANGE,
                          file->path + ": tensor '" + t->name + "': element " +
                              std::to_string(i) + " does not fit in int64");
    return nullptr;
  });
}

size_t kiln_safetensors_metadata_count(const kiln_safetensors_t *file) {
  return file ? file->header.metadata.size() : 0;
}

kiln_status_t kiln_safetensors_metadata_at(const kiln_safetensors_t *file,
                                           size_t index, const char **out_key,
                                           const char **out_value) {
  return guard([&]() -> kiln_status_t {
    if (!file || !out_key || !out_value)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_metadata_at: NULL argument");
    if (index >= file->header.metadata.size())
      return makeStatus(KILN_OUT_OF_RANGE, file->path + ": metadata index " +
                                               std::to_string(index) + " out of range");
    *out_key = file->header.metadata[index].first.c_str();
    *out_value = file->header.metadata[index].second.c_str();
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_metadata_get(const kiln_safetensors_t *file,
                                            const char *key,
                                            const char **out_value) {
  return guard([&]() -> kiln_status_t {
    if (!file || !key || !out_value)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_metadata_get: NULL argument");
    for (const auto &[k, v] : file->header.metadata)
      if (k == key) {
        *out_value = v.c_str();
        return nullptr;
      }
    return makeStatus(KILN_NOT_FOUND,
                      file->path + ": no metadata key '" + key + "'");
  });
}

} // extern "C"

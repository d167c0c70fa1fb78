/*===- Safetensors.c - Reading safetensors files --------------------------===*
 *
 * C11 with no C++ runtime, so that generated C libraries can read
 * checkpoints with nothing but libc (the writer is C++, in
 * SafetensorsWriter.cpp).
 *
 * Opening reads and checks the header only; a tensor's bytes are read
 * (pread, so threads may share the descriptor) when it is asked for. A file
 * whose size is all that is wrong with it, 100 GB of sparse zeros or a
 * well-formed header over 100 GB of data, so costs its first bytes, and a
 * caller that checks names and shapes first (kilnc, the weight loader)
 * never reads more than the tensors it takes.
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/safetensors.h"

#include "CSupport.h"
#include "SafetensorsHeader.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the safetensors reader assumes a little-endian host");

struct kiln_safetensors_s {
  char *path;
  kiln_input_file_t input; /* open until the reader is closed */
  uint64_t dataStart;      /* of the data buffer in the file */
  kiln_safetensors_header_t header;
};

static uint64_t loadLittleU64(const unsigned char *p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = value << 8 | p[i];
  return value;
}

/* memcpy: offsets in a file need not be aligned for the type. */
#define KILN_LOAD(type, p) (*(type *)memcpy(&(type){0}, (p), sizeof(type)))

static float floatFromBits(uint32_t bits) {
  float value;
  memcpy(&value, &bits, 4);
  return value;
}

/* IEEE binary16 to binary32, exactly (every half is a float). */
static float halfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 31) /* infinity or NaN, payload kept */
    return floatFromBits(sign | 0x7f800000u | mantissa << 13);
  /* Subnormal: mantissa * 2^-24; normal: (1024 + mantissa) * 2^(exponent-25).
   * Both products are exact, and the powers of two are built from their
   * bits, so no libm is needed. */
  float magnitude =
      exponent == 0 ? (float)mantissa * 0x1p-24f
                    : (float)(mantissa | 0x400) *
                          floatFromBits((exponent - 25 + 127) << 23);
  return sign ? -magnitude : magnitude;
}

/* bfloat16 is the top half of a binary32. */
static float bfloat16ToFloat(uint16_t b) { return floatFromBits((uint32_t)b << 16); }

static float elementAsFloat(kiln_dtype_t dtype, const unsigned char *p) {
  switch (dtype) {
  case KILN_DTYPE_F32: return KILN_LOAD(float, p);
  case KILN_DTYPE_F64: return (float)KILN_LOAD(double, p);
  case KILN_DTYPE_F16: return halfToFloat(KILN_LOAD(uint16_t, p));
  case KILN_DTYPE_BF16: return bfloat16ToFloat(KILN_LOAD(uint16_t, p));
  case KILN_DTYPE_I64: return (float)KILN_LOAD(int64_t, p);
  case KILN_DTYPE_I32: return (float)KILN_LOAD(int32_t, p);
  case KILN_DTYPE_I16: return KILN_LOAD(int16_t, p);
  case KILN_DTYPE_I8: return KILN_LOAD(int8_t, p);
  case KILN_DTYPE_U64: return (float)KILN_LOAD(uint64_t, p);
  case KILN_DTYPE_U32: return (float)KILN_LOAD(uint32_t, p);
  case KILN_DTYPE_U16: return KILN_LOAD(uint16_t, p);
  case KILN_DTYPE_U8: return *p;
  case KILN_DTYPE_BOOL: return *p ? 1.0f : 0.0f;
  }
  return 0.0f;
}

static bool isInteger(kiln_dtype_t dtype) {
  return dtype != KILN_DTYPE_F32 && dtype != KILN_DTYPE_F64 &&
         dtype != KILN_DTYPE_F16 && dtype != KILN_DTYPE_BF16;
}

/* The element as int64 for integer dtypes; false if a U64 does not fit. */
static bool elementAsInt64(kiln_dtype_t dtype, const unsigned char *p, int64_t *out) {
  switch (dtype) {
  case KILN_DTYPE_I64: *out = KILN_LOAD(int64_t, p); return true;
  case KILN_DTYPE_I32: *out = KILN_LOAD(int32_t, p); return true;
  case KILN_DTYPE_I16: *out = KILN_LOAD(int16_t, p); return true;
  case KILN_DTYPE_I8: *out = KILN_LOAD(int8_t, p); return true;
  case KILN_DTYPE_U64: {
    uint64_t value = KILN_LOAD(uint64_t, p);
    *out = (int64_t)value;
    return value <= (uint64_t)INT64_MAX;
  }
  case KILN_DTYPE_U32: *out = KILN_LOAD(uint32_t, p); return true;
  case KILN_DTYPE_U16: *out = KILN_LOAD(uint16_t, p); return true;
  case KILN_DTYPE_U8: *out = *p; return true;
  case KILN_DTYPE_BOOL: *out = *p ? 1 : 0; return true;
  default: return false;
  }
}

static void fillInfo(const kiln_tensor_entry_t *t, kiln_tensor_info_t *out) {
  out->name = t->name;
  out->dtype = t->dtype;
  out->rank = t->rank;
  out->shape = t->shape;
  out->count = (size_t)t->count;
  out->byte_size = (size_t)(t->end - t->begin);
}

static int compareNameWithEntry(const void *name, const void *entry) {
  return strcmp(name, ((const kiln_tensor_entry_t *)entry)->name);
}

/* Looks up `name` for the entry point `fn`, checking the common arguments. */
static kiln_status_t lookup(const char *fn, const kiln_safetensors_t *file,
                            const char *name, const kiln_tensor_entry_t **out) {
  if (!file || !name)
    return kiln_status_make(KILN_INVALID_ARGUMENT, "%s: file or name is NULL", fn);
  *out = file->header.tensor_count
             ? bsearch(name, file->header.tensors, file->header.tensor_count,
                       sizeof *file->header.tensors, compareNameWithEntry)
             : NULL;
  if (!*out)
    return kiln_status_make(KILN_NOT_FOUND, "%s: no tensor '%s'", file->path, name);
  return NULL;
}

static kiln_status_t checkCount(const kiln_safetensors_t *file,
                                const kiln_tensor_entry_t *t, size_t count,
                                const void *values) {
  if (count != t->count) {
    char shape[KILN_SHAPE_TEXT_SIZE];
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "%s: tensor '%s' has %" PRIu64 " elements (shape %s) but "
                            "the destination holds %zu",
                            file->path, t->name, t->count,
                            kiln_format_shape(t->shape, t->rank, shape), count);
  }
  if (!values && count > 0)
    return kiln_status_make(KILN_INVALID_ARGUMENT, "%s: destination is NULL", file->path);
  return NULL;
}

/* The header length (the file's first 8 bytes, little-endian), checked
 * against the limit and the file's size. */
static kiln_status_t readHeaderSize(const kiln_input_file_t *input, uint64_t *out) {
  const char *path = input->path;
  unsigned char prefix[8];
  if (input->size < 8)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: file has %" PRIu64 " bytes, fewer than the 8 of "
                            "the header length", path, input->size);
  KILN_RETURN_IF_ERROR(kiln_input_file_read_at(input, 0, prefix, 8));
  uint64_t headerSize = loadLittleU64(prefix);
  if (headerSize > KILN_SAFETENSORS_MAX_HEADER_SIZE)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: header length %" PRIu64 " exceeds the limit of "
                            "100000000 bytes", path, headerSize);
  if (headerSize > input->size - 8)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: header length %" PRIu64 " runs past the end of "
                            "the file (%" PRIu64 " bytes)", path, headerSize,
                            input->size);
  *out = headerSize;
  return NULL;
}

/* Reads and checks the header of `file` (whose path is set) and keeps the
 * file open for its tensors. */
static kiln_status_t readHeader(kiln_safetensors_t *file) {
  const char *path = file->path;
  KILN_RETURN_IF_ERROR(kiln_input_file_open(&file->input, path));
  uint64_t headerSize = 0;
  KILN_RETURN_IF_ERROR(readHeaderSize(&file->input, &headerSize));
  file->dataStart = 8 + headerSize;
  char *header = malloc(headerSize ? (size_t)headerSize : 1);
  if (!header)
    return kiln_status_make(KILN_OUT_OF_MEMORY, "%s: cannot allocate %" PRIu64 " bytes",
                            path, headerSize);
  kiln_status_t status = kiln_input_file_read_at(&file->input, 8, header, (size_t)headerSize);
  if (!status)
    status = kiln_safetensors_header_parse(path, header, (size_t)headerSize,
                                           file->input.size - file->dataStart, &file->header);
  free(header);
  return status;
}

kiln_status_t kiln_safetensors_open(const char *path, kiln_safetensors_t **out_file) {
  if (!path || !out_file)
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "kiln_safetensors_open: path or out_file is NULL");
  *out_file = NULL;
  kiln_safetensors_t *file = calloc(1, sizeof *file);
  size_t length = strlen(path);
  if (!file || !(file->path = malloc(length + 1))) {
    free(file);
    return kiln_status_out_of_memory();
  }
  file->input.fd = -1;
  memcpy(file->path, path, length + 1);
  kiln_status_t status = readHeader(file);
  if (status) {
    kiln_safetensors_close(file);
    return status;
  }
  *out_file = file;
  return NULL;
}

void kiln_safetensors_close(kiln_safetensors_t *file) {
  if (!file)
    return;
  kiln_input_file_close(&file->input);
  kiln_safetensors_header_free(&file->header);
  free(file->path);
  free(file);
}

size_t kiln_safetensors_count(const kiln_safetensors_t *file) {
  return file ? file->header.tensor_count : 0;
}

kiln_status_t kiln_safetensors_info(const kiln_safetensors_t *file, size_t index,
                                    kiln_tensor_info_t *out_info) {
  if (!file || !out_info)
    return kiln_status_make(KILN_INVALID_ARGUMENT, "kiln_safetensors_info: NULL argument");
  if (index >= file->header.tensor_count)
    return kiln_status_make(KILN_OUT_OF_RANGE,
                            "%s: tensor index %zu but the file has %zu", file->path,
                            index, file->header.tensor_count);
  fillInfo(&file->header.tensors[index], out_info);
  return NULL;
}

kiln_status_t kiln_safetensors_find(const kiln_safetensors_t *file, const char *name,
                                    kiln_tensor_info_t *out_info) {
  const kiln_tensor_entry_t *t;
  KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_find", file, name, &t));
  if (!out_info)
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "kiln_safetensors_find: out_info is NULL");
  fillInfo(t, out_info);
  return NULL;
}

/* `n` bytes of tensor `t` from byte `offset` of its range into `dst`. */
static kiln_status_t readRange(const kiln_safetensors_t *file, const kiln_tensor_entry_t *t,
                               uint64_t offset, void *dst, size_t n) {
  return kiln_input_file_read_at(&file->input, file->dataStart + t->begin + offset, dst, n);
}

/* Tensor data is converted through a buffer of this many bytes, a multiple
 * of every element size. */
enum { kChunkSize = 16384 };

kiln_status_t kiln_safetensors_read_bytes(const kiln_safetensors_t *file, const char *name,
                                          size_t size, void *out_bytes) {
  const kiln_tensor_entry_t *t;
  KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_read_bytes", file, name, &t));
  if (size != t->end - t->begin)
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "%s: tensor '%s' has %" PRIu64 " bytes but the destination "
                            "holds %zu", file->path, t->name, t->end - t->begin, size);
  if (!out_bytes && size > 0)
    return kiln_status_make(KILN_INVALID_ARGUMENT, "%s: destination is NULL", file->path);
  return readRange(file, t, 0, out_bytes, size);
}

kiln_status_t kiln_safetensors_read_f32(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        float *out_values) {
  const kiln_tensor_entry_t *t;
  KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_read_f32", file, name, &t));
  KILN_RETURN_IF_ERROR(checkCount(file, t, count, out_values));
  if (t->dtype == KILN_DTYPE_F32) /* the bytes are the floats (little-endian host) */
    return readRange(file, t, 0, out_values, count * sizeof(float));
  size_t size = kiln_dtype_size(t->dtype);
  unsigned char chunk[kChunkSize];
  for (size_t done = 0; done < count;) {
    size_t n = count - done < kChunkSize / size ? count - done : kChunkSize / size;
    KILN_RETURN_IF_ERROR(readRange(file, t, done * size, chunk, n * size));
    for (size_t i = 0; i < n; ++i)
      out_values[done + i] = elementAsFloat(t->dtype, chunk + i * size);
    done += n;
  }
  return NULL;
}

kiln_status_t kiln_safetensors_read_i64(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        int64_t *out_values) {
  const kiln_tensor_entry_t *t;
  KILN_RETURN_IF_ERROR(lookup("kiln_safetensors_read_i64", file, name, &t));
  if (!isInteger(t->dtype))
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "%s: tensor '%s' is %s, not an integer dtype", file->path,
                            t->name, kiln_dtype_name(t->dtype));
  KILN_RETURN_IF_ERROR(checkCount(file, t, count, out_values));
  size_t size = kiln_dtype_size(t->dtype);
  unsigned char chunk[kChunkSize];
  for (size_t done = 0; done < count;) {
    size_t n = count - done < kChunkSize / size ? count - done : kChunkSize / size;
    KILN_RETURN_IF_ERROR(readRange(file, t, done * size, chunk, n * size));
    for (size_t i = 0; i < n; ++i)
      if (!elementAsInt64(t->dtype, chunk + i * size, &out_values[done + i]))
        return kiln_status_make(KILN_OUT_OF_RANGE,
                                "%s: tensor '%s': element %zu does not fit in int64",
                                file->path, t->name, done + i);
    done += n;
  }
  return NULL;
}

size_t kiln_safetensors_metadata_count(const kiln_safetensors_t *file) {
  return file ? file->header.metadata_count : 0;
}

kiln_status_t kiln_safetensors_metadata_at(const kiln_safetensors_t *file,
                                           size_t index, const char **out_key,
                                           const char **out_value) {
  if (!file || !out_key || !out_value)
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "kiln_safetensors_metadata_at: NULL argument");
  if (index >= file->header.metadata_count)
    return kiln_status_make(KILN_OUT_OF_RANGE, "%s: metadata index %zu out of range",
                            file->path, index);
  *out_key = file->header.metadata[index].key;
  *out_value = file->header.metadata[index].value;
  return NULL;
}

kiln_status_t kiln_safetensors_metadata_get(const kiln_safetensors_t *file,
                                            const char *key, const char **out_value) {
  if (!file || !key || !out_value)
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "kiln_safetensors_metadata_get: NULL argument");
  for (size_t i = 0; i < file->header.metadata_count; ++i)
    if (strcmp(file->header.metadata[i].key, key) == 0) {
      *out_value = file->header.metadata[i].value;
      return NULL;
    }
  return kiln_status_make(KILN_NOT_FOUND, "%s: no metadata key '%s'", file->path, key);
}

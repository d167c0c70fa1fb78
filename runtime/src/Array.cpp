//===- Array.cpp - Element types and kiln_array_t -------------------------===//
#include "Support.h"

using namespace kiln::runtime;

extern "C" {

const char *kiln_dtype_name(kiln_dtype_t dtype) {
  switch (dtype) {
  case KILN_DTYPE_F32: return "F32";
  case KILN_DTYPE_F64: return "F64";
  case KILN_DTYPE_F16: return "F16";
  case KILN_DTYPE_BF16: return "BF16";
  case KILN_DTYPE_I64: return "I64";
  case KILN_DTYPE_I32: return "I32";
  case KILN_DTYPE_I16: return "I16";
  case KILN_DTYPE_I8: return "I8";
  case KILN_DTYPE_U64: return "U64";
  case KILN_DTYPE_U32: return "U32";
  case KILN_DTYPE_U16: return "U16";
  case KILN_DTYPE_U8: return "U8";
  case KILN_DTYPE_BOOL: return "BOOL";
  }
  return "?";
}

size_t kiln_dtype_size(kiln_dtype_t dtype) {
  switch (dtype) {
  case KILN_DTYPE_F64: case KILN_DTYPE_I64: case KILN_DTYPE_U64: return 8;
  case KILN_DTYPE_F32: case KILN_DTYPE_I32: case KILN_DTYPE_U32: return 4;
  case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_I16:
  case KILN_DTYPE_U16: return 2;
  case KILN_DTYPE_I8: case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: return 1;
  }
  return 0;
}

kiln_status_t kiln_array_create(kiln_dtype_t dtype, size_t rank,
                                const int64_t *shape, kiln_array_t **out_array) {
  return guard([&]() -> kiln_status_t {
    if (!out_array)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_array_create: out_array is NULL");
    *out_array = nullptr;
    if (kiln_dtype_size(dtype) == 0)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_array_create: unknown dtype " +
                                                   std::to_string(dtype));
    if (rank > 0 && !shape)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_array_create: shape is NULL");
    if (rank > KILN_MAX_RANK)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_array_create: rank " +
                                                   std::to_string(rank) + " is too large");
    return newArray(dtype, std::vector<int64_t>(shape, shape + rank),
                    "kiln_array_create", out_array);
  });
}

void kiln_array_free(kiln_array_t *array) { delete array; }

kiln_dtype_t kiln_array_dtype(const kiln_array_t *array) { return array->dtype; }
size_t kiln_array_rank(const kiln_array_t *array) { return array->shape.size(); }
const int64_t *kiln_array_shape(const kiln_array_t *array) {
  return array->shape.data();
}
size_t kiln_array_count(const kiln_array_t *array) { return array->count; }
size_t kiln_array_byte_size(const kiln_array_t *array) { return array->byteSize; }
void *kiln_array_data(kiln_array_t *array) { return array->data.get(); }
const void *kiln_array_const_data(const kiln_array_t *array) {
  return array->data.get();
}

} // extern "C"

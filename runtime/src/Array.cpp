//===- Array.cpp - kiln_array_t (element types are in Dtype.c) ------------===//
#include "Support.h"

using namespace kiln::runtime;

extern "C" {

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

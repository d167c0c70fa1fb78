/* Kiln runtime: element types and dense arrays.
 *
 * A kiln_array_t is a dense, row-major (C order) array of one element type,
 * as returned by the NPY and IDX readers. Its data is 64-byte aligned, which
 * generated (Halide) code may rely on for vector loads and stores.
 *
 * Ownership: an array belongs to the caller who received it and is released
 * with kiln_array_free. Pointers returned by the accessors stay valid until
 * then.
 * Thread safety: accessors may be called from several threads at once; a
 * thread writing the data must not race with other readers or writers.
 */
#ifndef KILN_RUNTIME_ARRAY_H
#define KILN_RUNTIME_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types, named as safetensors names them. */
typedef enum kiln_dtype_e {
  KILN_DTYPE_F32 = 0,
  KILN_DTYPE_F64,
  KILN_DTYPE_F16,
  KILN_DTYPE_BF16,
  KILN_DTYPE_I64,
  KILN_DTYPE_I32,
  KILN_DTYPE_I16,
  KILN_DTYPE_I8,
  KILN_DTYPE_U64,
  KILN_DTYPE_U32,
  KILN_DTYPE_U16,
  KILN_DTYPE_U8,
  KILN_DTYPE_BOOL
} kiln_dtype_t;

/* The largest rank any Kiln array or tensor may have. NumPy allows 64; a
 * limit keeps hostile headers from asking for huge shape arrays. */
#define KILN_MAX_RANK 64

/* The safetensors name of `dtype` ("F32", "BF16", ...); "?" if unknown. */
const char *kiln_dtype_name(kiln_dtype_t dtype);
/* The size of one element in bytes; 0 if `dtype` is unknown. */
size_t kiln_dtype_size(kiln_dtype_t dtype);

typedef struct kiln_array_s kiln_array_t;

/* Allocates a zero-filled array. `shape` holds `rank` non-negative extents. */
kiln_status_t kiln_array_create(kiln_dtype_t dtype, size_t rank,
                                const int64_t *shape, kiln_array_t **out_array);
/* Releases `array`; NULL is allowed. */
void kiln_array_free(kiln_array_t *array);

kiln_dtype_t kiln_array_dtype(const kiln_array_t *array);
size_t kiln_array_rank(const kiln_array_t *array);
/* `rank` extents; valid until the array is freed. */
const int64_t *kiln_array_shape(const kiln_array_t *array);
/* The number of elements (the product of the shape; 1 for rank 0). */
size_t kiln_array_count(const kiln_array_t *array);
/* The size of the data in bytes. */
size_t kiln_array_byte_size(const kiln_array_t *array);
/* The data, 64-byte aligned (never NULL, even for 0 elements). */
void *kiln_array_data(kiln_array_t *array);
const void *kiln_array_const_data(const kiln_array_t *array);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_ARRAY_H */

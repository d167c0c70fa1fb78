/* Kiln runtime: NumPy .npy files of float32 (and int64 class labels).
 *
 * Reads versions 1.0, 2.0 and 3.0 with dtype '<f4' (or '<f8', converted to
 * float by rounding to nearest) in C order; labels as '<i8' only. The header dictionary is parsed
 * strictly: exactly the keys 'descr', 'fortran_order' and 'shape'.
 * Fortran order, big-endian data and other dtypes are rejected with a
 * message saying so; the data must be exactly as long as the shape says.
 *
 * Ownership: the array returned by kiln_npy_read_f32 belongs to the caller
 * (kiln_array_free). Thread safety: the functions share no state.
 */
#ifndef KILN_RUNTIME_NPY_H
#define KILN_RUNTIME_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NumPy itself refuses headers longer than this by default (max_header_size)
 * so that a hostile file cannot make it parse megabytes of dictionary. */
#define KILN_NPY_MAX_HEADER_SIZE 10000u

/* The largest array read, in bytes of float32 (2^30 elements): a batch
 * far above any Kiln runs at once, low enough that a hostile header over a
 * huge sparse file cannot make the reader allocate and read 100 GB. */
#define KILN_NPY_MAX_DATA_SIZE (1ull << 32)

/* Reads `path` (a regular file) into a new KILN_DTYPE_F32 array. The header
 * is checked, against the limit and the file's size too, before the data is
 * allocated or read. */
kiln_status_t kiln_npy_read_f32(const char *path, kiln_array_t **out_array);

/* Reads `path` (a regular file of dtype '<i8', as numpy saves int64 class
 * labels) into a new KILN_DTYPE_I64 array, with the same checks; any other
 * dtype (a float file included) is KILN_UNIMPLEMENTED, so labels are never
 * truncated from floats. At most KILN_NPY_MAX_DATA_SIZE / 8 elements. */
kiln_status_t kiln_npy_read_i64(const char *path, kiln_array_t **out_array);

/* Writes `rank` extents of `shape` worth of floats from `data` as a version
 * 1.0 file (2.0 if the header needs it), by the rules of output.h: a file
 * atomically (temporary file beside it, fsync, rename; on failure `path` is
 * untouched), a FIFO, character device or /dev/stdout in place. */
kiln_status_t kiln_npy_write_f32(const char *path, const float *data,
                                 size_t rank, const int64_t *shape);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_NPY_H */

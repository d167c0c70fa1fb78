/* Kiln runtime: IDX files (the MNIST / Fashion-MNIST format).
 *
 * Layout: a 4-byte magic (0, 0, type code, number of dimensions), one
 * big-endian u32 per dimension, then the data in C order. Kiln reads
 * unsigned-byte files (type code 0x08), e.g. images (magic 0x00000803, three
 * dimensions) and labels (0x00000801, one dimension), plain or
 * gzip-compressed. Compression is recognised by the gzip magic bytes
 * (1f 8b), not by the file name. The data must be exactly as long as the
 * dimensions say (no truncation, no trailing bytes) and at most
 * KILN_IDX_MAX_DATA_SIZE bytes.
 *
 * Ownership: the array returned belongs to the caller (kiln_array_free).
 * Thread safety: the functions share no state.
 */
#ifndef KILN_RUNTIME_IDX_H
#define KILN_RUNTIME_IDX_H

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 GiB: far above any IDX data set Kiln trains on (Fashion-MNIST's training
 * images are 47 MB), low enough that a hostile header cannot make Kiln
 * allocate the 16 EiB its four u32 dimensions could describe. */
#define KILN_IDX_MAX_DATA_SIZE (1ull << 30)

/* Reads `path` into a new KILN_DTYPE_U8 array whose shape is the file's
 * dimensions (e.g. [10000, 28, 28] or [10000]). */
kiln_status_t kiln_idx_read(const char *path, kiln_array_t **out_array);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_IDX_H */

/* Kiln runtime: safetensors checkpoints (reader and writer).
 *
 * Format: an 8-byte little-endian header length N, N bytes of a JSON object
 *   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [...],
 *    "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to the start of that buffer.
 *
 * kiln_safetensors_open reads the header and checks everything the format
 * promises before returning: the file is a regular file (a FIFO, device or
 * directory is refused before anything is read, without blocking), the
 * header fits the file and is at most 100 MB,
 * is a JSON object without duplicate keys, every entry has exactly dtype,
 * shape and data_offsets of the right types, dtypes are known, each shape
 * fits its byte range (overflow-checked), and the byte ranges tile the data
 * buffer exactly: from 0, with no overlap and no hole, to the end of the file.
 * A failure's message names the file and, where there is one, the tensor.
 * A tensor's data is read from the file when it is asked for, so opening a
 * huge file costs no more than its header, and a caller that checks names
 * and shapes first reads only the tensors it takes; the file stays open
 * until the reader is closed (if it shrinks meanwhile, a read fails).
 *
 * Ownership: a reader (kiln_safetensors_t) or writer belongs to its creator
 * and is released with kiln_safetensors_close / kiln_safetensors_writer_free.
 * Names, shapes and metadata strings handed out by a reader stay valid until
 * it is closed. The writer copies everything it is given.
 * Thread safety: a reader is immutable after open, so any of its functions
 * may be called from several threads at once. A writer must not be used from
 * two threads at once.
 */
#ifndef KILN_RUNTIME_SAFETENSORS_H
#define KILN_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The header may be at most this many bytes, as in the Python library: a
 * larger one is treated as hostile rather than parsed. */
#define KILN_SAFETENSORS_MAX_HEADER_SIZE 100000000u

typedef struct kiln_safetensors_s kiln_safetensors_t;

/* What a reader knows about one tensor. Pointers are owned by the reader. */
typedef struct kiln_tensor_info_t {
  const char *name;
  kiln_dtype_t dtype;
  size_t rank;
  const int64_t *shape; /* `rank` extents */
  size_t count;         /* number of elements */
  size_t byte_size;     /* count * kiln_dtype_size(dtype) */
} kiln_tensor_info_t;

/* ---- Reader ------------------------------------------------------------ */

/* Opens the file at `path` and reads and validates its header. */
kiln_status_t kiln_safetensors_open(const char *path,
                                    kiln_safetensors_t **out_file);
/* Releases `file`; NULL is allowed. */
void kiln_safetensors_close(kiln_safetensors_t *file);

/* The number of tensors. Tensors are indexed in order of name (bytewise). */
size_t kiln_safetensors_count(const kiln_safetensors_t *file);
/* Info of tensor `index` (< count), else KILN_OUT_OF_RANGE. */
kiln_status_t kiln_safetensors_info(const kiln_safetensors_t *file,
                                    size_t index,
                                    kiln_tensor_info_t *out_info);
/* Info of the tensor called `name`, else KILN_NOT_FOUND. */
kiln_status_t kiln_safetensors_find(const kiln_safetensors_t *file,
                                    const char *name,
                                    kiln_tensor_info_t *out_info);
/* Copies the raw little-endian bytes of tensor `name` into `out_bytes`,
 * which holds exactly `size` bytes, its byte_size (else
 * KILN_INVALID_ARGUMENT). */
kiln_status_t kiln_safetensors_read_bytes(const kiln_safetensors_t *file,
                                          const char *name, size_t size,
                                          void *out_bytes);
/* Converts tensor `name` to float into `out_values`, which holds exactly
 * `count` elements (else KILN_INVALID_ARGUMENT). Every dtype converts:
 * floats by IEEE rounding (F64 to nearest), integers to the nearest float
 * (so integers above 2^24 may round), BOOL to 0 or 1. */
kiln_status_t kiln_safetensors_read_f32(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        float *out_values);
/* Copies integer or BOOL tensor `name` (e.g. BatchNorm's
 * num_batches_tracked) into `out_values` as int64. Float tensors are
 * KILN_INVALID_ARGUMENT; a U64 value above INT64_MAX is KILN_OUT_OF_RANGE. */
kiln_status_t kiln_safetensors_read_i64(const kiln_safetensors_t *file,
                                        const char *name, size_t count,
                                        int64_t *out_values);

/* Metadata ("__metadata__"), indexed in order of key. */
size_t kiln_safetensors_metadata_count(const kiln_safetensors_t *file);
kiln_status_t kiln_safetensors_metadata_at(const kiln_safetensors_t *file,
                                           size_t index, const char **out_key,
                                           const char **out_value);
/* The value for `key`, else KILN_NOT_FOUND. */
kiln_status_t kiln_safetensors_metadata_get(const kiln_safetensors_t *file,
                                            const char *key,
                                            const char **out_value);

/* ---- Writer ------------------------------------------------------------ */

typedef struct kiln_safetensors_writer_s kiln_safetensors_writer_t;

kiln_status_t kiln_safetensors_writer_create(
    kiln_safetensors_writer_t **out_writer);
/* Releases `writer`; NULL is allowed. */
void kiln_safetensors_writer_free(kiln_safetensors_writer_t *writer);
/* Copies a tensor of `rank` extents in `shape` whose little-endian bytes are
 * at `data` (which may be NULL only when the tensor has no elements). Names
 * must be non-empty and not "__metadata__"; a repeated name is
 * KILN_ALREADY_EXISTS. */
kiln_status_t kiln_safetensors_writer_add(kiln_safetensors_writer_t *writer,
                                          const char *name, kiln_dtype_t dtype,
                                          size_t rank, const int64_t *shape,
                                          const void *data);
/* Sets (or replaces) a metadata entry. */
kiln_status_t kiln_safetensors_writer_set_metadata(
    kiln_safetensors_writer_t *writer, const char *key, const char *value);
/* Writes the file by the rules of output.h: a file atomically (a temporary
 * file beside it, fsync, then rename over it; on failure the temporary file
 * is removed and `path` is untouched), a FIFO, character device or
 * /dev/stdout in place. Tensors are stored in order of name and the header is
 * padded with spaces to a multiple of 8 bytes, as the Python library does. */
kiln_status_t kiln_safetensors_writer_write(
    const kiln_safetensors_writer_t *writer, const char *path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_SAFETENSORS_H */

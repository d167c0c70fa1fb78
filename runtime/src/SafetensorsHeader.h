/*===- SafetensorsHeader.h - Parsing and checking a safetensors header ----===*/
#ifndef KILN_RUNTIME_SRC_SAFETENSORSHEADER_H
#define KILN_RUNTIME_SRC_SAFETENSORSHEADER_H

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_tensor_entry_t {
  const char *name; /* no NUL inside, so a C string */
  kiln_dtype_t dtype;
  size_t rank;
  const int64_t *shape;
  uint64_t begin, end; /* byte range within the data buffer */
  uint64_t count;      /* elements */
} kiln_tensor_entry_t;

typedef struct kiln_metadata_entry_t {
  const char *key, *value;
} kiln_metadata_entry_t;

typedef struct kiln_arena_block_s kiln_arena_block_t;

typedef struct kiln_safetensors_header_t {
  kiln_tensor_entry_t *tensors; /* sorted by name (bytewise) */
  size_t tensor_count;
  kiln_metadata_entry_t *metadata; /* sorted by key */
  size_t metadata_count;
  kiln_arena_block_t *arena; /* every name, shape and metadata string */
} kiln_safetensors_header_t;

/* Parses the JSON header (`size` bytes at `json`) of the file `path` (named
 * in every message) and checks that its tensors tile a data buffer of
 * `data_size` bytes. On failure `out` is left empty. */
kiln_status_t kiln_safetensors_header_parse(const char *path, const char *json,
                                            size_t size, uint64_t data_size,
                                            kiln_safetensors_header_t *out);
/* Releases what kiln_safetensors_header_parse put in `header`. */
void kiln_safetensors_header_free(kiln_safetensors_header_t *header);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_SRC_SAFETENSORSHEADER_H */

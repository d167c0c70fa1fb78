/*===- CSupport.h - Internal helpers of the runtime's C part -------------===*
 *
 * Status construction, aligned allocation and POSIX file input for the C
 * sources (status, safetensors reader), callable from the C++ ones too so
 * that the runtime has one implementation of each. Not installed.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_RUNTIME_SRC_CSUPPORT_H
#define KILN_RUNTIME_SRC_CSUPPORT_H

#include "kiln/runtime/array.h"
#include "kiln/runtime/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A failure whose message is printf(`format`, ...) with its control
 * characters escaped (kiln_escape_controls). Never fails itself: if
 * the status cannot be allocated, the shared out-of-memory status comes back
 * instead. */
kiln_status_t kiln_status_make(kiln_status_code_t code, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The shared out-of-memory status: preallocated, so that reporting a failed
 * allocation needs none; kiln_status_free recognises and keeps it. */
kiln_status_t kiln_status_out_of_memory(void);

/* printf into a new malloc'ed string; NULL if memory runs out. */
char *kiln_format(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Room for any shape formatted by kiln_format_shape: KILN_MAX_RANK extents
 * of up to 20 characters, each with ", " before it, and the brackets. */
#define KILN_SHAPE_TEXT_SIZE (KILN_MAX_RANK * 22 + 3)
/* `rank` extents as "[128, 784]" into `buffer` (KILN_SHAPE_TEXT_SIZE bytes),
 * which it returns. */
const char *kiln_format_shape(const int64_t *shape, size_t rank, char *buffer);

/* The alignment of every buffer Kiln hands to generated code: the widest
 * vector Halide's AVX-512 code stores. */
#define KILN_ALIGNMENT 64
/* `size` bytes aligned to KILN_ALIGNMENT, released with free(); NULL when
 * they cannot be allocated. Never NULL for size 0 (one block is allocated,
 * so that empty arrays still have a valid pointer). */
void *kiln_aligned_alloc(size_t size);

/* The code of a failed open/create: NOT_FOUND for a missing file or
 * directory, IO_ERROR for anything else. */
kiln_status_code_t kiln_status_code_for_errno(int err);
/* strerror, thread-safe: the text lands in (or is pointed to instead of)
 * `buffer`, which should hold 256 bytes. */
const char *kiln_errno_text(int err, char *buffer, size_t size);

/* What a file that is not a regular file is, for messages: "a directory",
 * "a FIFO", ... (as kilnc's source reader says it, Driver.cpp). */
const char *kiln_file_kind(mode_t mode);

/* A regular file open for reading. `path` is borrowed: it must outlive the
 * file, and is named in every message. */
typedef struct kiln_input_file_t {
  const char *path;
  int fd; /* -1 when not open */
  uint64_t size;
} kiln_input_file_t;

/* Opens `path` (a regular file only: a directory, device, FIFO or socket is
 * KILN_INVALID_ARGUMENT, found without reading a byte and without blocking)
 * and records its size. On failure the file is left closed. */
kiln_status_t kiln_input_file_open(kiln_input_file_t *file, const char *path);
/* Reads exactly `n` bytes at `offset`; an early end is an I/O error (the size
 * was checked against fstat, so the file changed underneath us). */
kiln_status_t kiln_input_file_read_at(const kiln_input_file_t *file,
                                      uint64_t offset, void *dst, size_t n);
/* Closes the descriptor if open; closing twice is allowed. */
void kiln_input_file_close(kiln_input_file_t *file);

/* Copies `text` to `out` (`size` bytes, NUL-terminated, cut short at a
 * whole character or escape if it does not fit) with every control
 * character escaped: C0 controls, newline and tab included, and DEL as
 * \xHH, C1 controls (U+0080-U+009F in UTF-8) as \u00HH, and a UTF-8
 * continuation byte without its lead byte as \xHH; other text, UTF-8
 * included, is kept. Anything a file puts in a message (a path, a tensor
 * name, a dtype, header text) goes through it, so that a hostile file cannot
 * drive the user's terminal (the runtime's twin of kilnc's
 * TerminalSafeStream). Escaping escaped text changes nothing. Returns the
 * length of the whole escaped text; `out` may be NULL to measure it. */
size_t kiln_escape_controls(const char *text, char *out, size_t size);

/* The dtype called `name` (`length` bytes, "F32", ...); false if Kiln does
 * not know it. */
bool kiln_dtype_from_name(const char *name, size_t length, kiln_dtype_t *out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_SRC_CSUPPORT_H */

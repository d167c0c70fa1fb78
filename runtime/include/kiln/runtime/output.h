/* Kiln runtime: output paths, resolved and checked before anything is written.
 *
 * Every file Kiln writes (the NPY and safetensors writers, a generated
 * program's --output, kilnc's -o and the header beside it) follows one rule,
 * chosen by what the path names when it is resolved:
 *
 *   nothing yet, a regular file, or a symbolic link to one (KILN_OUTPUT_FILE):
 *     the data go to a new temporary file beside the file the path resolves
 *     to (links and ".." followed), which is fsynced and renamed over it
 *     once complete. A failure leaves the old file as it was; a link stays a
 *     link, and the file it points to is the one replaced.
 *   /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N
 *     (KILN_OUTPUT_DESCRIPTOR): that descriptor of the process, written as
 *     it is (a terminal, a pipe, or a file the shell opened, from its
 *     current offset). Never opened, created or renamed.
 *   a FIFO or a character device such as /dev/null or a terminal
 *     (KILN_OUTPUT_IN_PLACE): opened for writing and written in place; never
 *     created, truncated or replaced. Opening a FIFO waits for a reader, as
 *     any writer does. A stream cannot be rolled back: a failure may leave
 *     part of the data written.
 *   a directory, a block device, a socket, a link to nothing: an error.
 *
 * An output that is the same file as one of the inputs given to
 * kiln_output_resolve (the same device and inode, whatever names lead to
 * it: symbolic or hard links, "..", /dev/stdout redirected to the input) is
 * an error, so that no output ever destroys what it is computed from.
 *
 * Ownership: a kiln_output_t filled by kiln_output_resolve owns its strings
 * until kiln_output_release. Thread safety: the functions share no state.
 */
#ifndef KILN_RUNTIME_OUTPUT_H
#define KILN_RUNTIME_OUTPUT_H

#include <stddef.h>

#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_output_kind_t {
  KILN_OUTPUT_FILE = 0,       /* a regular file, replaced by rename */
  KILN_OUTPUT_DESCRIPTOR = 1, /* a descriptor of the process (/dev/stdout) */
  KILN_OUTPUT_IN_PLACE = 2    /* a FIFO or character device */
} kiln_output_kind_t;

/* Flags of kiln_output_resolve. */
enum {
  /* Only KILN_OUTPUT_FILE is accepted: outputs that are programs, libraries
   * or headers (kilnc build) are files, never streams. */
  KILN_OUTPUT_REGULAR_ONLY = 1u
};

/* A resolved output path. */
typedef struct kiln_output_t {
  kiln_output_kind_t kind;
  char *name; /* the path as given, which messages name */
  char *path; /* FILE: the absolute path without links that is replaced;
                 IN_PLACE: the path as given; DESCRIPTOR: NULL */
  int fd;     /* DESCRIPTOR: the descriptor; otherwise -1 */
} kiln_output_t;

/* Resolves `path` by the rules above, with `flags` (KILN_OUTPUT_*), and
 * checks that it is none of the `input_count` files in `inputs` (entries
 * that are NULL, empty or missing are skipped: their readers report them).
 * Nothing is created or written. On failure `out_output` is left empty
 * (kiln_output_release may still be called on it). */
kiln_status_t kiln_output_resolve(const char *path, unsigned flags,
                                  const char *const *inputs, size_t input_count,
                                  kiln_output_t *out_output);

/* Writes `size` bytes at `data` to a resolved output by its kind's rule. */
kiln_status_t kiln_output_write(const kiln_output_t *output, const void *data,
                                size_t size);

/* Frees the strings of `output` and empties it; NULL is allowed. */
void kiln_output_release(kiln_output_t *output);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_OUTPUT_H */

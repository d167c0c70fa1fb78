/* Kiln runtime: training metrics, one CSV row per epoch.
 *
 * Format (docs/metrics.md): UTF-8 text, lines ending in '\n' (a '\r' before
 * it is allowed), this header line first, then one row per epoch in order
 * of strictly increasing epoch:
 *
 *   epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,step_seconds,eval_seconds,samples_per_second
 *   1,0.512345679,0.8125,0.45,0.84,12.5,11.25,1.25,4800
 *
 * epoch is a non-negative decimal integer; the other fields are decimal
 * floats (written with %.9g's digits, which round-trip a double to 9
 * significant digits and a float exactly; "inf" and "-inf" allowed), or
 * empty where the value is absent (no validation set): NaN in a row. The
 * accuracies are fractions in [0, 1]. Numbers are written and read in the
 * C locale's spelling whatever the process's locale is.
 *
 * The reader is strict: a wrong header, a row without exactly 9 fields, a
 * field that is not a number, an accuracy outside [0, 1], an epoch not above
 * the one before and a last line without its newline (a truncated file) are
 * KILN_DATA_LOSS with a message naming the file and the line
 * ("metrics.csv:3: ..."). It reads regular files only (a FIFO or device is
 * refused without blocking) of at most KILN_METRICS_MAX_FILE_SIZE bytes.
 *
 * Ownership: rows returned by kiln_metrics_read_csv belong to the caller
 * (kiln_metrics_free). Thread safety: the functions share no state.
 */
#ifndef KILN_RUNTIME_METRICS_H
#define KILN_RUNTIME_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The header line, without its newline. */
#define KILN_METRICS_CSV_HEADER                                                \
  "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,"             \
  "step_seconds,eval_seconds,samples_per_second"

/* The largest file read: a row is at most about 150 bytes, so 16 MiB holds
 * 100 000 epochs, far above any run; a hostile or mistaken path (a dataset,
 * a checkpoint) is refused before it is read into memory. */
#define KILN_METRICS_MAX_FILE_SIZE (16u << 20)

/* One epoch. Every double may be NaN: absent, an empty field. */
typedef struct kiln_metrics_row_t {
  int64_t epoch;             /* >= 0, strictly increasing from row to row */
  double train_loss;         /* mean loss over the epoch's training batches */
  double train_accuracy;     /* fraction in [0, 1] */
  double val_loss;           /* on the validation set */
  double val_accuracy;       /* fraction in [0, 1] */
  double seconds;            /* the epoch's training part, wall clock: shuffle,
                                batches, steps; not the validation */
  double step_seconds;       /* of which inside the compiled training step */
  double eval_seconds;       /* the validation pass after it */
  double samples_per_second; /* training samples over seconds */
} kiln_metrics_row_t;

/* A row with epoch 0 and every value absent (NaN). */
kiln_metrics_row_t kiln_metrics_row_empty(void);

/* Writes the header and `count` rows (`rows` may be NULL when count is 0) as
 * one file, by the rules of output.h: a regular file atomically (a
 * temporary file beside it, fsync, rename; on failure `path` is untouched),
 * a FIFO, character device or /dev/stdout in place. Rows the reader would
 * refuse (a negative or non-increasing epoch, an accuracy outside [0, 1])
 * are KILN_INVALID_ARGUMENT, and nothing is written. */
kiln_status_t kiln_metrics_write_csv(const char *path,
                                     const kiln_metrics_row_t *rows,
                                     size_t count);

/* Reads `path` (see the format above) into a new array of `*out_count` rows
 * (NULL when the file has only its header). On failure both outputs are
 * left NULL and 0. */
kiln_status_t kiln_metrics_read_csv(const char *path,
                                    kiln_metrics_row_t **out_rows,
                                    size_t *out_count);

/* Releases rows returned by kiln_metrics_read_csv; NULL is allowed. */
void kiln_metrics_free(kiln_metrics_row_t *rows);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_METRICS_H */

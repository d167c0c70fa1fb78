/* Kiln runtime: the data of a training run and the order of its batches.
 *
 * `kilnc train` and the programs of `kilnc build --mode=train` read the same
 * files with the same checks and messages, and take the same rows per step:
 *
 *   inputs  NPY float32: the model's per-sample shape after one or more
 *           leading dimensions, which are flattened into rows ([rows, C, H,
 *           W] or, as the training fixtures store them, [batches, batch, C,
 *           H, W]);
 *   labels  NPY int64: one class index in [0, classes) per row.
 *
 * Batches: the rows are taken in order, `batch` at a time; the last batch of
 * a pass over the data holds what is left (rows mod batch, when that is not
 * 0) and runs as a smaller batch through the same step; then the next pass
 * starts again at row 0. With 160 rows and batch 16, step i (from 0) is rows
 * [16·i, 16·i + 16) of pass i / 10; with 50 rows and batch 16, a pass is 16,
 * 16, 16, 2.
 *
 * Ownership: a kiln_train_data_t owns its arrays until kiln_train_data_free.
 * Thread safety: the functions share no state.
 */
#ifndef KILN_RUNTIME_TRAIN_DATA_H
#define KILN_RUNTIME_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_train_data_s kiln_train_data_t;

/* Reads and checks `inputs_path` and `labels_path` against a model whose
 * input is `input_shape` (`input_rank` extents, [0] the batch, ignored) and
 * which has `classes` classes. Messages name the file and the sample. */
kiln_status_t kiln_train_data_read(const char *inputs_path, const char *labels_path,
                                   size_t input_rank, const int64_t *input_shape,
                                   int64_t classes, kiln_train_data_t **out_data);
/* NULL is allowed. */
void kiln_train_data_free(kiln_train_data_t *data);

int64_t kiln_train_data_rows(const kiln_train_data_t *data);
/* Floats per row. */
int64_t kiln_train_data_sample_size(const kiln_train_data_t *data);
/* rows x sample size floats, C order. */
const float *kiln_train_data_inputs(const kiln_train_data_t *data);
/* rows class indices. */
const int64_t *kiln_train_data_labels(const kiln_train_data_t *data);

/* The rows of step `step` (from 0): [*out_first, *out_first + *out_size). */
void kiln_train_batch(int64_t step, int64_t rows, int64_t batch, int64_t *out_first,
                      int64_t *out_size);

/* Checks `batch` (--batch) against `rows` samples of `inputs_path`: at most
 * rows, and where `steps` steps reach a last batch of a pass, one of at
 * least `smallest_batch` rows (train-mode BatchNorm1d needs 2). */
kiln_status_t kiln_train_check_batch(int64_t rows, int64_t batch, int64_t steps,
                                     int64_t smallest_batch, const char *inputs_path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_TRAIN_DATA_H */

/* Kiln runtime: the trainer. Epochs of a compiled training step over a data
 * set, with validation, early stopping, checkpoints and exact resume.
 *
 * `kilnc train` (which builds the model's training library and loads it)
 * and the programs of `kilnc build --mode=train` both call kiln_train_run
 * with a kiln_train_program_t (train_runner.h), so a machine without the
 * compiler trains the same way, bit for bit.
 *
 * Data: the four MNIST-style IDX files of a directory (train-images-idx3-
 *   ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-
 *   idx1-ubyte, each plain or with .gz), by default the train section's
 *   data set (fashion_mnist: /usr/share/datasets/fashion-mnist), or NPY
 *   arrays (float32 inputs already transformed, int64 labels). IDX pixels
 *   go through the train section's transform as torchvision's ToTensor and
 *   Normalize compute it in float32: x / 255 (a scale whose reciprocal is a
 *   whole number divides by it), then (x - mean) / std.
 * Split: `validation` of the training rows (rounded down) are held out
 *   once, by a permutation from the seed; the rest are trained on.
 * Epochs: the training rows in an order from (seed, epoch) (or in order
 *   with shuffle off), in batches of `batch`, the last one partial
 *   (PyTorch's drop_last=False; with drop_last it is left out). A last
 *   batch below the step's smallest batch (BatchNorm1d's one value per
 *   channel) is an error before training, unless drop_last. Batches are
 *   gathered and transformed on a second thread while the step runs.
 *   After each epoch the validation rows are evaluated in eval mode
 *   (running statistics): mean cross-entropy and accuracy.
 * Early stopping (patience > 0 and a validation set): the run stops when
 *   the validation loss has not fallen below the best by more than `delta`
 *   for `patience` epochs; the best state is then restored, as the
 *   tutorials' EarlyStopping does. Without early stopping the state after
 *   the last epoch is kept.
 * Checkpoints: `output` is written (atomically, output.h) after every epoch
 *   and every `checkpoint_every` steps, with the whole state and, in its
 *   metadata, where the run stands (epoch, batch, steps, seed, the
 *   optimizer's hyper-parameters, the early stopping state, the metrics so
 *   far). The best state by validation loss
 *   goes to OUTPUT_STEM.best.safetensors. A NaN or infinite loss stops the
 *   run (exit 1) naming the epoch and step, leaving the last checkpoint as
 *   it was; SIGINT writes a checkpoint at the step it stopped at (exit 130).
 *   `resume` continues from such a checkpoint; the final state equals an
 *   uninterrupted run's, bit for bit: the data order is a function of the
 *   seed and the epoch, and the step's dropout of its step count.
 * At the end the test set (the t10k files, or test_inputs/test_labels) is
 *   evaluated with the state kept.
 *
 * Output: progress on stdout (a progress bar on a terminal, else a line per
 * epoch), errors on stderr; the return value is the exit code (0; 1 for a
 * bad file, a failed step, a NaN loss; 2 for bad options; 130 after
 * SIGINT). Paths in messages are escaped.
 * Thread safety: one run per process (it handles SIGINT).
 */
#ifndef KILN_RUNTIME_TRAIN_LOOP_H
#define KILN_RUNTIME_TRAIN_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/train_runner.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of a run; -1 (or NULL) takes the train section's value. */
typedef struct kiln_train_options_t {
  const char *output;      /* the checkpoint (required unless evaluate_only) */
  const char *init;        /* the initial state (required unless resume) */
  const char *resume;      /* a checkpoint of an interrupted run */
  const char *data_dir;    /* IDX files; NULL: the train section's data set */
  const char *inputs, *labels;           /* NPY training rows instead */
  const char *test_inputs, *test_labels; /* NPY test rows (optional) */
  const char *metrics;     /* a CSV, one row per epoch (metrics.h) */
  const char *plot;        /* an SVG of the curves (plot.h) */
  int64_t epochs;          /* >= 0 */
  int64_t steps;           /* > 0: stop after this many steps (0: epochs) */
  int64_t batch;           /* >= 1 */
  double val_split;        /* in [0, 1) */
  int64_t patience;        /* 0: no early stopping */
  double delta;            /* >= 0 */
  int64_t seed;            /* >= 0 */
  int shuffle;             /* 1, 0, or -1 (on) */
  int drop_last;           /* 1, or 0 */
  int progress;            /* 1 bar, 0 lines, -1 a bar on a terminal */
  int64_t print_every;     /* with steps: a line every this many steps (0: none;
                              -1: every step) */
  int64_t checkpoint_every; /* > 0: a checkpoint every this many steps */
  int threads;             /* > 0: the thread pool's threads */
  int evaluate_only;       /* 1: no training: evaluate `init` on the test set */
  int confusion;           /* 1: print the test set's confusion matrix */
  /* What errors start with (NULL: "error: "). */
  const char *error_prefix;
  /* Files no output may be (the model, ...), besides the data and states. */
  const char *const *input_files;
  size_t input_file_count;
  /* Hyper-parameters set over the program's defaults, or on resume over
   * the resumed run's (the program's names: "lr", "momentum", ...). */
  size_t hyper_count;
  const char *const *hyper_names;
  const double *hyper_values;
} kiln_train_options_t;

/* Options with every field -1, NULL or 0 (the defaults). */
kiln_train_options_t kiln_train_options_default(void);

/* Checks the options, the outputs and the data of a run, as kiln_train_run
 * does first, without running anything: only the description fields of
 * `program` are read (name, input shape, classes, smallest batch, train
 * section), so kilnc calls it before it compiles the step. Returns the exit
 * code kiln_train_run would fail with, or 0. */
int kiln_train_check(const kiln_train_program_t *program, const kiln_train_options_t *options);

/* Runs the training (or evaluation) of `options` with `program`; returns the
 * process's exit code. */
int kiln_train_run(const kiln_train_program_t *program, const kiln_train_options_t *options);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_TRAIN_LOOP_H */

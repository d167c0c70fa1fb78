/* Kiln runtime: the command-line runner of `kilnc build --emit=exe`.
 *
 * A generated executable is the model's object, its C wrapper and a main()
 * that hands a kiln_model_desc_t to kiln_runner_main:
 *
 *   MODEL --input x.npy --output y.npy     float32 NCHW batch in, logits out
 *   MODEL --images IDX --labels IDX        accuracy and images/s (plain or .gz)
 *   MODEL --weights W.safetensors ...      a model built with --weights=external
 *   MODEL --variant                        the target of the code that runs here
 *
 * --output follows kiln/runtime/output.h: a file is replaced whole (through
 * a link, the file it points to), /dev/stdout, a FIFO or a character device
 * is written in place; a directory, or the same file as an input, is an
 * error before anything is read.
 *
 * The runner is a program, so it prints (stdout for results, stderr for
 * errors) and returns the process's exit code: 0, 1 for a bad input or
 * output file or a failed inference, 2 for a bad command line.
 * Thread safety: call it once, from main.
 */
#ifndef KILN_RUNTIME_RUNNER_H
#define KILN_RUNTIME_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the runner needs to know of a compiled model. */
typedef struct kiln_model_desc_t {
  const char *name;
  int (*infer)(const float *input, int64_t batch, float *output);
  const char *(*last_error)(void);
  void (*set_num_threads)(int threads);
  size_t input_rank;
  const int64_t *input_shape; /* [0] is the batch, given per call */
  size_t output_rank;
  const int64_t *output_shape;
  /* How IDX pixels (0..255) become model input, from the model's train
   * section: x = pixel * pixel_scale (pixel / k where pixel_scale is 1/k,
   * as ToTensor divides by 255), then (x - mean) / std. */
  float pixel_scale;
  float normalize_mean;
  float normalize_std;
  /* Models built with `kilnc build --weights=external`: reads a safetensors
   * checkpoint (0 or an error code, message in last_error); NULL when the
   * weights are compiled in. */
  int (*load_weights)(const char *path);
  /* The Halide target of the variant that runs on this CPU (NULL: none). */
  const char *(*variant)(void);
} kiln_model_desc_t;

int kiln_runner_main(int argc, char **argv, const kiln_model_desc_t *model);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_RUNNER_H */

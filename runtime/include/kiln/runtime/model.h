/* Kiln runtime: compiled models, as `kilnc build` describes them.
 *
 * What `kilnc build` generates for a model is data, a kiln_model_t (its
 * input and output shapes, one variant per target with the variant's
 * compiled pipelines and weight layouts, its state_dict), and thin entry
 * points with the documented ABI (OUT.h) that call the functions below:
 *
 *   int OUT_infer(const float *input, int64_t batch, float *output) {
 *     return kiln_model_infer(&model, input, batch, output, error);
 *   }
 *
 * The functions check the arguments, pick the variant the CPU runs (once),
 * describe the caller's arrays to Halide, and run the pipeline with a
 * kiln_call_t (call.h) as its user_context, so that its intermediates come
 * from the thread's scratch arena and its errors come back as messages.
 * This is the part of the generated code that does not vary per model; it
 * is C11 and needs nothing at run time but libc and pthreads. kilnc links
 * it (kiln_runtime_model, which includes kiln_runtime_c) into every model's
 * object and makes its symbols local, so that models built by kilnc can be
 * linked together; it is not meant to be linked into programs directly.
 *
 * Error codes are the documented ABI's: 0, KILN_MODEL_ERROR_*, or a
 * negative code of the Halide runtime. `out_error` is the model's
 * per-thread message buffer (KILN_MODEL_ERROR_SIZE bytes), which a failure
 * fills and a success leaves alone.
 *
 * Ownership: a kiln_model_t and everything it points to is static data of
 * the generated code, except `state`, which the functions below change.
 * Thread safety: kiln_model_infer and kiln_model_variant may run on several
 * threads at once; kiln_model_load_weights and kiln_model_free_weights must
 * not run while any other function of the same model runs.
 */
#ifndef KILN_RUNTIME_MODEL_H
#define KILN_RUNTIME_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Halide's (HalideRuntime.h), for GPU variants. */
struct halide_device_interface_t;

/* The model's own error codes (the header's OUT_ERROR_*). */
enum {
  KILN_MODEL_ERROR_INVALID_ARGUMENT = 1, /* a null pointer, a bad batch */
  KILN_MODEL_ERROR_WEIGHTS = 2,          /* no weights loaded, or a bad file */
  KILN_MODEL_ERROR_TARGET = 3            /* the CPU runs none of the variants */
};

/* The size of a model's error message buffer. */
#define KILN_MODEL_ERROR_SIZE 512

/* The highest rank of a tensor or weight layout the runtime describes. */
#define KILN_MODEL_MAX_RANK 8

/* 64-bit words of a Halide target feature set (halide_target_feature_t
 * bits, as halide_can_use_target_features takes them); Halide 14 uses 2. */
#define KILN_MODEL_FEATURE_WORDS 4

/* A pipeline, called through Halide's argv form (<name>_argv): args[0]
 * points to the user_context, then one halide_buffer_t * per buffer. */
typedef int (*kiln_model_pipeline_t)(void **args);

/* A tensor in PyTorch's order (NCHW); shape[0] is -1 for a batched one. */
typedef struct kiln_model_tensor_t {
  size_t rank;
  const int64_t *shape;
} kiln_model_tensor_t;

/* A dense float32 array in Halide's order (innermost dimension first), as
 * a pipeline reads or writes it: a weight in its packed layout, or a
 * state_dict tensor that the load pipeline reads. */
typedef struct kiln_model_layout_t {
  int rank;
  const int32_t *extents;
} kiln_model_layout_t;

/* A tensor of the model's state_dict: every key must be in a weights file,
 * with this shape. */
typedef struct kiln_model_state_key_t {
  const char *name;     /* the PyTorch state_dict key */
  const char *kind;     /* "parameter" or "buffer", for messages */
  int integer;          /* an integer tensor (num_batches_tracked) */
  size_t rank;
  const int64_t *shape; /* NULL for rank 0 */
  int variance;         /* a BatchNorm running variance: negative values are refused */
} kiln_model_state_key_t;

/* One pipeline of a variant. kilnc cuts a model with many layers into
 * stages that run one after another, each reading the tensor the one before
 * it wrote (compiling one large pipeline takes time that grows faster than
 * the model); most models are one stage. */
typedef struct kiln_model_stage_t {
  /* args: user_context, the stage's input, its packed weights, its output. */
  kiln_model_pipeline_t infer;
  /* External weights: args: user_context, its state tensors (read from the
   * file), its packed weights (written). NULL otherwise. */
  kiln_model_pipeline_t load;
  /* Its ranges of the variant's state tensors and packed weights. */
  size_t state_first, state_count;
  size_t packed_first, packed_count;
  /* What it writes (batched); the last stage's is the model's output. */
  kiln_model_tensor_t output;
} kiln_model_stage_t;

/* The code of one target. */
typedef struct kiln_model_variant_t {
  const char *target; /* Halide's target string */
  /* The features it needs (halide_target_feature_t bits); the variant runs
   * where halide_can_use_target_features accepts them. */
  uint64_t features[KILN_MODEL_FEATURE_WORDS];
  /* At least one, in the order they run. */
  size_t stage_count;
  const kiln_model_stage_t *stages;
  /* External weights: every stage's, in stage order. */
  size_t state_tensor_count;
  const char *const *state_tensor_names;
  const kiln_model_layout_t *state_tensor_layouts;
  size_t packed_count;
  const kiln_model_layout_t *packed_layouts;
  /* GPU variants: Halide's device interface of their API
   * (halide_cuda_device_interface, halide_opencl_device_interface); with
   * several variants, one is chosen only where its device works. NULL for
   * CPU variants. */
  const struct halide_device_interface_t *(*device_interface)(void);
  /* GPU variants: Halide's halide_reuse_device_allocations, called once the
   * variant is chosen, so that a call's device buffers (its input, output
   * and intermediates) come from a cache of earlier calls' rather than
   * from the driver each time. NULL for CPU variants. */
  int (*reuse_device_allocations)(void *user_context, bool flag);
} kiln_model_variant_t;

/* What changes at run time. Zero-initialized static storage. */
typedef struct kiln_model_state_t {
  int selected;   /* 0: not chosen yet; i + 1: variant i; -1: none runs */
  int loaded;     /* external weights: a load succeeded */
  float **weights; /* external weights: the chosen variant's packed weights */
  /* External weights of a GPU variant: the packed weights described to
   * Halide and copied to the device by the load, which every call then
   * reads there (private to the runtime; NULL otherwise). */
  struct kiln_device_weights_t *device_weights;
} kiln_model_state_t;

typedef struct kiln_model_t {
  const char *name; /* the API's name, for messages ("<name>_load_weights") */
  kiln_model_tensor_t input, output;
  /* Most specific first; with several, the first the CPU runs (and, for a
   * GPU variant, whose device works) is chosen, once. With one, it is used
   * without asking the CPU. */
  size_t variant_count;
  const kiln_model_variant_t *variants;
  /* External weights: what a weights file must hold. */
  int external_weights;
  int allow_extra_keys; /* tensors the model does not know are ignored */
  /* NaN or Inf in the tensors the model reads, and negative running
   * variances, are accepted (kilnc build --allow-nonfinite); otherwise a
   * load with them fails naming the tensor and the first bad element. */
  int allow_nonfinite;
  size_t state_key_count;
  const kiln_model_state_key_t *state_keys;
  kiln_model_state_t *state;
} kiln_model_t;

/* Runs the model on `batch` samples of input (batch x the input's sample
 * size floats, C order), writing batch x the output's sample size floats to
 * `out_output`. Neither needs any alignment. */
int kiln_model_infer(const kiln_model_t *model, const float *input, int64_t batch,
                     float *out_output, char *out_error);

/* The index of the variant that runs on this CPU (chosen by the first call,
 * then kept), or -1 if the CPU runs none. */
int kiln_model_select(const kiln_model_t *model);
/* Its target string, or NULL if the CPU runs none. */
const char *kiln_model_variant(const kiln_model_t *model);
/* The GPU API a variant runs its pipelines on ("CUDA", "OpenCL"), or NULL
 * for a CPU variant. */
const char *kiln_model_device(const kiln_model_variant_t *variant);

/* External weights: reads the safetensors file at `path`, checks it against
 * the state_dict (kiln_model_check_weights) and, unless allow_nonfinite, the
 * values it reads (no NaN or Inf, no negative running variance), and runs the chosen variant's
 * load pipelines (one per stage) into newly allocated packed weights, which replace those
 * loaded before only when everything succeeded: a failed load keeps the
 * previous weights. */
int kiln_model_load_weights(const kiln_model_t *model, const char *path, char *out_error);
/* External weights already in memory (the state of a training run,
 * trainer.h): `tensors[i]` holds the chosen variant's state_tensor_names[i],
 * dense float32 in C order, 64-byte aligned. Checks their values as
 * kiln_model_load_weights does (unless allow_nonfinite) and runs the load
 * pipelines into newly allocated packed weights, which replace those loaded
 * before only when everything succeeded. Messages name `source`. */
int kiln_model_load_tensors(const kiln_model_t *model, float *const *tensors, const char *source,
                            char *out_error);
/* Frees the loaded weights; infer fails with KILN_MODEL_ERROR_WEIGHTS until
 * the next load. */
void kiln_model_free_weights(const kiln_model_t *model);

/* The checks of `kilnc build --weights`: every state_dict key is in `file`
 * with its shape, integer tensors hold integers, and (unless
 * allow_extra_keys) the file has no tensor the model does not know.
 * Messages name `path` and the tensor. */
kiln_status_t kiln_model_check_weights(const kiln_model_t *model, const kiln_safetensors_t *file,
                                       const char *path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_MODEL_H */

/*===- ModelSupport.h - internal helpers of Model.c and WeightLoader.c ---===*
 *
 * Not installed. Halide's runtime header is needed to include it.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_RUNTIME_SRC_MODELSUPPORT_H
#define KILN_RUNTIME_SRC_MODELSUPPORT_H

#include "kiln/runtime/model.h"

#include "HalideRuntime.h"

/* printf(`format`, ...) into `out_error` (KILN_MODEL_ERROR_SIZE bytes);
 * returns `code`. */
int kiln_model_fail(char *out_error, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* The error of a CPU that runs none of the model's variants, naming them. */
int kiln_model_no_variant(const kiln_model_t *model, char *out_error);
/* Describes `host` as a dense float32 array of `layout` (dims: rank entries). */
void kiln_model_describe(halide_buffer_t *buffer, halide_dimension_t *dims, float *host,
                         const kiln_model_layout_t *layout);
/* Describes `host` as a dense C-order tensor of `shape` (`rank` extents,
 * tensor order; Halide's dimensions are the reverse, dims has rank
 * entries), float32 or, with `integer`, int64; with `batched`, `batch` is
 * its first extent. */
void kiln_model_describe_tensor(halide_buffer_t *buffer, halide_dimension_t *dims,
                                const void *host, bool integer, size_t rank,
                                const int64_t *shape, bool batched, int64_t batch);
/* A buffer's device side (a GPU variant's), through the buffer's device
 * interface, so that callers need no GPU runtime where no variant has one:
 * kiln_device_to_host copies it to the host where the device's is newer,
 * kiln_device_release frees it. Both do nothing for a buffer without one
 * (every CPU variant's) and return 0 or the Halide runtime's error code. */
int kiln_device_to_host(void *user_context, halide_buffer_t *buffer);
int kiln_device_release(void *user_context, halide_buffer_t *buffer);

/* A GPU variant's packed weights on the device (kiln_model_state_t). */
typedef struct kiln_device_weights_t {
  size_t count;
  halide_buffer_t *buffers;
  halide_dimension_t (*dims)[KILN_MODEL_MAX_RANK];
} kiln_device_weights_t;

/* Runs `pipeline` on args[1...] with a new kiln_call_t (args[0] is set to
 * it); a failure's message goes to `out_error`. Returns the pipeline's code. */
int kiln_model_run(kiln_model_pipeline_t pipeline, void **args, char *out_error);

#endif /* KILN_RUNTIME_SRC_MODELSUPPORT_H */

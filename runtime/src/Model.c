/*===- Model.c - running a compiled model --------------------------------===*
 *
 * kiln_model_infer and the choice of a variant (model.h): what every
 * generated <name>_infer used to carry as C text, now once, here.
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/model.h"

#include "kiln/runtime/call.h"

#include "HalideRuntime.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "CSupport.h"
#include "ModelSupport.h"

_Static_assert(halide_target_feature_end <= 64 * KILN_MODEL_FEATURE_WORDS,
               "KILN_MODEL_FEATURE_WORDS is too small for this Halide's features");

/* Halide checks that it gets exactly its own number of words. */
#define KILN_HALIDE_FEATURE_WORDS ((halide_target_feature_end + 63) / 64)

/* Whether a GPU variant's device works: Halide's runtime initializes it
 * (loads the driver, makes a context) and allocates one float on it. The
 * runtime's errors go to the call's message, which is dropped: a device
 * that does not work means the next variant. */
static bool device_works(const kiln_model_variant_t *variant) {
  if (!variant->device_interface)
    return true;
  const struct halide_device_interface_t *device = variant->device_interface();
  float host = 0;
  halide_dimension_t dim = {0, 1, 1, 0};
  halide_buffer_t probe;
  memset(&probe, 0, sizeof probe);
  probe.host = (uint8_t *)&host;
  probe.type.code = halide_type_float;
  probe.type.bits = 32;
  probe.type.lanes = 1;
  probe.dimensions = 1;
  probe.dim = &dim;
  kiln_call_t call;
  kiln_call_begin(&call);
  int result = device->device_malloc(&call, &probe, device);
  if (result == 0)
    device->device_free(&call, &probe);
  kiln_call_end(&call);
  return result == 0;
}

int kiln_model_select(const kiln_model_t *model) {
  int selected = __atomic_load_n(&model->state->selected, __ATOMIC_ACQUIRE);
  if (selected != 0)
    return selected > 0 ? selected - 1 : -1;
  /* One variant is used as it was built, as a single-target Halide object
   * is: without asking the CPU. With several, the first one the CPU runs, as
   * Halide's multitarget wrapper picks; unlike it, the last one is not taken
   * blindly, so a CPU that runs none gets an error instead of an illegal
   * instruction. A GPU variant is taken where its device works (CUDA, then
   * OpenCL, then the CPU, for kilnc build --device=auto). Threads racing
   * here compute the same answer. */
  int choice = -1;
  if (model->variant_count == 1)
    choice = 0;
  for (size_t i = 0; choice < 0 && i < model->variant_count; ++i)
    if (halide_can_use_target_features(KILN_HALIDE_FEATURE_WORDS, model->variants[i].features) &&
        device_works(&model->variants[i]))
      choice = (int)i;
  if (choice >= 0 && model->variants[choice].reuse_device_allocations)
    model->variants[choice].reuse_device_allocations(NULL, true);
  __atomic_store_n(&model->state->selected, choice >= 0 ? choice + 1 : -1, __ATOMIC_RELEASE);
  return choice;
}

const char *kiln_model_device(const kiln_model_variant_t *variant) {
  /* Halide's target strings name features between dashes. */
  const char *target = variant->target;
  for (const char *at = strchr(target, '-'); at; at = strchr(at + 1, '-')) {
    if (strncmp(at, "-cuda", 5) == 0 && (at[5] == '-' || at[5] == '\0'))
      return "CUDA";
    if (strncmp(at, "-opencl", 7) == 0 && (at[7] == '-' || at[7] == '\0'))
      return "OpenCL";
  }
  return NULL;
}

const char *kiln_model_variant(const kiln_model_t *model) {
  int choice = kiln_model_select(model);
  return choice >= 0 ? model->variants[choice].target : NULL;
}

int kiln_model_fail(char *out_error, int code, const char *format, ...) {
  /* Escaped as status messages are: a path or a tensor name may carry
   * control characters, and callers print the message. */
  char text[KILN_MODEL_ERROR_SIZE];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof text, format, args);
  va_end(args);
  kiln_escape_controls(text, out_error, KILN_MODEL_ERROR_SIZE);
  return code;
}

int kiln_model_no_variant(const kiln_model_t *model, char *out_error) {
  size_t used = (size_t)snprintf(out_error, KILN_MODEL_ERROR_SIZE,
                                 "this CPU supports none of the targets %s was built for:",
                                 model->name);
  for (size_t i = 0; i < model->variant_count && used < KILN_MODEL_ERROR_SIZE; ++i)
    used += (size_t)snprintf(out_error + used, KILN_MODEL_ERROR_SIZE - used, "%s %s",
                             i ? "," : "", model->variants[i].target);
  return KILN_MODEL_ERROR_TARGET;
}

void kiln_model_describe(halide_buffer_t *buffer, halide_dimension_t *dims, float *host,
                         const kiln_model_layout_t *layout) {
  int32_t stride = 1;
  memset(buffer, 0, sizeof *buffer);
  for (int d = 0; d < layout->rank; ++d) {
    dims[d].min = 0;
    dims[d].extent = layout->extents[d];
    dims[d].stride = stride;
    dims[d].flags = 0;
    stride *= layout->extents[d];
  }
  buffer->host = (uint8_t *)host;
  buffer->type.code = halide_type_float;
  buffer->type.bits = 32;
  buffer->type.lanes = 1;
  buffer->dimensions = layout->rank;
  buffer->dim = dims;
}

int kiln_model_run(kiln_model_pipeline_t pipeline, void **args, char *out_error) {
  kiln_call_t call;
  void *user_context = &call;
  kiln_call_begin(&call);
  args[0] = &user_context;
  int result = pipeline(args);
  kiln_call_end(&call);
  if (result != 0)
    kiln_escape_controls(call.message[0] ? call.message : "Halide runtime error", out_error,
                         KILN_MODEL_ERROR_SIZE);
  return result;
}

void kiln_model_describe_tensor(halide_buffer_t *buffer, halide_dimension_t *dims,
                                const void *host, bool integer, size_t rank,
                                const int64_t *shape, bool batched, int64_t batch) {
  int32_t stride = 1;
  memset(buffer, 0, sizeof *buffer);
  for (size_t d = 0; d < rank; ++d) {
    size_t axis = rank - 1 - d;
    int64_t extent = batched && axis == 0 ? batch : shape[axis];
    dims[d].min = 0;
    dims[d].extent = (int32_t)extent;
    dims[d].stride = stride;
    dims[d].flags = 0;
    stride *= (int32_t)extent;
  }
  buffer->host = (uint8_t *)(uintptr_t)host;
  buffer->type.code = integer ? halide_type_int : halide_type_float;
  buffer->type.bits = integer ? 64 : 32;
  buffer->type.lanes = 1;
  buffer->dimensions = (int32_t)rank;
  buffer->dim = rank ? dims : NULL;
}

/* The tensors between stages: two buffers of the largest, which the stages
 * write in turn. NULL with no error when there is one stage. */
static int alloc_between(const kiln_model_variant_t *variant, int64_t batch, void *user_context,
                         float **out_buffers, char *out_error) {
  size_t largest = 0;
  for (size_t s = 0; s + 1 < variant->stage_count; ++s) {
    const kiln_model_tensor_t *tensor = &variant->stages[s].output;
    size_t size = sizeof(float);
    bool overflow = __builtin_mul_overflow(size, (size_t)batch, &size);
    for (size_t d = 1; d < tensor->rank; ++d)
      overflow |= __builtin_mul_overflow(size, (size_t)tensor->shape[d], &size);
    if (overflow)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "invalid argument: batch %lld is too large for this model",
                             (long long)batch);
    largest = size > largest ? size : largest;
  }
  out_buffers[0] = out_buffers[1] = NULL;
  if (largest == 0)
    return 0;
  out_buffers[0] = (float *)kiln_call_malloc(user_context, largest);
  out_buffers[1] = out_buffers[0] ? (float *)kiln_call_malloc(user_context, largest) : NULL;
  if (!out_buffers[1])
    return kiln_model_fail(out_error, halide_error_code_out_of_memory,
                           "out of memory for the tensors between stages (%zu bytes each)",
                           largest);
  return 0;
}

int kiln_device_to_host(void *user_context, halide_buffer_t *buffer) {
  if (!buffer->device || !buffer->device_interface ||
      !(buffer->flags & halide_buffer_flag_device_dirty))
    return 0;
  return buffer->device_interface->copy_to_host(user_context, buffer);
}

int kiln_device_release(void *user_context, halide_buffer_t *buffer) {
  if (!buffer->device || !buffer->device_interface)
    return 0;
  return buffer->device_interface->device_free(user_context, buffer);
}

/* A GPU variant's pipeline leaves its output on the device and a device
 * copy of each buffer it read: the output comes back to the caller's array
 * (which waits for the device's queue: a process that exited with kernels
 * still being compiled crashed inside PoCL) and the copies are released.
 * The first error is the result. */
static int finish_on_host(void *user_context, int result, halide_buffer_t *in,
                          halide_buffer_t *out, halide_buffer_t *weights, size_t packed) {
  if (result == 0)
    result = kiln_device_to_host(user_context, out);
  int freed = kiln_device_release(user_context, in);
  int code = kiln_device_release(user_context, out);
  freed = freed ? freed : code;
  for (size_t i = 0; i < packed; ++i) {
    code = kiln_device_release(user_context, &weights[i]);
    freed = freed ? freed : code;
  }
  return result ? result : freed;
}

/* Runs the stages in order: the first reads `input`, the last writes
 * `out_output`, each in between reads what the one before wrote. */
static int run_stages(const kiln_model_t *model, const kiln_model_variant_t *variant,
                      const float *input, int64_t batch, float *out_output, void *user_context,
                      float *const *between, char *out_error) {
  const float *in_host = input;
  const kiln_model_tensor_t *in_tensor = &model->input;
  for (size_t s = 0; s < variant->stage_count; ++s) {
    const kiln_model_stage_t *stage = &variant->stages[s];
    bool last = s + 1 == variant->stage_count;
    float *out_host = last ? out_output : between[s % 2];
    const kiln_model_tensor_t *out_tensor = last ? &model->output : &stage->output;
    /* Everything on the stack: a call allocates nothing of its own. */
    size_t packed = model->external_weights ? stage->packed_count : 0;
    halide_dimension_t in_dims[KILN_MODEL_MAX_RANK], out_dims[KILN_MODEL_MAX_RANK];
    halide_dimension_t weight_dims[packed + 1][KILN_MODEL_MAX_RANK];
    halide_buffer_t in, out, weights[packed + 1];
    void *args[packed + 3];
    args[0] = &user_context;
    kiln_model_describe_tensor(&in, in_dims, in_host, false, in_tensor->rank, in_tensor->shape,
                               true, batch);
    kiln_model_describe_tensor(&out, out_dims, out_host, false, out_tensor->rank,
                               out_tensor->shape, true, batch);
    /* Inputs are host memory the device has not seen: a GPU variant copies
     * them over (Halide copies a buffer to the device only if its host side
     * is marked dirty). */
    in.flags |= halide_buffer_flag_host_dirty;
    args[1] = &in;
    /* A GPU variant's loaded weights are on its device already (the load
     * copied them there); others are described for this call. */
    kiln_device_weights_t *device = model->state->device_weights;
    for (size_t i = 0; i < packed; ++i) {
      size_t w = stage->packed_first + i;
      if (device) {
        args[2 + i] = &device->buffers[w];
        continue;
      }
      kiln_model_describe(&weights[i], weight_dims[i], model->state->weights[w],
                          &variant->packed_layouts[w]);
      weights[i].flags |= halide_buffer_flag_host_dirty;
      args[2 + i] = &weights[i];
    }
    args[2 + packed] = &out;
    int result = stage->infer(args);
    result = finish_on_host(user_context, result, &in, &out, weights, device ? 0 : packed);
    if (result != 0) {
      kiln_call_t *call = kiln_call_of(user_context);
      const char *message = call && call->message[0] ? call->message : "Halide runtime error";
      const char *device = kiln_model_device(variant);
      if (device)
        kiln_model_fail(out_error, result,
                        "the %s device failed: %s (is the %s driver installed, with a device? %s was "
                        "built for %s, target %s; kilnc build --device=cpu builds it for the "
                        "CPU)",
                        device, message, device, model->name, device, variant->target);
      else
        kiln_escape_controls(message, out_error, KILN_MODEL_ERROR_SIZE);
      return result;
    }
    in_host = out_host;
    in_tensor = out_tensor;
  }
  return 0;
}

int kiln_model_infer(const kiln_model_t *model, const float *input, int64_t batch,
                     float *out_output, char *out_error) {
  if (!input || !out_output || batch < 0 || batch > INT32_MAX)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: input and output must be non-null and 0 <= batch "
                           "<= 2^31-1 (batch %lld)",
                           (long long)batch);
  int choice = kiln_model_select(model);
  if (choice < 0)
    return kiln_model_no_variant(model, out_error);
  const kiln_model_variant_t *variant = &model->variants[choice];
  if (model->external_weights && !model->state->loaded)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                           "no weights loaded: call %s_load_weights first", model->name);
  if (batch == 0)
    return 0;
  /* One call for all stages: their intermediates and the tensors between
   * them come from the thread's scratch arena. */
  kiln_call_t call;
  void *user_context = &call;
  kiln_call_begin(&call);
  float *between[2];
  int result = alloc_between(variant, batch, user_context, between, out_error);
  if (result == 0)
    result = run_stages(model, variant, input, batch, out_output, user_context, between,
                        out_error);
  kiln_call_free(user_context, between[1]);
  kiln_call_free(user_context, between[0]);
  kiln_call_end(&call);
  return result;
}

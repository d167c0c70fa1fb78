/*===- WeightLoader.c - a model's weights, loaded at run time -----------===*
 *
 * kiln_model_load_weights, kiln_model_free_weights and the state_dict
 * checks (model.h) of models built with `kilnc build --weights=external`:
 * the file is checked as `kilnc build --weights` checks it (Weights.cpp,
 * the same messages), the tensors the load pipeline needs are read, and the
 * pipeline folds BatchNorm and repacks them for the variant that runs.
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/model.h"

#include "kiln/runtime/call.h"

#include "CSupport.h"
#include "ModelSupport.h"

#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static bool same_shape(const kiln_tensor_info_t *info, const kiln_model_state_key_t *key) {
  if (info->rank != key->rank)
    return false;
  return info->rank == 0 || memcmp(info->shape, key->shape, info->rank * sizeof(int64_t)) == 0;
}

/* An integer tensor (num_batches_tracked) must hold integers: read it as
 * the build reads it, which refuses float tensors. */
static kiln_status_t check_integer(const kiln_safetensors_t *file, const char *path,
                                   const kiln_model_state_key_t *key,
                                   const kiln_tensor_info_t *info) {
  int64_t *values = (int64_t *)malloc((info->count ? info->count : 1) * sizeof(int64_t));
  if (!values)
    return kiln_status_make(KILN_OUT_OF_MEMORY, "%s: out of memory reading '%s'", path,
                            key->name);
  kiln_status_t status = kiln_safetensors_read_i64(file, key->name, info->count, values);
  free(values);
  return status;
}

static bool known_key(const kiln_model_t *model, const char *name) {
  for (size_t k = 0; k < model->state_key_count; ++k)
    if (strcmp(name, model->state_keys[k].name) == 0)
      return true;
  return false;
}

/* Optimizer state a training checkpoint holds beside the state_dict (kilnc
 * train's and torch.optim's names: <key>.momentum_buffer, <key>.exp_avg,
 * <key>.exp_avg_sq of a parameter, and "step"): not the model's, and no
 * mistake, so a checkpoint builds and loads as it is. */
static bool optimizer_state(const kiln_model_t *model, const char *name) {
  if (strcmp(name, "step") == 0)
    return true;
  static const char *const suffixes[] = {".momentum_buffer", ".exp_avg", ".exp_avg_sq"};
  size_t length = strlen(name);
  for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; ++s) {
    size_t tail = strlen(suffixes[s]);
    if (length <= tail || strcmp(name + length - tail, suffixes[s]) != 0)
      continue;
    for (size_t k = 0; k < model->state_key_count; ++k)
      if (strlen(model->state_keys[k].name) == length - tail &&
          strncmp(name, model->state_keys[k].name, length - tail) == 0)
        return true;
  }
  return false;
}

kiln_status_t kiln_model_check_weights(const kiln_model_t *model, const kiln_safetensors_t *file,
                                       const char *path) {
  for (size_t i = 0; i < model->state_key_count; ++i) {
    const kiln_model_state_key_t *key = &model->state_keys[i];
    kiln_tensor_info_t info;
    kiln_status_t status = kiln_safetensors_find(file, key->name, &info);
    if (status) {
      kiln_status_free(status);
      return kiln_status_make(KILN_NOT_FOUND, "%s: no tensor '%s' for this model's %s", path,
                              key->name, key->kind);
    }
    if (!same_shape(&info, key)) {
      char got[KILN_SHAPE_TEXT_SIZE], expected[KILN_SHAPE_TEXT_SIZE];
      return kiln_status_make(KILN_INVALID_ARGUMENT,
                              "%s: tensor '%s' has shape %s, the model expects %s", path,
                              key->name, kiln_format_shape(info.shape, info.rank, got),
                              kiln_format_shape(key->shape, key->rank, expected));
    }
    if (key->integer)
      KILN_RETURN_IF_ERROR(check_integer(file, path, key, &info));
  }
  if (model->allow_extra_keys)
    return NULL;
  for (size_t i = 0, count = kiln_safetensors_count(file); i < count; ++i) {
    kiln_tensor_info_t info;
    KILN_RETURN_IF_ERROR(kiln_safetensors_info(file, i, &info));
    if (!known_key(model, info.name) && !optimizer_state(model, info.name))
      return kiln_status_make(KILN_INVALID_ARGUMENT,
                              "%s: tensor '%s' is not a parameter of this model", path,
                              info.name);
  }
  return NULL;
}

static size_t layout_count(const kiln_model_layout_t *layout) {
  size_t count = 1;
  for (int d = 0; d < layout->rank; ++d)
    count *= (size_t)layout->extents[d];
  return count;
}

/* 64-byte aligned, as the pipelines assume of weights. */
static float *alloc_layout(const kiln_model_layout_t *layout) {
  return (float *)kiln_aligned_alloc(layout_count(layout) * sizeof(float));
}

static void free_all(float **arrays, size_t count) {
  if (!arrays)
    return;
  for (size_t i = 0; i < count; ++i)
    free(arrays[i]);
  free(arrays);
}

static int fail_status(char *out_error, kiln_status_t status) {
  int code = kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS, "%s",
                             kiln_status_message(status));
  kiln_status_free(status);
  return code;
}

/* Reads the state tensors of `variant` from `file` into `state`. */
static kiln_status_t read_state(const kiln_model_variant_t *variant,
                                const kiln_safetensors_t *file, const char *path,
                                float **state) {
  for (size_t i = 0; i < variant->state_tensor_count; ++i) {
    const kiln_model_layout_t *layout = &variant->state_tensor_layouts[i];
    if (!(state[i] = alloc_layout(layout)))
      return kiln_status_make(KILN_OUT_OF_MEMORY, "%s: out of memory", path);
    KILN_RETURN_IF_ERROR(kiln_safetensors_read_f32(file, variant->state_tensor_names[i],
                                                   layout_count(layout), state[i]));
  }
  return NULL;
}

static const kiln_model_state_key_t *key_named(const kiln_model_t *model, const char *name) {
  for (size_t i = 0; i < model->state_key_count; ++i)
    if (strcmp(model->state_keys[i].name, name) == 0)
      return &model->state_keys[i];
  return NULL;
}

/* The values `kilnc build --weights` refuses: NaN or Inf anywhere, a
 * negative BatchNorm running variance (the fold takes its square root).
 * They change every output downstream, so a load refuses them, naming the
 * file, the tensor and the first bad element, unless the model was built
 * with --allow-nonfinite. */
static kiln_status_t check_values(const kiln_model_t *model, const kiln_model_variant_t *variant,
                                  float *const *state, const char *path) {
  if (model->allow_nonfinite)
    return NULL;
  for (size_t i = 0; i < variant->state_tensor_count; ++i) {
    const char *name = variant->state_tensor_names[i];
    const kiln_model_state_key_t *key = key_named(model, name);
    int variance = key && key->variance;
    size_t count = layout_count(&variant->state_tensor_layouts[i]);
    for (size_t j = 0; j < count; ++j) {
      float value = state[i][j];
      if (isfinite(value) && !(variance && value < 0.0f))
        continue;
      const char *what = isfinite(value) ? "a negative variance" : "a NaN or infinite value";
      char text[32];
      if (isnan(value))
        snprintf(text, sizeof text, "nan");
      else if (isinf(value))
        snprintf(text, sizeof text, "%s", value > 0 ? "inf" : "-inf");
      else
        snprintf(text, sizeof text, "%g", (double)value);
      return kiln_status_make(KILN_INVALID_ARGUMENT,
                              "%s: tensor '%s' has %s (the first at element %zu: %s); "
                              "build with kilnc build --allow-nonfinite to accept such values",
                              path, name, what, j, text);
    }
  }
  return NULL;
}

/* Runs the load pipeline of each stage of `variant`, from its range of
 * `state` into its range of `packed`. */
static int run_load(const kiln_model_variant_t *variant, float *const *state, float **packed,
                    const char *path, char *out_error) {
  for (size_t s = 0; s < variant->stage_count; ++s) {
    const kiln_model_stage_t *stage = &variant->stages[s];
    if (!stage->load)
      continue;
    size_t states = stage->state_count, count = states + stage->packed_count;
    halide_dimension_t dims[count + 1][KILN_MODEL_MAX_RANK];
    halide_buffer_t buffers[count + 1];
    void *args[count + 2];
    for (size_t i = 0; i < count; ++i) {
      if (i < states)
        kiln_model_describe(&buffers[i], dims[i], state[stage->state_first + i],
                            &variant->state_tensor_layouts[stage->state_first + i]);
      else
        kiln_model_describe(&buffers[i], dims[i], packed[stage->packed_first + i - states],
                            &variant->packed_layouts[stage->packed_first + i - states]);
      args[1 + i] = &buffers[i];
    }
    char message[KILN_MODEL_ERROR_SIZE];
    if (kiln_model_run(stage->load, args, message) != 0)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS, "%s: %s", path, message);
  }
  return 0;
}

/* Checks the values of `state` (the chosen variant's state tensors) and
 * packs them into `packed`: everything but the swap. */
static int pack(const kiln_model_t *model, const kiln_model_variant_t *variant,
                float *const *state, const char *source, float **packed, char *out_error) {
  kiln_status_t status = check_values(model, variant, state, source);
  if (status)
    return fail_status(out_error, status);
  for (size_t i = 0; i < variant->packed_count; ++i)
    if (!(packed[i] = alloc_layout(&variant->packed_layouts[i])))
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS, "%s: out of memory", source);
  return run_load(variant, state, packed, source, out_error);
}

static void free_device_weights(kiln_device_weights_t *weights) {
  if (!weights)
    return;
  for (size_t i = 0; weights->buffers && i < weights->count; ++i)
    kiln_device_release(NULL, &weights->buffers[i]);
  free(weights->buffers);
  free(weights->dims);
  free(weights);
}

/* A GPU variant's packed weights, copied to its device once here, so that
 * calls read them there instead of copying them each time. NULL with
 * `*out_result` 0 for a CPU variant. */
static kiln_device_weights_t *to_device(const kiln_model_variant_t *variant, float **packed,
                                        const char *source, int *out_result, char *out_error) {
  *out_result = 0;
  if (!variant->device_interface || variant->packed_count == 0)
    return NULL;
  const struct halide_device_interface_t *device = variant->device_interface();
  kiln_device_weights_t *weights = (kiln_device_weights_t *)calloc(1, sizeof *weights);
  if (weights) {
    weights->count = variant->packed_count;
    weights->buffers = (halide_buffer_t *)calloc(weights->count, sizeof *weights->buffers);
    weights->dims = (halide_dimension_t(*)[KILN_MODEL_MAX_RANK])calloc(weights->count,
                                                                       sizeof *weights->dims);
  }
  if (!weights || !weights->buffers || !weights->dims) {
    free_device_weights(weights);
    *out_result = kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS, "%s: out of memory",
                                  source);
    return NULL;
  }
  for (size_t i = 0; i < weights->count; ++i) {
    halide_buffer_t *buffer = &weights->buffers[i];
    kiln_model_describe(buffer, weights->dims[i], packed[i], &variant->packed_layouts[i]);
    buffer->flags |= halide_buffer_flag_host_dirty;
    kiln_call_t call;
    kiln_call_begin(&call);
    int result = device->copy_to_device(&call, buffer, device);
    kiln_call_end(&call);
    if (result) {
      free_device_weights(weights);
      *out_result = kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                                    "%s: copying the weights to the device failed: %s", source,
                                    call.message[0] ? call.message : "Halide runtime error");
      return NULL;
    }
  }
  return weights;
}

/* On success, `packed` replaces the weights loaded before (on a GPU
 * variant's device too); on failure it is freed and they stay. Returns
 * `result`. */
static int replace_weights(const kiln_model_t *model, const kiln_model_variant_t *variant,
                           int result, float **packed, const char *source, char *out_error) {
  kiln_device_weights_t *device = NULL;
  if (!result)
    device = to_device(variant, packed, source, &result, out_error);
  if (result) {
    free_all(packed, variant->packed_count);
    return result;
  }
  kiln_model_free_weights(model);
  model->state->weights = packed;
  model->state->device_weights = device;
  model->state->loaded = 1;
  return 0;
}

/* The file's checks and tensors, then pack. */
static int load(const kiln_model_t *model, const kiln_model_variant_t *variant,
                const kiln_safetensors_t *file, const char *path, float **packed,
                char *out_error) {
  kiln_status_t status = kiln_model_check_weights(model, file, path);
  if (status)
    return fail_status(out_error, status);
  float **state = (float **)calloc(variant->state_tensor_count + 1, sizeof(float *));
  if (!state)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS, "%s: out of memory", path);
  int result = 0;
  if ((status = read_state(variant, file, path, state)))
    result = fail_status(out_error, status);
  else
    result = pack(model, variant, state, path, packed, out_error);
  free_all(state, variant->state_tensor_count);
  return result;
}

int kiln_model_load_weights(const kiln_model_t *model, const char *path, char *out_error) {
  if (!path)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: path is NULL");
  if (!model->external_weights)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "%s: the weights of %s are compiled in", path, model->name);
  int choice = kiln_model_select(model);
  if (choice < 0)
    return kiln_model_no_variant(model, out_error);
  /* The layouts of the variant that runs: its panels are as wide as its
   * vectors. */
  const kiln_model_variant_t *variant = &model->variants[choice];
  kiln_safetensors_t *file = NULL;
  kiln_status_t status = kiln_safetensors_open(path, &file);
  if (status)
    return fail_status(out_error, status);
  float **packed = (float **)calloc(variant->packed_count + 1, sizeof(float *));
  int result = packed ? load(model, variant, file, path, packed, out_error)
                      : kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                                        "%s: out of memory", path);
  kiln_safetensors_close(file);
  return replace_weights(model, variant, result, packed, path, out_error);
}

int kiln_model_load_tensors(const kiln_model_t *model, float *const *tensors, const char *source,
                            char *out_error) {
  if (!model->external_weights || (!tensors && model->variants[0].state_tensor_count))
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: %s has no weights to load from memory",
                           model->name);
  int choice = kiln_model_select(model);
  if (choice < 0)
    return kiln_model_no_variant(model, out_error);
  const kiln_model_variant_t *variant = &model->variants[choice];
  float **packed = (float **)calloc(variant->packed_count + 1, sizeof(float *));
  int result = packed ? pack(model, variant, tensors, source, packed, out_error)
                      : kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                                        "%s: out of memory", source);
  return replace_weights(model, variant, result, packed, source, out_error);
}

void kiln_model_free_weights(const kiln_model_t *model) {
  kiln_model_state_t *state = model->state;
  int choice = state->selected > 0 ? state->selected - 1 : -1;
  if (state->weights && choice >= 0)
    free_all(state->weights, model->variants[choice].packed_count);
  free_device_weights(state->device_weights);
  state->device_weights = NULL;
  state->weights = NULL;
  state->loaded = 0;
}

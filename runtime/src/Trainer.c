/*===- Trainer.c - a compiled training step and its state ---------------===*
 *
 * kiln_trainer_* (trainer.h): the state of a model built with `kilnc build
 * --mode=train`, loaded from and saved to checkpoints, stepped by the
 * compiled training step, and packed for the eval forward. What
 * kiln::TrainStep (compiler/lib/Driver/TrainStep.cpp) does for the JIT, with
 * the same checks and messages.
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/trainer.h"

#include "kiln/runtime/call.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CSupport.h"
#include "ModelSupport.h"

/* A set of tensors (the state, or the scratch tensors between the step's
 * stages): a host array per tensor and the halide_buffer_t that describes
 * it to the step. On a GPU the buffers keep their device allocations from
 * step to step, so the state stays on the device: the update stage writes
 * it there in place, and only what the host reads (checkpoints, the eval
 * forward's packing, kiln_trainer_state_data) is copied back, once per
 * change (state_to_host). On a CPU the buffers have no device and these
 * copies do nothing. */
typedef struct state_set_t {
  void **host;
  halide_buffer_t *buffers;
  halide_dimension_t (*dims)[KILN_MODEL_MAX_RANK];
} state_set_t;

struct kiln_trainer_s {
  const kiln_trainer_model_t *model;
  /* The eval forward's description with this trainer's own packed weights
   * (a copy of model->eval whose state points below). */
  kiln_model_t eval;
  kiln_model_state_t eval_state;
  /* The variant's stages (model->stage_count pipelines). */
  const kiln_model_pipeline_t *stages;
  int variant;
  state_set_t state, scratch;
  /* Per state tensor of the eval variant's load pipelines: its index in
   * model->state. */
  size_t *eval_slots;
  float **eval_tensors;
  /* The hyper-parameters' current values (model->hyper's order): the
   * step's scalar arguments point here. */
  double *hyper;
  bool loaded;     /* a load_state succeeded, and no update failed since */
  bool eval_stale; /* the state changed since eval packed it */
  int64_t steps;   /* steps since the last load */
};

static size_t element_count(const kiln_trainer_tensor_t *tensor) {
  size_t count = 1;
  for (size_t d = 0; d < tensor->rank; ++d)
    count *= (size_t)tensor->shape[d];
  return count;
}

static size_t byte_size(const kiln_trainer_tensor_t *tensor) {
  return element_count(tensor) * (tensor->integer ? sizeof(int64_t) : sizeof(float));
}

static void free_buffers(void **buffers, size_t count) {
  if (!buffers)
    return;
  for (size_t i = 0; i < count; ++i)
    free(buffers[i]);
  free(buffers);
}

/* `count` zeroed buffers, one per state tensor, 64-byte aligned as the
 * pipelines assume of their buffers; NULL when out of memory. */
static void **alloc_buffers(const kiln_trainer_tensor_t *tensors, size_t count) {
  void **buffers = (void **)calloc(count + 1, sizeof(void *));
  for (size_t i = 0; buffers && i < count; ++i) {
    size_t bytes = byte_size(&tensors[i]);
    if (!(buffers[i] = kiln_aligned_alloc(bytes))) {
      free_buffers(buffers, i);
      return NULL;
    }
    memset(buffers[i], 0, bytes);
  }
  return buffers;
}

/* Releases a set's device allocations (its host arrays stay). */
static void release_devices(state_set_t *set, size_t count) {
  for (size_t i = 0; set->buffers && i < count; ++i)
    kiln_device_release(NULL, &set->buffers[i]);
}

/* Describes `host` (arrays of `tensors`) in a set's buffers, their host
 * side the newest: a GPU step copies them to the device first. */
static void describe_set(const kiln_trainer_tensor_t *tensors, size_t count, state_set_t *set,
                         void **host) {
  release_devices(set, count);
  set->host = host;
  for (size_t i = 0; i < count; ++i) {
    const kiln_trainer_tensor_t *tensor = &tensors[i];
    kiln_model_describe_tensor(&set->buffers[i], set->dims[i], host[i], tensor->integer,
                               tensor->rank, tensor->shape, false, 0);
    set->buffers[i].flags |= halide_buffer_flag_host_dirty;
  }
}

static void describe_state(kiln_trainer_t *trainer, void **host) {
  describe_set(trainer->model->state, trainer->model->state_count, &trainer->state, host);
}

/* Brings the set's device values back to its host arrays, where they are
 * newer (after a GPU step). 0 or the Halide runtime's error code. */
static int state_to_host(state_set_t *set, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    int result = kiln_device_to_host(NULL, &set->buffers[i]);
    if (result)
      return result;
  }
  return 0;
}

static bool alloc_set(const kiln_trainer_tensor_t *tensors, size_t count, state_set_t *set) {
  set->buffers = (halide_buffer_t *)calloc(count + 1, sizeof *set->buffers);
  set->dims = (halide_dimension_t(*)[KILN_MODEL_MAX_RANK])calloc(count + 1, sizeof *set->dims);
  void **host = alloc_buffers(tensors, count);
  if (!set->buffers || !set->dims || !host) {
    free_buffers(host, count);
    return false;
  }
  describe_set(tensors, count, set, host);
  return true;
}

static void free_set(size_t count, state_set_t *set) {
  release_devices(set, count);
  free_buffers(set->host, count);
  free(set->buffers);
  free(set->dims);
}

static int find_state(const kiln_trainer_model_t *model, const char *name) {
  for (size_t i = 0; i < model->state_count; ++i)
    if (strcmp(model->state[i].name, name) == 0)
      return (int)i;
  return -1;
}

void kiln_trainer_destroy(kiln_trainer_t *trainer) {
  if (!trainer)
    return;
  kiln_model_free_weights(&trainer->eval);
  free_set(trainer->model->state_count, &trainer->state);
  free_set(trainer->model->scratch_count, &trainer->scratch);
  free(trainer->eval_slots);
  free(trainer->eval_tensors);
  free(trainer->hyper);
  free(trainer);
}

/* Maps the eval variant's state tensors to the trainer's. */
static int map_eval_state(kiln_trainer_t *trainer, char *out_error) {
  const kiln_model_variant_t *variant = &trainer->eval.variants[trainer->variant];
  size_t count = variant->state_tensor_count;
  trainer->eval_slots = (size_t *)calloc(count + 1, sizeof(size_t));
  trainer->eval_tensors = (float **)calloc(count + 1, sizeof(float *));
  if (!trainer->eval_slots || !trainer->eval_tensors)
    return kiln_model_fail(out_error, halide_error_code_out_of_memory, "out of memory");
  for (size_t i = 0; i < count; ++i) {
    int slot = find_state(trainer->model, variant->state_tensor_names[i]);
    if (slot < 0 || trainer->model->state[slot].integer)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "%s: the eval forward reads '%s', which is no float state tensor "
                             "of the training step",
                             trainer->model->name, variant->state_tensor_names[i]);
    trainer->eval_slots[i] = (size_t)slot;
  }
  return 0;
}

int kiln_trainer_create(const kiln_trainer_model_t *model, kiln_trainer_t **out_trainer,
                        char *out_error) {
  if (!out_trainer)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: out_trainer is NULL");
  *out_trainer = NULL;
  kiln_trainer_t *trainer = (kiln_trainer_t *)calloc(1, sizeof *trainer);
  if (!trainer)
    return kiln_model_fail(out_error, halide_error_code_out_of_memory, "out of memory");
  trainer->model = model;
  trainer->eval = *model->eval;
  trainer->eval.state = &trainer->eval_state;
  trainer->variant = kiln_model_select(&trainer->eval);
  if (trainer->variant < 0) {
    int code = kiln_model_no_variant(&trainer->eval, out_error);
    kiln_trainer_destroy(trainer);
    return code;
  }
  trainer->stages = &model->steps[(size_t)trainer->variant * model->stage_count];
  trainer->hyper = (double *)calloc(model->hyper_count + 1, sizeof(double));
  if (!trainer->hyper) {
    kiln_trainer_destroy(trainer);
    return kiln_model_fail(out_error, halide_error_code_out_of_memory, "out of memory");
  }
  for (size_t i = 0; i < model->hyper_count; ++i)
    trainer->hyper[i] = model->hyper[i].value;
  if (!alloc_set(model->state, model->state_count, &trainer->state) ||
      !alloc_set(model->scratch, model->scratch_count, &trainer->scratch)) {
    kiln_trainer_destroy(trainer);
    return kiln_model_fail(out_error, halide_error_code_out_of_memory,
                           "out of memory for the training state");
  }
  int result = map_eval_state(trainer, out_error);
  if (result) {
    kiln_trainer_destroy(trainer);
    return result;
  }
  *out_trainer = trainer;
  return 0;
}

static bool same_shape(const kiln_tensor_info_t *info, const kiln_trainer_tensor_t *tensor) {
  if (info->rank != tensor->rank)
    return false;
  return info->rank == 0 || memcmp(info->shape, tensor->shape, info->rank * sizeof(int64_t)) == 0;
}

/* Reads every state tensor of `file` into `buffers` (zero where optimizer
 * state is absent). */
static kiln_status_t read_state(const kiln_trainer_model_t *model, const kiln_safetensors_t *file,
                                const char *path, void **buffers) {
  for (size_t i = 0; i < model->state_count; ++i) {
    const kiln_trainer_tensor_t *tensor = &model->state[i];
    kiln_tensor_info_t info;
    kiln_status_t status = kiln_safetensors_find(file, tensor->name, &info);
    if (status) {
      kiln_status_free(status);
      if (tensor->optimizer)
        continue;
      return kiln_status_make(KILN_NOT_FOUND, "%s: no tensor '%s'", path, tensor->name);
    }
    if (!same_shape(&info, tensor))
      return kiln_status_make(KILN_INVALID_ARGUMENT,
                              "%s: tensor '%s' has another shape than the model's", path,
                              tensor->name);
    KILN_RETURN_IF_ERROR(
        tensor->integer
            ? kiln_safetensors_read_i64(file, tensor->name, info.count, (int64_t *)buffers[i])
            : kiln_safetensors_read_f32(file, tensor->name, info.count, (float *)buffers[i]));
  }
  return NULL;
}

static int fail_status(char *out_error, int code, kiln_status_t status) {
  kiln_model_fail(out_error, code, "%s", kiln_status_message(status));
  kiln_status_free(status);
  return code;
}

int kiln_trainer_load_state(kiln_trainer_t *trainer, const char *path, char *out_error) {
  if (!trainer || !path)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer and path must be non-null");
  const kiln_trainer_model_t *model = trainer->model;
  /* Read into fresh buffers: a failed load changes nothing. */
  void **loaded = alloc_buffers(model->state, model->state_count);
  if (!loaded)
    return kiln_model_fail(out_error, halide_error_code_out_of_memory,
                           "%s: out of memory", path);
  kiln_safetensors_t *file = NULL;
  kiln_status_t status = kiln_safetensors_open(path, &file);
  if (!status)
    status = read_state(model, file, path, loaded);
  kiln_safetensors_close(file);
  if (status) {
    free_buffers(loaded, model->state_count);
    return fail_status(out_error, KILN_MODEL_ERROR_WEIGHTS, status);
  }
  free_buffers(trainer->state.host, model->state_count);
  describe_state(trainer, loaded);
  trainer->loaded = true;
  trainer->eval_stale = true;
  trainer->steps = 0;
  return 0;
}

int kiln_trainer_initialise(kiln_trainer_t *trainer, uint64_t seed, char *out_error) {
  if (!trainer)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer is NULL");
  const kiln_trainer_model_t *model = trainer->model;
  for (size_t i = 0; i < model->state_count; ++i)
    if (model->state[i].initial == KILN_INITIAL_NONE)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                             "'%s' has no default initialisation (PyTorch's, for Linear, Conv2d "
                             "and BatchNorm layers): give the initial state with --init",
                             model->state[i].name);
  for (size_t i = 0; i < model->state_count; ++i) {
    const kiln_trainer_tensor_t *tensor = &model->state[i];
    size_t count = element_count(tensor);
    void *data = trainer->state.host[i];
    if (tensor->initial == KILN_INITIAL_ZERO) {
      memset(data, 0, byte_size(tensor));
    } else if (tensor->integer) {
      for (size_t k = 0; k < count; ++k)
        ((int64_t *)data)[k] = (int64_t)tensor->initial_value;
    } else if (tensor->initial == KILN_INITIAL_FILL) {
      for (size_t k = 0; k < count; ++k)
        ((float *)data)[k] = (float)tensor->initial_value;
    } else {
      uint64_t stream = kiln_initial_stream(tensor->name);
      for (size_t k = 0; k < count; ++k)
        ((float *)data)[k] = kiln_initial_uniform(seed, stream, k, tensor->initial_bound);
    }
  }
  describe_state(trainer, trainer->state.host);
  trainer->loaded = true;
  trainer->eval_stale = true;
  trainer->steps = 0;
  return 0;
}

static kiln_status_t add_state(const kiln_trainer_t *trainer, kiln_safetensors_writer_t *writer) {
  const kiln_trainer_model_t *model = trainer->model;
  for (size_t i = 0; i < model->state_count; ++i) {
    const kiln_trainer_tensor_t *tensor = &model->state[i];
    KILN_RETURN_IF_ERROR(kiln_safetensors_writer_add(
        writer, tensor->name, tensor->integer ? KILN_DTYPE_I64 : KILN_DTYPE_F32, tensor->rank,
        tensor->shape, trainer->state.host[i]));
  }
  char steps[32];
  snprintf(steps, sizeof steps, "%lld", (long long)trainer->steps);
  KILN_RETURN_IF_ERROR(kiln_safetensors_writer_set_metadata(writer, "format", "pt"));
  KILN_RETURN_IF_ERROR(
      kiln_safetensors_writer_set_metadata(writer, "generator", KILN_CHECKPOINT_GENERATOR));
  return kiln_safetensors_writer_set_metadata(writer, "steps", steps);
}

int kiln_trainer_save_state(const kiln_trainer_t *trainer, const char *path, char *out_error) {
  if (!trainer || !path)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer and path must be non-null");
  if (!trainer->loaded)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                           "no state loaded: call %s_load_state first", trainer->model->name);
  /* The copy from the device changes where the values are, not them. */
  int synced = state_to_host((state_set_t *)&trainer->state, trainer->model->state_count);
  if (synced)
    return kiln_model_fail(out_error, synced, "could not copy the training state from the device");
  kiln_safetensors_writer_t *writer = NULL;
  kiln_status_t status = kiln_safetensors_writer_create(&writer);
  if (!status)
    status = add_state(trainer, writer);
  if (!status)
    status = kiln_safetensors_writer_write(writer, path);
  kiln_safetensors_writer_free(writer);
  return status ? fail_status(out_error, KILN_TRAINER_ERROR_WRITE, status) : 0;
}

/* The buffer of step argument `kind`: the batch's arrays and metrics. */
static void describe_arg(const kiln_trainer_t *trainer, int kind, const float *inputs,
                         const int64_t *labels, int64_t batch, float *loss, int64_t *correct,
                         halide_buffer_t *buffer, halide_dimension_t *dims) {
  const kiln_model_tensor_t *input = &trainer->eval.input;
  int64_t label_shape[1] = {-1};
  switch (kind) {
  case KILN_TRAINER_ARG_INPUT:
    kiln_model_describe_tensor(buffer, dims, inputs, false, input->rank, input->shape, true,
                               batch);
    return;
  case KILN_TRAINER_ARG_LABELS:
    kiln_model_describe_tensor(buffer, dims, labels, true, 1, label_shape, true, batch);
    return;
  case KILN_TRAINER_ARG_LOSS:
    kiln_model_describe_tensor(buffer, dims, loss, false, 0, NULL, false, 0);
    return;
  case KILN_TRAINER_ARG_CORRECT:
    kiln_model_describe_tensor(buffer, dims, correct, true, 0, NULL, false, 0);
    return;
  }
}

/* j where `kind` is KILN_TRAINER_ARG_HYPER_PARAMETER(j), else -1. */
static int hyper_index(const kiln_trainer_model_t *model, int kind) {
  int j = -16 - kind;
  return kind <= KILN_TRAINER_ARG_HYPER_PARAMETER(0) && (size_t)j < model->hyper_count ? j : -1;
}

/* j where `kind` is KILN_TRAINER_ARG_SCRATCH(j), else -1. */
static int scratch_index(const kiln_trainer_model_t *model, int kind) {
  int j = KILN_TRAINER_ARG_SCRATCH(0) - kind;
  return kind <= KILN_TRAINER_ARG_SCRATCH(0) && (size_t)j < model->scratch_count ? j : -1;
}

static int find_hyper(const kiln_trainer_model_t *model, const char *name) {
  for (size_t i = 0; i < model->hyper_count; ++i)
    if (strcmp(model->hyper[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int unknown_hyper(const kiln_trainer_model_t *model, const char *name, char *out_error) {
  char names[256] = "";
  for (size_t i = 0; i < model->hyper_count; ++i) {
    size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", model->hyper[i].name);
  }
  return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                         "%s has no hyper-parameter '%s' (its hyper-parameters: %s)",
                         model->optimizer ? model->optimizer : "the optimizer", name, names);
}

/* The value of `name` in `values`, or `otherwise` where the optimizer has
 * none. */
static double hyper_or(const kiln_trainer_model_t *model, const double *values, const char *name,
                       double otherwise) {
  int j = find_hyper(model, name);
  return j < 0 ? otherwise : values[j];
}

/* torch.optim's checks of its arguments (1.13's messages), and what the
 * build fixed, on the values a set would leave; 0 or an error. */
static int check_hyper(const kiln_trainer_model_t *model, const double *values, char *out_error) {
  for (size_t i = 0; i < model->hyper_count; ++i) {
    const char *name = model->hyper[i].name;
    double value = values[i];
    if (!isfinite(value))
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "%s must be a finite number, not %g", name, value);
    bool beta = strcmp(name, "beta1") == 0 || strcmp(name, "beta2") == 0;
    if (beta && !(value >= 0 && value < 1))
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "Invalid beta parameter at index %d: %g (%s must be in [0, 1))",
                             name[4] == '1' ? 0 : 1, value, name);
    if (!beta && strcmp(name, "dampening") != 0 && value < 0)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "Invalid %s value: %g (%s must be >= 0)",
                             strcmp(name, "lr") == 0 ? "learning rate" : name, value, name);
  }
  double momentum = hyper_or(model, values, "momentum", 0);
  if (momentum != 0 && !model->momentum_buffers)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "momentum %g: %s was built without momentum (its sgd had momentum "
                           "0), so its step has no momentum buffers; build it with a momentum "
                           "(the train section's sgd, or kilnc build --momentum)",
                           momentum, model->name);
  if (model->nesterov && (momentum <= 0 || hyper_or(model, values, "dampening", 0) != 0))
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "Nesterov momentum requires a momentum and zero dampening (%s was "
                           "built with nesterov=true)",
                           model->name);
  return 0;
}

int kiln_trainer_set_hyper_parameter(kiln_trainer_t *trainer, const char *name, double value,
                                     char *out_error) {
  if (!trainer || !name)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer and name must be non-null");
  const kiln_trainer_model_t *model = trainer->model;
  int j = find_hyper(model, name);
  if (j < 0)
    return unknown_hyper(model, name, out_error);
  double was = trainer->hyper[j];
  trainer->hyper[j] = value;
  int result = check_hyper(model, trainer->hyper, out_error);
  if (result)
    trainer->hyper[j] = was;
  return result;
}

int kiln_trainer_hyper_parameter(const kiln_trainer_t *trainer, const char *name,
                                 double *out_value, char *out_error) {
  if (!trainer || !name || !out_value)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer, name and out_value must be non-null");
  int j = find_hyper(trainer->model, name);
  if (j < 0)
    return unknown_hyper(trainer->model, name, out_error);
  *out_value = trainer->hyper[j];
  return 0;
}

static int check_batch(const kiln_trainer_t *trainer, const int64_t *labels, int64_t batch,
                       char *out_error) {
  const kiln_trainer_model_t *model = trainer->model;
  if (!trainer->loaded)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                           "no state loaded: call %s_load_state first", model->name);
  /* PyTorch's train-mode BatchNorm refuses one value per channel. */
  if (batch < model->smallest_batch)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "expected more than 1 value per channel when training, got a batch "
                           "of %lld",
                           (long long)batch);
  /* PyTorch's cross-entropy: "Target out of bounds". */
  for (int64_t i = 0; i < batch; ++i)
    if (labels[i] < 0 || labels[i] >= model->classes)
      return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                             "label %lld of sample %lld is out of bounds: the model has %lld "
                             "classes",
                             (long long)labels[i], (long long)i, (long long)model->classes);
  return 0;
}

/* Runs one stage of the step: `pipeline`, with `stage`'s arguments. */
static int run_stage(kiln_trainer_t *trainer, const kiln_trainer_stage_t *stage,
                     kiln_model_pipeline_t pipeline, const float *inputs, const int64_t *labels,
                     int64_t batch, float *loss, int64_t *correct, char *out_error) {
  const kiln_trainer_model_t *model = trainer->model;
  size_t count = stage->input_count + stage->output_count;
  halide_dimension_t dims[count][KILN_MODEL_MAX_RANK];
  halide_buffer_t buffers[count];
  void *args[count + 1];
  for (size_t i = 0; i < count; ++i) {
    bool output = i >= stage->input_count;
    int kind = output ? stage->outputs[i - stage->input_count] : stage->inputs[i];
    int hyper = hyper_index(model, kind);
    int scratch = scratch_index(model, kind);
    if (hyper >= 0) {
      /* A scalar argument: Halide's argv form takes a pointer to it. */
      args[1 + i] = &trainer->hyper[hyper];
      continue;
    }
    if (kind >= 0 || scratch >= 0) {
      /* A state or scratch tensor: the trainer's own buffer, on the device
       * after the first step of a GPU variant. The update stage reads the
       * state it writes (in place), so a state output's host side stays
       * what it is (newer after a load: copied to the device first); a
       * scratch tensor is written whole, its host side never read. */
      halide_buffer_t *buffer =
          kind >= 0 ? &trainer->state.buffers[kind] : &trainer->scratch.buffers[scratch];
      if (output && scratch >= 0)
        buffer->flags &= ~(uint64_t)halide_buffer_flag_host_dirty;
      args[1 + i] = buffer;
      continue;
    }
    describe_arg(trainer, kind, inputs, labels, batch, loss, correct, &buffers[i], dims[i]);
    if (!output)
      buffers[i].flags |= halide_buffer_flag_host_dirty;
    args[1 + i] = &buffers[i];
  }
  int result = kiln_model_run(pipeline, args, out_error);
  /* The batch goes, the metrics come back (a GPU variant's; on a CPU the
   * buffers have no device). */
  for (size_t i = 0; i < count; ++i) {
    bool output = i >= stage->input_count;
    int kind = output ? stage->outputs[i - stage->input_count] : stage->inputs[i];
    if (kind >= 0 || hyper_index(model, kind) >= 0 || scratch_index(model, kind) >= 0)
      continue;
    if (output && result == 0)
      result = kiln_device_to_host(NULL, &buffers[i]);
    kiln_device_release(NULL, &buffers[i]);
  }
  return result;
}

int kiln_trainer_step(kiln_trainer_t *trainer, const float *inputs, const int64_t *labels,
                      int64_t batch, float *out_loss, int64_t *out_correct, char *out_error) {
  if (!trainer || !inputs || !labels || batch < 1 || batch > INT32_MAX)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer, inputs and labels must be non-null and "
                           "1 <= batch <= 2^31-1 (batch %lld)",
                           (long long)batch);
  int result = check_batch(trainer, labels, batch, out_error);
  if (result)
    return result;
  const kiln_trainer_model_t *model = trainer->model;
  float loss = 0;
  int64_t correct = 0;
  for (size_t s = 0; s < model->stage_count; ++s) {
    result = run_stage(trainer, &model->stages[s], trainer->stages[s], inputs, labels, batch,
                       &loss, &correct, out_error);
    if (result && s + 1 == model->stage_count) {
      /* The update writes in place: some tensors may be new, some old. */
      trainer->loaded = false;
      char message[KILN_MODEL_ERROR_SIZE];
      snprintf(message, sizeof message, "%s", out_error ? out_error : "");
      return kiln_model_fail(out_error, result,
                             "%s (the training state is partly updated: load a state before the "
                             "next step)",
                             message);
    }
    if (result)
      return result;
  }
  trainer->eval_stale = true;
  ++trainer->steps;
  if (out_loss)
    *out_loss = loss;
  if (out_correct)
    *out_correct = correct;
  return 0;
}

int kiln_trainer_eval(kiln_trainer_t *trainer, const float *inputs, int64_t batch,
                      float *out_logits, char *out_error) {
  if (!trainer)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_INVALID_ARGUMENT,
                           "invalid argument: trainer is NULL");
  if (!trainer->loaded)
    return kiln_model_fail(out_error, KILN_MODEL_ERROR_WEIGHTS,
                           "no state loaded: call %s_load_state first", trainer->model->name);
  if (trainer->eval_stale) {
    int synced = state_to_host(&trainer->state, trainer->model->state_count);
    if (synced)
      return kiln_model_fail(out_error, synced,
                             "could not copy the training state from the device");
    const kiln_model_variant_t *variant = &trainer->eval.variants[trainer->variant];
    for (size_t i = 0; i < variant->state_tensor_count; ++i)
      trainer->eval_tensors[i] = (float *)trainer->state.host[trainer->eval_slots[i]];
    int result = kiln_model_load_tensors(&trainer->eval, trainer->eval_tensors,
                                         "the training state", out_error);
    if (result)
      return result;
    trainer->eval_stale = false;
  }
  return kiln_model_infer(&trainer->eval, inputs, batch, out_logits, out_error);
}

void *kiln_trainer_state_data(kiln_trainer_t *trainer, size_t index) {
  if (!trainer || index >= trainer->model->state_count)
    return NULL;
  if (state_to_host(&trainer->state, trainer->model->state_count))
    return NULL;
  return trainer->state.host[index];
}

const char *kiln_trainer_variant(const kiln_trainer_t *trainer) {
  return trainer ? trainer->eval.variants[trainer->variant].target : NULL;
}

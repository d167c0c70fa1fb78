/* Kiln runtime: the training step of a model, as `kilnc build --mode=train`
 * describes it.
 *
 * What `kilnc build --mode=train` generates is data, a kiln_trainer_model_t
 * (the state tensors under their state_dict keys, the compiled training
 * step of each target variant and the order of its arguments, the eval
 * forward as a kiln_model_t with external weights), and thin entry points
 * with the documented ABI (OUT.h) that call the functions below:
 *
 *   int OUT_train_step(OUT_trainer_t *t, const float *inputs, const int64_t *labels,
 *                      int64_t batch, float *out_loss, int64_t *out_correct) {
 *     return kiln_trainer_step(t, inputs, labels, batch, out_loss, out_correct, error);
 *   }
 *
 * A step is two pipelines, as kiln::TrainStep runs them for the JIT: the
 * gradients stage (forward, loss, backward) writes the gradients into
 * scratch tensors the trainer allocates once; the update stage (optimizer,
 * running statistics, counters) reads them and writes the state in place,
 * over the one buffer per state tensor the trainer holds. The step and
 * eval run the same schedules as `kilnc train`'s JIT, so a checkpoint after
 * K steps is the same, bit for bit.
 *
 * Checkpoints are safetensors files keyed as `kilnc train` writes them: the
 * state_dict keys, the optimizer state (<key>.momentum_buffer,
 * <key>.exp_avg, <key>.exp_avg_sq) and "step"; a load takes every
 * parameter and buffer, and the optimizer state where present (zero where
 * absent: a fresh optimizer, as torch.optim's). A save writes by the rules
 * of output.h (a file atomically: nothing half-written).
 *
 * Error codes are those of model.h (0, KILN_MODEL_ERROR_*, a negative code
 * of the Halide runtime) and KILN_TRAINER_ERROR_WRITE; `out_error` is the
 * model's per-thread message buffer (KILN_MODEL_ERROR_SIZE bytes), which a
 * failure fills and a success leaves alone.
 *
 * Ownership: a kiln_trainer_model_t is static data of the generated code; a
 * kiln_trainer_t is the caller's from create to destroy.
 * Thread safety: one call at a time per trainer; several trainers may run
 * on several threads at once.
 */
#ifndef KILN_RUNTIME_TRAINER_H
#define KILN_RUNTIME_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime/initial_state.h"
#include "kiln/runtime/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Besides model.h's: a checkpoint that cannot be written (save_state). The
 * state that cannot be read is KILN_MODEL_ERROR_WEIGHTS. */
enum { KILN_TRAINER_ERROR_WRITE = 4 };

/* The "generator" of the checkpoints Kiln writes (kilnc train and the
 * programs of kilnc build --mode=train write the same bytes). */
#define KILN_CHECKPOINT_GENERATOR "kiln"

/* A state tensor: a parameter, a buffer, optimizer state or "step". */
typedef struct kiln_trainer_tensor_t {
  const char *name;     /* the state_dict key, or the optimizer state's */
  int integer;          /* int64 (num_batches_tracked, step), else float32 */
  size_t rank;
  const int64_t *shape; /* C order; NULL for rank 0 */
  int optimizer;        /* optimizer state: zero where a checkpoint has none */
  int initial;          /* its default initialisation: a kiln_initial_kind_t */
  double initial_bound; /* KILN_INITIAL_UNIFORM: U(-bound, bound) */
  double initial_value; /* KILN_INITIAL_FILL: every element */
} kiln_trainer_tensor_t;

/* What a training step's argument is, besides a state tensor (>= 0: its
 * index in kiln_trainer_model_t.state) or a hyper-parameter
 * (KILN_TRAINER_ARG_HYPER_PARAMETER(j)). */
enum {
  KILN_TRAINER_ARG_INPUT = -1,  /* the batch's samples, float32 */
  KILN_TRAINER_ARG_LABELS = -2, /* its class indices, int64 */
  KILN_TRAINER_ARG_LOSS = -3,   /* the mean loss, a float32 scalar */
  KILN_TRAINER_ARG_CORRECT = -4 /* argmax hits, an int64 scalar */
};
/* Hyper-parameter j of kiln_trainer_model_t.hyper, a double scalar. */
#define KILN_TRAINER_ARG_HYPER_PARAMETER(j) (-16 - (int)(j))
/* Scratch tensor j of kiln_trainer_model_t.scratch (j < 2^20). */
#define KILN_TRAINER_ARG_SCRATCH(j) (-(1 << 20) - (int)(j))

/* A pipeline of the training step: its arguments after the user_context,
 * its inputs then its outputs, each a state index, a KILN_TRAINER_ARG_*,
 * a hyper-parameter or a scratch tensor. */
typedef struct kiln_trainer_stage_t {
  size_t input_count;
  const int *inputs;
  size_t output_count;
  const int *outputs;
} kiln_trainer_stage_t;

/* A hyper-parameter of the step's optimizer: a run-time argument of the
 * compiled step, so one program trains with any value of it. */
typedef struct kiln_trainer_hyper_parameter_t {
  const char *name; /* torch.optim's: "lr", "momentum", "dampening",
                       "weight_decay" (sgd); "lr", "beta1", "beta2", "eps",
                       "weight_decay" (adam, adamw) */
  double value;     /* the default: the train section's */
} kiln_trainer_hyper_parameter_t;

typedef struct kiln_trainer_model_t {
  const char *name; /* the API's name, for messages */
  /* The eval forward (inference mode: running statistics, BatchNorm
   * folded), built with external weights: its packed weights are made
   * from the state by its load pipelines. Its variants are the trainer's. */
  const kiln_model_t *eval;
  int64_t classes;
  /* The smallest batch a step takes: 2 where a train-mode BatchNorm1d on
   * [N, C] would see one value per channel, else 1. */
  int64_t smallest_batch;
  size_t state_count;
  const kiln_trainer_tensor_t *state;
  /* The training step of each of eval's variants, in that order: its
   * stage_count pipelines each (variant-major), which run one after
   * another, with the arguments `stages` gives. The last (the update)
   * writes the state in place; the ones before it write only scratch
   * tensors and metrics. */
  const kiln_model_pipeline_t *steps;
  size_t stage_count;
  const kiln_trainer_stage_t *stages;
  /* The tensors one stage writes and a later one reads (the gradients, the
   * batch statistics): static shapes, allocated once per trainer (name,
   * integer, rank and shape of each; the rest unused). */
  size_t scratch_count;
  const kiln_trainer_tensor_t *scratch;
  /* The optimizer ("sgd", "adam", "adamw") and what is compiled into its
   * update: nesterov (sgd), and whether there are momentum buffers (sgd
   * built with a momentum; without, momentum must stay 0). */
  const char *optimizer;
  int nesterov;
  int momentum_buffers;
  size_t hyper_count;
  const kiln_trainer_hyper_parameter_t *hyper;
} kiln_trainer_model_t;

typedef struct kiln_trainer_s kiln_trainer_t;

/* A trainer with every state tensor allocated (zero) and the variant that
 * runs on this CPU chosen; steps fail until a load_state succeeded. */
int kiln_trainer_create(const kiln_trainer_model_t *model, kiln_trainer_t **out_trainer,
                        char *out_error);
/* NULL is allowed. */
void kiln_trainer_destroy(kiln_trainer_t *trainer);

/* Reads the state from the safetensors file at `path` (see above). Every
 * tensor is checked (present unless optimizer state, its shape, its
 * dtype) and read before any is replaced: a failed load changes nothing. */
int kiln_trainer_load_state(kiln_trainer_t *trainer, const char *path, char *out_error);
/* Sets the state to PyTorch's default initialisation drawn from `seed`
 * (kiln/runtime/initial_state.h), as kilnc train starts without --init:
 * every tensor by its `initial` rule. KILN_MODEL_ERROR_WEIGHTS, changing
 * nothing, if a tensor has no rule (a state no Linear, Conv2d or BatchNorm
 * reads). Counts as a load. */
int kiln_trainer_initialise(kiln_trainer_t *trainer, uint64_t seed, char *out_error);
/* Writes the state to `path`: every state tensor, with the metadata
 * format "pt", generator KILN_CHECKPOINT_GENERATOR and "steps", the steps
 * run since the last load. */
int kiln_trainer_save_state(const kiln_trainer_t *trainer, const char *path, char *out_error);

/* One training step on `batch` samples: `inputs` holds batch x the input's
 * sample size floats (C order), `labels` one class index per sample.
 * Refuses labels outside [0, classes) and a batch below smallest_batch, as
 * PyTorch does, before anything runs. The loss and argmax hits are those of
 * the step's own forward, before the update. Neither array needs any
 * alignment. A step that fails before its update stage changes nothing; one
 * whose update fails (only a GPU's runtime can) leaves the state partly
 * updated and refuses every step, save and eval until a load_state or
 * initialise. */
int kiln_trainer_step(kiln_trainer_t *trainer, const float *inputs, const int64_t *labels,
                      int64_t batch, float *out_loss, int64_t *out_correct, char *out_error);

/* Sets hyper-parameter `name` for the steps from now on (a trainer starts
 * with the defaults). Checked as torch.optim checks its arguments, plus
 * what the build fixed: a finite value; lr, momentum, weight_decay and eps
 * >= 0; betas in [0, 1); nesterov's momentum > 0 with dampening 0; no
 * momentum without momentum buffers. KILN_MODEL_ERROR_INVALID_ARGUMENT,
 * changing nothing, for a bad value or a name the optimizer lacks. */
int kiln_trainer_set_hyper_parameter(kiln_trainer_t *trainer, const char *name, double value,
                                     char *out_error);
/* The current value of hyper-parameter `name`; KILN_MODEL_ERROR_INVALID_ARGUMENT
 * for a name the optimizer lacks. */
int kiln_trainer_hyper_parameter(const kiln_trainer_t *trainer, const char *name,
                                 double *out_value, char *out_error);

/* The eval forward on the current state: batch x classes logits. The
 * state is packed for it (BatchNorm folded) at the first eval after a load
 * or a step, then reused. NaN or infinite state gives NaN logits, as in
 * PyTorch, rather than an error. */
int kiln_trainer_eval(kiln_trainer_t *trainer, const float *inputs, int64_t batch,
                      float *out_logits, char *out_error);

/* The current value of state tensor `index` (dense, C order), valid until
 * the next step or load, to read (a GPU variant's state lives on the
 * device, copied here once per step when asked for); NULL for an index out
 * of range, or if the copy from the device failed. */
void *kiln_trainer_state_data(kiln_trainer_t *trainer, size_t index);
/* The Halide target of the variant the trainer runs. */
const char *kiln_trainer_variant(const kiln_trainer_t *trainer);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_TRAINER_H */

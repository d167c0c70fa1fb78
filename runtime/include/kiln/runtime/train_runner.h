/* Kiln runtime: the command-line trainer of `kilnc build --mode=train`.
 *
 * A generated training executable is the model's object, its C wrapper and a
 * main() that hands its kiln_train_program_t (OUT_train_program(), which the
 * shared library exports too) to kiln_train_runner_main. That parses the
 * command line into kiln_train_options_t and runs the trainer `kilnc train`
 * runs (train_loop.h: the same data, checks, batches, checkpoints and
 * messages, bit for bit):
 *
 *   OUT -o CKPT.safetensors [--init W.safetensors | --resume CKPT] [--data DIR]
 *       [--epochs N] [--batch B] [--val-split X] [--patience N] [--delta X]
 *       [--threads N] [--metrics M.csv] [--plot P.svg] [--no-progress]
 *       [--no-shuffle] [--drop-last] [--checkpoint-every N]
 *   OUT --inputs x.npy --labels y.npy --steps K --batch B -o CKPT.safetensors
 *   OUT --eval --init W.safetensors [--data DIR | --inputs x.npy --labels y.npy]
 *   OUT --variant
 *
 * The optimizer's hyper-parameters are the train section's unless given:
 * --lr, --momentum, --dampening, --weight-decay (sgd); --lr, --betas B1,B2,
 * --eps, --weight-decay (adam, adamw). A resumed run keeps the values of
 * the run it resumes, unless given. The optimizer itself, nesterov, whether
 * SGD has momentum buffers and dropout's seed are compiled in; --help
 * prints them with the train section's defaults.
 *
 * The runner is a program, so it prints (stdout for progress and results,
 * stderr for errors) and returns the process's exit code: 0, 1 for a bad
 * file or a failed step, 2 for a bad command line, 130 after SIGINT.
 * Thread safety: call it once, from main.
 */
#ifndef KILN_RUNTIME_TRAIN_RUNNER_H
#define KILN_RUNTIME_TRAIN_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kiln_trainer_s;

/* The model's train section, as the trainer's defaults (train_loop.h). */
typedef struct kiln_train_section_t {
  int64_t epochs, batch;
  double validation;      /* the share of training rows held out */
  int64_t patience;       /* early_stopping(patience, delta); 0: none */
  double delta;
  int64_t seed;
  const char *data;       /* "fashion_mnist", or "" */
  double scale, mean, std; /* the transform of IDX pixels */
} kiln_train_section_t;

/* What the runner needs to know of a compiled training step: the API of
 * OUT.h. */
typedef struct kiln_train_program_t {
  const char *name;
  size_t input_rank;
  const int64_t *input_shape; /* [0] is the batch */
  int64_t classes;
  size_t state_count; /* the tensors a checkpoint holds */
  const char *hyper_parameters; /* one line, for --help */
  int (*create)(struct kiln_trainer_s **out_trainer);
  void (*destroy)(struct kiln_trainer_s *trainer);
  int (*load_state)(struct kiln_trainer_s *trainer, const char *path);
  int (*save_state)(struct kiln_trainer_s *trainer, const char *path);
  int (*train_step)(struct kiln_trainer_s *trainer, const float *inputs, const int64_t *labels,
                    int64_t batch, float *out_loss, int64_t *out_correct);
  int (*eval)(struct kiln_trainer_s *trainer, const float *inputs, int64_t batch,
              float *out_logits);
  const char *(*last_error)(void);
  void (*set_num_threads)(int threads);
  const char *(*variant)(void);
  int64_t smallest_batch;
  int (*state_info)(size_t index, const char **out_name, int *out_int64, size_t *out_rank,
                    const int64_t **out_shape);
  void *(*state_data)(struct kiln_trainer_s *trainer, size_t index);
  const kiln_train_section_t *train;
  /* PyTorch's default initialisation from a seed (trainer.h's
   * kiln_trainer_initialise): what a run starts from without --init. */
  int (*initialise)(struct kiln_trainer_s *trainer, uint64_t seed);
  /* The optimizer's hyper-parameters (trainer.h's
   * kiln_trainer_set_hyper_parameter): hyper_count names, torch.optim's. */
  int (*set_hyper_parameter)(struct kiln_trainer_s *trainer, const char *name, double value);
  int (*hyper_parameter)(struct kiln_trainer_s *trainer, const char *name, double *out_value);
  size_t hyper_count;
  const char *const *hyper_names;
} kiln_train_program_t;

int kiln_train_runner_main(int argc, char **argv, const kiln_train_program_t *program);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_TRAIN_RUNNER_H */

/* A C program that trains through the API of `kilnc build --mode=train
 * --emit=lib -o libbn1d.a` (bn1d.h), as a user embedding a trainer would:
 *   train_embed INIT.safetensors INPUTS.npy LABELS.npy OUT.safetensors LOGITS.raw
 * the calls that must fail first (each prints its message), then 10 steps
 * of 16 rows in order, eval over every row (its logits written as raw
 * float32), and the checkpoint. */
#include "bn1d.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The data of an NPY v1 file (the fixtures' C-order arrays), or NULL. */
static void *read_npy(const char *path, size_t bytes) {
  FILE *file = fopen(path, "rb");
  unsigned char head[10];
  void *data = malloc(bytes);
  if (!file || !data || fread(head, 1, 10, file) != 10 || memcmp(head, "\x93NUMPY\x01", 7) != 0 ||
      fseek(file, 10 + head[8] + 256 * head[9], SEEK_SET) != 0 ||
      fread(data, 1, bytes, file) != bytes) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  fclose(file);
  return data;
}

/* Prints what a call that must fail returned. */
static void expect_failure(const char *what, int status) {
  printf("%s: status %d, %s\n", what, status, status ? bn1d_last_error() : "(no error)");
}

int main(int argc, char **argv) {
  if (argc != 6)
    return 2;
  enum { ROWS = 160, BATCH = 16 };
  float *inputs = (float *)read_npy(argv[2], sizeof(float) * ROWS * BN1D_INPUT_SAMPLE_SIZE);
  int64_t *labels = (int64_t *)read_npy(argv[3], sizeof(int64_t) * ROWS);
  bn1d_trainer_t *trainer = NULL;
  if (bn1d_create(&trainer) != 0) {
    printf("create: %s\n", bn1d_last_error());
    return 1;
  }
  float loss = 0;
  int64_t correct = 0;
  expect_failure("step before load",
                 bn1d_train_step(trainer, inputs, labels, BATCH, &loss, &correct));
  expect_failure("load missing", bn1d_load_state(trainer, "/nonexistent/init.safetensors"));
  if (bn1d_load_state(trainer, argv[1]) != 0) {
    printf("load: %s\n", bn1d_last_error());
    return 1;
  }
  expect_failure("batch 1", bn1d_train_step(trainer, inputs, labels, 1, &loss, &correct));
  int64_t bad[BATCH];
  memcpy(bad, labels, sizeof bad);
  bad[3] = BN1D_CLASSES;
  expect_failure("bad label", bn1d_train_step(trainer, inputs, bad, BATCH, &loss, &correct));
  expect_failure("null inputs", bn1d_train_step(trainer, NULL, labels, BATCH, &loss, &correct));

  const char *names[] = BN1D_STATE_NAMES;
  const char *name = NULL;
  int int64 = 0;
  size_t rank = 0;
  const int64_t *shape = NULL;
  if (bn1d_state_info(0, &name, &int64, &rank, &shape) != 0 || strcmp(name, names[0]) != 0)
    return 1;
  printf("state: %d tensors; %s int64 %d rank %zu [%lld, %lld]\n", BN1D_STATE_COUNT, name, int64,
         rank, (long long)shape[0], (long long)shape[1]);
  expect_failure("state index", bn1d_state_info(BN1D_STATE_COUNT, &name, &int64, &rank, &shape));

  for (int step = 0; step < 10; ++step) {
    int status = bn1d_train_step(trainer, inputs + step * BATCH * BN1D_INPUT_SAMPLE_SIZE,
                                 labels + step * BATCH, BATCH, &loss, &correct);
    if (status != 0) {
      printf("step %d: %s\n", step + 1, bn1d_last_error());
      return 1;
    }
    printf("step %d: loss %.6f, correct %lld/%d\n", step + 1, loss, (long long)correct, BATCH);
  }

  /* Eval twice (the second reuses the packed state): the same logits. */
  static float logits[ROWS * BN1D_CLASSES], again[ROWS * BN1D_CLASSES];
  if (bn1d_eval(trainer, inputs, ROWS, logits) != 0 || bn1d_eval(trainer, inputs, ROWS, again) != 0) {
    printf("eval: %s\n", bn1d_last_error());
    return 1;
  }
  int hits = 0;
  for (int r = 0; r < ROWS; ++r) {
    int best = 0;
    for (int c = 1; c < BN1D_CLASSES; ++c)
      if (logits[r * BN1D_CLASSES + c] > logits[r * BN1D_CLASSES + best])
        best = c;
    hits += best == labels[r];
  }
  printf("eval: %d/%d correct, repeatable %d\n", hits, ROWS, memcmp(logits, again, sizeof logits) == 0);

  FILE *raw = fopen(argv[5], "wb");
  if (!raw || fwrite(logits, sizeof logits, 1, raw) != 1 || fclose(raw) != 0)
    return 1;
  expect_failure("save to a directory", bn1d_save_state(trainer, "/"));
  if (bn1d_save_state(trainer, argv[4]) != 0) {
    printf("save: %s\n", bn1d_last_error());
    return 1;
  }
  bn1d_destroy(trainer);
  printf("saved %s\n", argv[4]);
  return 0;
}

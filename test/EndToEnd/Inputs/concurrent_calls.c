/* Several threads call one model's infer at once, while another changes the
 * number of threads: every call must give the bits of a call made alone.
 * Exercises the generated code's thread pool (one parallel loop at a time on
 * the pool, the others on their callers) and its per-thread scratch arenas.
 * Usage: concurrent_calls (model built as model.o, header model.h) */
#include "model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLERS 4
#define CALLS 200
static const int64_t batches[] = {1, 3, 64, 17};

static float *inputs[4], *expected[4];
static int mismatches, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *caller(void *arg) {
  int id = (int)(intptr_t)arg;
  float *out = malloc(64 * MODEL_OUTPUT_SAMPLE_SIZE * sizeof(float));
  for (int call = 0; call < CALLS; ++call) {
    int which = (id + call) % 4;
    int code = model_infer(inputs[which], batches[which], out);
    int same = memcmp(out, expected[which], batches[which] * MODEL_OUTPUT_SAMPLE_SIZE * sizeof(float)) == 0;
    pthread_mutex_lock(&lock);
    failures += code != 0;
    mismatches += !same;
    pthread_mutex_unlock(&lock);
  }
  free(out);
  model_release_scratch();
  return NULL;
}

static void *resizer(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; ++i)
    model_set_num_threads(1 + i % 3);
  model_set_num_threads(2);
  return NULL;
}

int main(void) {
  for (int b = 0; b < 4; ++b) {
    size_t in = batches[b] * MODEL_INPUT_SAMPLE_SIZE, out = batches[b] * MODEL_OUTPUT_SAMPLE_SIZE;
    inputs[b] = malloc(in * sizeof(float));
    expected[b] = malloc(out * sizeof(float));
    for (size_t i = 0; i < in; ++i)
      inputs[b][i] = (float)((i * 7 + b) % 23) / 23.0f - 0.5f;
    if (model_infer(inputs[b], batches[b], expected[b]) != 0)
      return 1;
  }
  pthread_t threads[CALLERS + 1];
  for (int t = 0; t < CALLERS; ++t)
    pthread_create(&threads[t], NULL, caller, (void *)(intptr_t)t);
  pthread_create(&threads[CALLERS], NULL, resizer, NULL);
  for (int t = 0; t <= CALLERS; ++t)
    pthread_join(threads[t], NULL);
  printf("%d calls on %d threads: %d failed, %d differ\n", CALLERS * CALLS, CALLERS, failures,
         mismatches);
  return failures || mismatches;
}

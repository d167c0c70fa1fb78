/* A C program using a model built with `kilnc build --weights=external
 * --emit=lib -o libmodel.a`, linked with the C compiler alone (no C++
 * runtime), next to the same model built with its weights compiled in
 * (`-o ref.o`). Checks the API's contract around loading:
 *   - infer before any load fails with MODEL_ERROR_WEIGHTS;
 *   - a bad file fails with a message naming it, and loads nothing;
 *   - a good file loads, and infer then gives the embedded build's bits;
 *   - a failed reload keeps the weights loaded before;
 *   - free_weights makes infer fail again;
 *   - a second model with external weights (`other`) links into the same
 *     program and loads its own weights.
 * Usage: load_weights GOOD.safetensors BAD.safetensors OTHER.safetensors */
#include "model.h"
#include "other.h"
#include "ref.h"

#include <stdio.h>
#include <string.h>

#define BATCH 3

static float input[BATCH * MODEL_INPUT_SAMPLE_SIZE];
static float output[BATCH * MODEL_OUTPUT_SAMPLE_SIZE];
static float expected[BATCH * REF_OUTPUT_SAMPLE_SIZE];

static int infer(void) {
  memset(output, 0, sizeof output);
  return model_infer(input, BATCH, output);
}

static int matches(void) { return memcmp(output, expected, sizeof output) == 0; }

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  for (int i = 0; i < BATCH * MODEL_INPUT_SAMPLE_SIZE; ++i)
    input[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
  if (ref_infer(input, BATCH, expected) != 0)
    return 2;

  int code = infer();
  printf("infer before load: %d (%s)\n", code == MODEL_ERROR_WEIGHTS, model_last_error());
  code = model_load_weights(argv[2]);
  printf("bad load: %d (%s)\n", code == MODEL_ERROR_WEIGHTS, model_last_error());
  printf("infer after bad load: %d\n", infer() == MODEL_ERROR_WEIGHTS);
  code = model_load_weights(argv[1]);
  printf("load: %d\n", code);
  code = infer();
  printf("infer: %d, matches the embedded build: %d\n", code, matches());
  code = model_load_weights(argv[2]);
  printf("bad reload: %d", code == MODEL_ERROR_WEIGHTS);
  code = infer();
  printf(", infer: %d, matches: %d\n", code, matches());
  model_free_weights();
  printf("infer after free: %d\n", infer() == MODEL_ERROR_WEIGHTS);
  float other_input[OTHER_INPUT_SAMPLE_SIZE] = {0.5f}, other_output[OTHER_OUTPUT_SAMPLE_SIZE];
  code = other_load_weights(argv[3]);
  printf("other model: load %d, infer %d\n", code, other_infer(other_input, 1, other_output));
  return 0;
}

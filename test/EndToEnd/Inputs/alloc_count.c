/* Counts heap allocations inside lenet_infer: linked with
 * -Wl,--wrap=malloc,--wrap=aligned_alloc,--wrap=calloc,--wrap=realloc, so
 * every allocation the generated code (or its Halide runtime) makes is seen. */
#include "lenet.h"

#include <stdio.h>
#include <stdlib.h>

static int counting;
static long allocations;

void *__real_malloc(size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);
void *__wrap_malloc(size_t size) { allocations += counting; return __real_malloc(size); }
void *__wrap_aligned_alloc(size_t alignment, size_t size) {
  allocations += counting;
  return __real_aligned_alloc(alignment, size);
}
void *__wrap_calloc(size_t count, size_t size) { allocations += counting; return __real_calloc(count, size); }
void *__wrap_realloc(void *ptr, size_t size) { allocations += counting; return __real_realloc(ptr, size); }

static float input[256 * LENET_INPUT_SAMPLE_SIZE], output[256 * LENET_OUTPUT_SAMPLE_SIZE];

static long allocations_in(int batch, int calls) {
  allocations = 0;
  counting = 1;
  for (int i = 0; i < calls; ++i)
    if (lenet_infer(input, batch, output) != 0) {
      fprintf(stderr, "%s\n", lenet_last_error());
      exit(1);
    }
  counting = 0;
  return allocations;
}

int main(void) {
  for (int i = 0; i < 256 * LENET_INPUT_SAMPLE_SIZE; ++i)
    input[i] = (float)(i % 255) / 255.0f;
  printf("first call, batch 64: %ld\n", allocations_in(64, 1) > 0 ? 1L : 0L);
  printf("next calls, batch 64: %ld\n", allocations_in(64, 5));
  printf("smaller batch 7: %ld\n", allocations_in(7, 5));
  printf("larger batch 256, first: %ld\n", allocations_in(256, 1) > 0 ? 1L : 0L);
  printf("larger batch 256, next: %ld\n", allocations_in(256, 5));
  lenet_release_scratch();
  return 0;
}

/* A program with Halide code of its own next to a Kiln model (net.o). It
 * defines the Halide runtime's overridable functions, as a program that
 * customizes its own Halide runtime does (strong definitions replace the
 * runtime's weak ones), installs its own error handler, and counts every
 * call. The model must use none of them: if its halide_* symbols were
 * global and strong, this would not link (two definitions); if they were
 * weak, the model would call these and the counts would not be 0. Its
 * errors must come back through net_last_error, not through a handler and
 * not on stderr.
 * Usage: host_halide (prints the counts; exit 0 when all is as expected) */
#include "net.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*error_handler_t)(void *, const char *);
typedef int (*task_t)(void *, int, uint8_t *);

static int errors, mallocs, frees, prints, par_fors, handled;

static void host_handler(void *user_context, const char *message) {
  (void)user_context;
  (void)message;
  ++handled;
}
static error_handler_t installed;

error_handler_t halide_set_error_handler(error_handler_t handler) {
  error_handler_t old = installed;
  installed = handler;
  return old;
}
void halide_error(void *user_context, const char *message) {
  ++errors;
  if (installed)
    installed(user_context, message);
}
void *halide_malloc(void *user_context, size_t size) {
  (void)user_context;
  ++mallocs;
  return aligned_alloc(128, (size + 127) / 128 * 128);
}
void halide_free(void *user_context, void *ptr) {
  (void)user_context;
  ++frees;
  free(ptr);
}
void halide_print(void *user_context, const char *message) {
  (void)user_context;
  (void)message;
  ++prints;
}
int halide_do_par_for(void *user_context, task_t task, int min, int size, uint8_t *closure) {
  ++par_fors;
  for (int i = min; i < min + size; ++i)
    if (task(user_context, i, closure))
      return -1;
  return 0;
}

int main(void) {
  halide_set_error_handler(host_handler);
  static float input[64 * NET_INPUT_SAMPLE_SIZE], output[64 * NET_OUTPUT_SAMPLE_SIZE];
  for (size_t i = 0; i < sizeof input / sizeof input[0]; ++i)
    input[i] = (float)(i % 13) / 13.0f - 0.5f;
  int ok = net_infer(input, 64, output);
  /* More samples than Halide's 2^31-byte limit on a buffer: the pipeline's
   * own checks fail before anything is read. */
  int bad = net_infer(input, 1000000000, output);
  printf("infer: %d\n", ok);
  printf("too large: %s, message: %s\n", bad < 0 ? "Halide error" : "no error", net_last_error());
  printf("host hooks called: error %d, malloc %d, free %d, print %d, par_for %d, handler %d\n",
         errors, mallocs, frees, prints, par_fors, handled);
  printf("handler still the host's: %d\n", installed == host_handler);
  return ok != 0 || bad >= 0 || errors || mallocs || frees || prints || par_fors || handled ||
         installed != host_handler;
}

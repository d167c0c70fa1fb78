/*===- CallContext.c - a call into Halide code, and the runtime's hooks --===*
 *
 * kiln_call_t (call.h), and the Halide runtime functions that kilnc's
 * models replace. They are here, in the object that kiln_model_infer's
 * kiln_call_begin pulls from the archive, because a linker takes an archive
 * member only for a symbol still undefined: never to replace the weak
 * definitions the Halide runtime already gave.
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/call.h"

#include "kiln/runtime/scratch_arena.h"
#include "kiln/runtime/thread_pool.h"

#include "HalideRuntime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "kilncall" */
#define KILN_CALL_MAGIC 0x6b696c6e63616c6cull

void kiln_call_begin(kiln_call_t *call) {
  call->magic = KILN_CALL_MAGIC;
  call->has_error = 0;
  call->message[0] = '\0';
  call->arena = (char *)kiln_scratch_arena_data();
  call->capacity = kiln_scratch_arena_capacity();
  call->used = 0;
  call->needed = 0;
}

void kiln_call_end(kiln_call_t *call) {
  /* Nothing of the call is in use any more, so the arena may move. A failed
   * growth only means the next call takes from the heap again. */
  (void)kiln_scratch_arena_reserve(call->needed);
  call->magic = 0;
}

kiln_call_t *kiln_call_of(void *user_context) {
  kiln_call_t *call = (kiln_call_t *)user_context;
  return call && call->magic == KILN_CALL_MAGIC ? call : NULL;
}

/* Blocks are whole multiples of the alignment, so that each one taken from
 * the arena starts aligned. Tasks on several threads may allocate at once:
 * the counters are atomic. */
void *kiln_call_malloc(void *user_context, size_t size) {
  size_t aligned = (size + KILN_SCRATCH_ARENA_ALIGNMENT - 1) / KILN_SCRATCH_ARENA_ALIGNMENT *
                   KILN_SCRATCH_ARENA_ALIGNMENT;
  if (aligned < size)
    return NULL;
  if (aligned == 0)
    aligned = KILN_SCRATCH_ARENA_ALIGNMENT;
  kiln_call_t *call = kiln_call_of(user_context);
  if (call) {
    __atomic_fetch_add(&call->needed, aligned, __ATOMIC_RELAXED);
    size_t start = __atomic_fetch_add(&call->used, aligned, __ATOMIC_RELAXED);
    if (start <= call->capacity && aligned <= call->capacity - start)
      return call->arena + start;
  }
  return aligned_alloc(KILN_SCRATCH_ARENA_ALIGNMENT, aligned);
}

void kiln_call_free(void *user_context, void *ptr) {
  kiln_call_t *call = kiln_call_of(user_context);
  if (call && call->arena && (char *)ptr >= call->arena &&
      (char *)ptr < call->arena + call->capacity)
    return; /* the arena's: reused by the next call */
  free(ptr);
}

void kiln_call_error(void *user_context, const char *message) {
  kiln_call_t *call = kiln_call_of(user_context);
  if (!call || __atomic_exchange_n(&call->has_error, 1, __ATOMIC_ACQ_REL))
    return;
  snprintf(call->message, sizeof call->message, "%s", message ? message : "");
  /* Halide ends its messages with a newline; the message is one line. */
  size_t length = strlen(call->message);
  while (length > 0 && call->message[length - 1] == '\n')
    call->message[--length] = '\0';
}

/* ---- The Halide runtime's functions, replaced ------------------------- */

void *halide_malloc(void *user_context, size_t size) {
  return kiln_call_malloc(user_context, size);
}

void halide_free(void *user_context, void *ptr) { kiln_call_free(user_context, ptr); }

void halide_error(void *user_context, const char *message) {
  kiln_call_error(user_context, message);
}

/* Halide's print() and debug output go nowhere: generated code never prints. */
void halide_print(void *user_context, const char *message) {
  (void)user_context;
  (void)message;
}

int halide_do_par_for(void *user_context, halide_task_t task, int min, int size,
                      uint8_t *closure) {
  return kiln_thread_pool_run(user_context, task, min, size, closure);
}

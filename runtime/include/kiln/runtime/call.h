/* Kiln runtime: the context of one call into compiled Halide code.
 *
 * Every pipeline of a Kiln model takes a user_context (Halide's UserContext
 * feature), and the model runtime passes a kiln_call_t there. The Halide
 * runtime's hooks that kilnc links into each model (CallContext.c) find it
 * again:
 *   halide_malloc, halide_free  blocks of the thread's scratch arena
 *                               (scratch_arena.h), else of the heap;
 *   halide_error                the message, kept in the call, which the
 *                               model hands to <name>_last_error;
 *   halide_print                nothing (generated code never prints);
 *   halide_do_par_for           Kiln's thread pool (thread_pool.h).
 * These are strong definitions of functions the Halide runtime defines weak,
 * so they replace the runtime's own inside the model's object, where kilnc
 * then makes every halide_* symbol local: a program's own Halide code, and
 * its handlers (halide_set_error_handler, ...), are never touched.
 *
 * Ownership: a kiln_call_t lives on its caller's stack, from
 * kiln_call_begin to kiln_call_end.
 * Thread safety: one thread begins and ends a call; between the two, the
 * pipeline's tasks may allocate, free and report errors from any thread.
 */
#ifndef KILN_RUNTIME_CALL_H
#define KILN_RUNTIME_CALL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for one error message, with its NUL. Longer ones are cut. */
#define KILN_CALL_MESSAGE_SIZE 512

typedef struct kiln_call_t {
  uint64_t magic;  /* tells a Kiln call from another user_context */
  int has_error;   /* set by the first halide_error; later ones are dropped */
  char message[KILN_CALL_MESSAGE_SIZE];
  char *arena;     /* this thread's arena when the call began */
  size_t capacity; /* its size */
  size_t used;     /* bytes taken from it */
  size_t needed;   /* bytes every allocation of the call wanted */
} kiln_call_t;

/* Starts a call on this thread: no error yet, allocations from the arena. */
void kiln_call_begin(kiln_call_t *call);
/* Ends it: a call that outgrew the arena leaves it the size it needed. */
void kiln_call_end(kiln_call_t *call);

/* The call `user_context` is, or NULL if it is not a Kiln call. */
kiln_call_t *kiln_call_of(void *user_context);

/* What the Halide hooks do. `user_context` may be anything: what is not a
 * Kiln call allocates from the heap, and its errors are dropped. */
void *kiln_call_malloc(void *user_context, size_t size);
void kiln_call_free(void *user_context, void *ptr);
void kiln_call_error(void *user_context, const char *message);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_CALL_H */

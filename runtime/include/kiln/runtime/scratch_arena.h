/* Kiln runtime: the per-thread scratch arena of generated code.
 *
 * A compiled model's intermediate results (each layer Kiln materializes)
 * come from Halide's halide_malloc, which the model runtime (call.h) serves
 * from an arena that belongs to the calling thread. A call takes what it
 * needs from the arena by bumping a pointer; what did not fit comes from the
 * heap, and when the call ends the arena grows to what the call needed. So
 * once a call on some batch has run on a thread, calls of that batch or less
 * on that thread allocate nothing.
 *
 * Sharing: as the thread pool (thread_pool.h), the arena is shared by all
 * the Kiln models of a program: every global symbol of ScratchArena.c starts
 * with "kiln_scratch_arena_" and kilnc makes them weak in each model's
 * object. A thread's arena is as large as the largest call any model made
 * on it.
 *
 * Ownership: the arena belongs to its thread; it is freed by
 * kiln_scratch_arena_release on that thread (memory of a thread that exits
 * without releasing it stays allocated: C11 has no thread-exit hook for
 * _Thread_local data).
 * Thread safety: every function acts on the calling thread's arena only.
 */
#ifndef KILN_RUNTIME_SCRATCH_ARENA_H
#define KILN_RUNTIME_SCRATCH_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The alignment of the arena and of every block taken from it: twice the
 * widest vector Halide's AVX-512 code stores, so that neighbouring blocks
 * never share a cache line pair. */
#define KILN_SCRATCH_ARENA_ALIGNMENT 128

/* This thread's arena: its memory (NULL when it has none) and its size in
 * bytes (0 when it has none). */
void *kiln_scratch_arena_data(void);
size_t kiln_scratch_arena_capacity(void);

/* Grows this thread's arena to at least `size` bytes (rounded up to
 * KILN_SCRATCH_ARENA_ALIGNMENT). The old memory is freed, so it must not be
 * in use (call it between calls). Returns false, leaving the arena as it
 * was, if memory runs out; calls then go on taking what does not fit from
 * the heap. */
bool kiln_scratch_arena_reserve(size_t size);

/* Frees this thread's arena; the next call that needs one allocates again. */
void kiln_scratch_arena_release(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_SCRATCH_ARENA_H */

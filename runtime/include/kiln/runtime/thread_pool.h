/* Kiln runtime: the thread pool that runs generated code's parallel loops.
 *
 * Halide's generated code hands each parallel loop to halide_do_par_for;
 * the model runtime (call.h) sends those calls here. Workers spin for a
 * while after each loop (KILN_THREAD_POOL_SPIN_NS) before they sleep:
 * Halide's own pool puts idle workers to sleep at once, and waking one (a
 * futex wake; an inter-processor interrupt on a VM) costs microseconds per
 * parallel loop, which is a small layer's whole loop. Each thread takes a
 * contiguous block of the tasks (as OpenMP's static schedule does), then
 * what is left of the others' blocks.
 *
 * One loop runs on the pool at a time. A loop started while another one
 * runs (another thread's call), or from inside a task (a nested loop), runs
 * on its caller alone, serially, so loops never wait for each other.
 *
 * Sharing: kilnc merges this library into every model's object and makes
 * its symbols weak, so all the Kiln models of a program share one pool (and
 * one thread count). It finds them by name: every global symbol of
 * ThreadPool.c starts with "kiln_thread_pool_", and all of its state lives
 * in such symbols (none in statics), so the definitions the linker keeps,
 * whichever model they come from, work together.
 *
 * Thread safety: every function may be called from any thread at any time,
 * concurrently with loops on other threads.
 */
#ifndef KILN_RUNTIME_THREAD_POOL_H
#define KILN_RUNTIME_THREAD_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most workers the pool starts (besides the calling thread). */
#define KILN_THREAD_POOL_MAX_WORKERS 256

/* One task of a loop: Halide's halide_task_t. Returns 0, or a non-zero
 * error code that becomes the loop's result. */
typedef int (*kiln_thread_pool_task_t)(void *user_context, int index,
                                       uint8_t *closure);

/* Runs task(user_context, i, closure) for i in [min, min + size), on the
 * pool's workers and the calling thread, and returns when all have run:
 * 0, or the non-zero result of a failing task (if several fail, one of
 * theirs). Every task runs even if another one failed, as in Halide's pool.
 * The first loop of a process sizes the pool if kiln_thread_pool_set_threads
 * was not called. This is halide_do_par_for's contract. */
int kiln_thread_pool_run(void *user_context, kiln_thread_pool_task_t task,
                         int min, int size, uint8_t *closure);

/* Sets the number of threads a loop runs on: the caller and threads - 1
 * workers (at most KILN_THREAD_POOL_MAX_WORKERS). threads < 1 means the
 * number of cores this process may run on (sched_getaffinity). Workers are
 * started when first needed and kept; lowering the count parks the extra
 * ones. If a worker cannot be started, loops run on fewer threads. */
void kiln_thread_pool_set_threads(int threads);

/* The number of threads loops run on now (1 + the workers taking part);
 * 0 before the pool was sized. */
int kiln_thread_pool_threads(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_THREAD_POOL_H */

/*===- ThreadPool.c - the parallel loops of generated code ---------------===*
 *
 * Kiln's halide_do_par_for (thread_pool.h). Measured with a C harness over
 * AOT objects, 2 threads, median of 15 runs against Halide's own pool (AMD
 * EPYC Zen 4, 2026-11-24): batch 64 mlp_bn 155 -> 142 us, batchnorm_net
 * 70 -> 62, simple_nn 77 -> 67, lenet_bn 281 -> 252; batch 1024 10-12%
 * faster; batch 1 and 1 thread unchanged. A pool handing out one task at a
 * time from a shared counter gained half of that: contiguous blocks per
 * thread, as OpenMP's static schedule gives (which measured the same as this
 * pool), keep each thread on neighbouring rows.
 *
 * All state is in global kiln_thread_pool_* symbols, never in statics: kilnc
 * makes these symbols weak in each model's object, so the models of one
 * program share the definitions the linker keeps (thread_pool.h).
 *
 *===----------------------------------------------------------------------===*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "kiln/runtime/thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

/* How long a worker spins after a loop before it sleeps: long enough to
 * span the gap between two layers' loops of one call (a few microseconds)
 * and between calls of a busy caller, short enough that an idle program
 * does not keep its cores busy. */
#define KILN_THREAD_POOL_SPIN_NS 100000

struct kiln_thread_pool_s {
  pthread_mutex_t busy; /* held by the thread whose loop the pool runs */
  pthread_mutex_t lock; /* for sleeping and starting workers */
  pthread_cond_t wake;
  atomic_int sleepers, started, configured;
  atomic_int wanted; /* workers taking part, not counting the caller */
  /* The open loop: generation << 1 | 1 while tasks may be claimed. The
   * fields below change only while it is closed with no worker inside. */
  _Alignas(64) atomic_ulong state;
  kiln_thread_pool_task_t task;
  void *user_context;
  uint8_t *closure;
  int min, size;
  int blocks; /* the tasks split into one contiguous block per thread */
  /* Counters the threads write, each on a cache line of its own so that
   * claiming a task does not disturb the workers polling `state`. */
  _Alignas(64) atomic_int finished;
  _Alignas(64) atomic_int inside;
  _Alignas(64) atomic_int result;
  struct {
    _Alignas(64) atomic_int next;
    int end;
  } block[KILN_THREAD_POOL_MAX_WORKERS + 1];
};

/* The pool, and whether this thread runs a loop's tasks (a loop started
 * from inside one runs serially on its caller). Global, not static: see
 * the file comment. */
struct kiln_thread_pool_s kiln_thread_pool_shared = {
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER};
_Thread_local int kiln_thread_pool_in_task;

static void pause_cpu(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ll + t.tv_nsec;
}

/* Runs the tasks of block `own` (contiguous, as a static schedule gives
 * each thread), then whatever is left of the others' (a late thread's). */
static void run_tasks(struct kiln_thread_pool_s *pool, int own) {
  for (int b = 0; b < pool->blocks; ++b) {
    int block = (own + b) % pool->blocks, i;
    while ((i = atomic_fetch_add(&pool->block[block].next, 1)) < pool->block[block].end) {
      int result = pool->task(pool->user_context, pool->min + i, pool->closure);
      if (result)
        atomic_store(&pool->result, result);
      atomic_fetch_add(&pool->finished, 1);
    }
  }
}

/* A worker may take part while its id is below `wanted` and a loop is open
 * that it has not seen. */
static int has_work(struct kiln_thread_pool_s *pool, int id, unsigned long seen) {
  unsigned long state = atomic_load(&pool->state);
  return (state & 1) && state != seen && id < atomic_load(&pool->wanted);
}

static void *worker_main(void *arg) {
  struct kiln_thread_pool_s *pool = &kiln_thread_pool_shared;
  int id = (int)(intptr_t)arg;
  unsigned long seen = 0;
  kiln_thread_pool_in_task = 1;
  for (;;) {
    long long spin_until = now_ns() + KILN_THREAD_POOL_SPIN_NS;
    for (int spins = 0; !has_work(pool, id, seen); ++spins) {
      pause_cpu();
      if ((spins & 63) == 0 && now_ns() > spin_until) {
        pthread_mutex_lock(&pool->lock);
        atomic_fetch_add(&pool->sleepers, 1);
        while (!has_work(pool, id, seen))
          pthread_cond_wait(&pool->wake, &pool->lock);
        atomic_fetch_sub(&pool->sleepers, 1);
        pthread_mutex_unlock(&pool->lock);
      }
    }
    unsigned long state = atomic_load(&pool->state);
    atomic_fetch_add(&pool->inside, 1);
    /* Still the same open loop: its fields are stable until we leave, since
     * the caller closes it and then waits for `inside` to drop to 0. */
    if (atomic_load(&pool->state) == state && (state & 1)) {
      seen = state;
      run_tasks(pool, (id + 1) % pool->blocks);
    }
    atomic_fetch_sub(&pool->inside, 1);
  }
  return NULL;
}

/* The cores this process may run on (taskset, cgroup cpusets), not all of
 * the machine's: a worker spinning on its caller's only core would take
 * turns with it. */
static int default_threads(void) {
  cpu_set_t cpus;
  long cores = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus)
                                                            : sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int)cores : 1;
}

void kiln_thread_pool_set_threads(int threads) {
  struct kiln_thread_pool_s *pool = &kiln_thread_pool_shared;
  if (threads < 1)
    threads = default_threads();
  int workers = threads - 1 < KILN_THREAD_POOL_MAX_WORKERS ? threads - 1
                                                           : KILN_THREAD_POOL_MAX_WORKERS;
  pthread_mutex_lock(&pool->lock);
  while (atomic_load(&pool->started) < workers) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&thread, &attr, worker_main,
                                (void *)(intptr_t)atomic_load(&pool->started));
    pthread_attr_destroy(&attr);
    if (failed)
      break; /* fewer workers; loops still complete on the caller */
    atomic_fetch_add(&pool->started, 1);
  }
  int started = atomic_load(&pool->started);
  atomic_store(&pool->wanted, workers < started ? workers : started);
  atomic_store(&pool->configured, 1);
  /* Workers above the new count that sleep stay asleep; those that spin
   * see `wanted` and stop taking part. */
  pthread_mutex_unlock(&pool->lock);
}

int kiln_thread_pool_threads(void) {
  struct kiln_thread_pool_s *pool = &kiln_thread_pool_shared;
  return atomic_load(&pool->configured) ? atomic_load(&pool->wanted) + 1 : 0;
}

/* A loop run on its caller alone: the pool is busy, or this is a task. */
static int run_serially(void *user_context, kiln_thread_pool_task_t task, int min, int size,
                        uint8_t *closure) {
  int result = 0;
  for (int i = 0; i < size; ++i) {
    int r = task(user_context, min + i, closure);
    if (r)
      result = r;
  }
  return result;
}

int kiln_thread_pool_run(void *user_context, kiln_thread_pool_task_t task, int min, int size,
                         uint8_t *closure) {
  struct kiln_thread_pool_s *pool = &kiln_thread_pool_shared;
  if (size <= 0)
    return 0;
  if (!atomic_load(&pool->configured))
    kiln_thread_pool_set_threads(0);
  if (size == 1 || kiln_thread_pool_in_task || atomic_load(&pool->wanted) == 0 ||
      pthread_mutex_trylock(&pool->busy) != 0)
    return run_serially(user_context, task, min, size, closure);
  pool->task = task;
  pool->user_context = user_context;
  pool->closure = closure;
  pool->min = min;
  pool->size = size;
  int threads = atomic_load(&pool->wanted) + 1;
  pool->blocks = size < threads ? size : threads;
  for (int b = 0; b < pool->blocks; ++b) {
    atomic_store(&pool->block[b].next, (int)((long long)size * b / pool->blocks));
    pool->block[b].end = (int)((long long)size * (b + 1) / pool->blocks);
  }
  atomic_store(&pool->finished, 0);
  atomic_store(&pool->result, 0);
  unsigned long generation = (atomic_load(&pool->state) >> 1) + 1;
  atomic_store(&pool->state, generation << 1 | 1);
  if (atomic_load(&pool->sleepers) > 0) {
    pthread_mutex_lock(&pool->lock);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
  }
  kiln_thread_pool_in_task = 1;
  run_tasks(pool, 0);
  kiln_thread_pool_in_task = 0;
  while (atomic_load(&pool->finished) < size)
    pause_cpu();
  atomic_store(&pool->state, generation << 1);
  while (atomic_load(&pool->inside) > 0)
    pause_cpu();
  int result = atomic_load(&pool->result);
  pthread_mutex_unlock(&pool->busy);
  return result;
}

/* The thread pool under ThreadSanitizer (runtime.thread-pool-tsan): built
 * with -fsanitize=thread together with ThreadPool.c, it runs loops from
 * several threads at once while another thread changes the thread count,
 * with nested loops and failing tasks, and checks every result. A data race
 * or lock-order problem makes TSan fail the test (exit code 66, see the
 * test's TSAN_OPTIONS); a wrong result makes it return 1. */
#include "kiln/runtime/thread_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define CALLERS 4
#define LOOPS 300
#define MAX_SIZE 97

struct loop {
  int values[MAX_SIZE]; /* each task writes its own element */
  atomic_int nested;    /* tasks of the nested loops */
};

static int nested_task(void *user_context, int index, uint8_t *closure) {
  (void)user_context;
  (void)index;
  atomic_fetch_add(&((struct loop *)closure)->nested, 1);
  return 0;
}

/* Squares its index; every 8th task also runs a nested loop of 3 tasks;
 * the task of index 41 fails when user_context asks for it. */
static int task(void *user_context, int index, uint8_t *closure) {
  struct loop *loop = (struct loop *)closure;
  loop->values[index] = index * index;
  if (index % 8 == 0 &&
      kiln_thread_pool_run(NULL, nested_task, 0, 3, closure) != 0)
    return -2;
  return user_context && index == 41 ? -7 : 0;
}

static atomic_int wrong;

static void *caller(void *arg) {
  int id = (int)(intptr_t)arg;
  static const int fail = 1;
  for (int i = 0; i < LOOPS; ++i) {
    struct loop loop;
    memset(loop.values, 0xff, sizeof loop.values);
    atomic_init(&loop.nested, 0);
    int size = 1 + (i * 13 + id * 7) % MAX_SIZE;
    int failing = size > 41 && i % 5 == 0;
    int result = kiln_thread_pool_run(failing ? (void *)&fail : NULL, task, 0, size,
                                      (uint8_t *)&loop);
    int ok = result == (failing ? -7 : 0) && atomic_load(&loop.nested) == 3 * ((size + 7) / 8);
    for (int k = 0; k < size; ++k)
      ok &= loop.values[k] == k * k;
    if (!ok)
      atomic_fetch_add(&wrong, 1);
  }
  return NULL;
}

static void *resizer(void *arg) {
  (void)arg;
  for (int i = 0; i < 60; ++i) {
    kiln_thread_pool_set_threads(1 + i % 4);
    (void)kiln_thread_pool_threads();
  }
  return NULL;
}

int main(void) {
  pthread_t threads[CALLERS + 1];
  for (int t = 0; t < CALLERS; ++t)
    pthread_create(&threads[t], NULL, caller, (void *)(intptr_t)t);
  pthread_create(&threads[CALLERS], NULL, resizer, NULL);
  for (int t = 0; t <= CALLERS; ++t)
    pthread_join(threads[t], NULL);
  printf("%d loops on %d threads: %d wrong\n", CALLERS * LOOPS, CALLERS, atomic_load(&wrong));
  return atomic_load(&wrong) != 0;
}

/* FP32 FMA peak of this machine, measured: every thread runs 16 independent
 * chains of AVX-512 FMAs (acc = acc * m + a on 16 zmm registers; enough to
 * cover a 4-cycle latency on two FMA pipes), and the program prints the
 * aggregate GFLOP/s (one zmm FMA = 16 lanes x 2 flops) for each thread count.
 *
 *   cc -O2 -mavx512f -mfma -pthread bench/peak.c -o peak
 *   ./peak 1 2        ->  "peak: threads 1 gflops 116.4" ...
 *
 * Each thread count is timed 5 times for about 0.2 s; the best is reported.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define CHAINS 16

typedef struct {
  long iterations;
  pthread_barrier_t *barrier;
  double seconds;
  float sink;
} job_t;

__attribute__((noinline)) static float fma_loop(long iterations, float seed) {
  __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
  __m512 c0 = _mm512_set1_ps(seed), c1 = _mm512_set1_ps(seed + 1), c2 = _mm512_set1_ps(seed + 2),
         c3 = _mm512_set1_ps(seed + 3), c4 = _mm512_set1_ps(seed + 4), c5 = _mm512_set1_ps(seed + 5),
         c6 = _mm512_set1_ps(seed + 6), c7 = _mm512_set1_ps(seed + 7), c8 = _mm512_set1_ps(seed + 8),
         c9 = _mm512_set1_ps(seed + 9), c10 = _mm512_set1_ps(seed + 10), c11 = _mm512_set1_ps(seed + 11),
         c12 = _mm512_set1_ps(seed + 12), c13 = _mm512_set1_ps(seed + 13), c14 = _mm512_set1_ps(seed + 14),
         c15 = _mm512_set1_ps(seed + 15);
  for (long i = 0; i < iterations; ++i) {
    c0 = _mm512_fmadd_ps(c0, m, a);
    c1 = _mm512_fmadd_ps(c1, m, a);
    c2 = _mm512_fmadd_ps(c2, m, a);
    c3 = _mm512_fmadd_ps(c3, m, a);
    c4 = _mm512_fmadd_ps(c4, m, a);
    c5 = _mm512_fmadd_ps(c5, m, a);
    c6 = _mm512_fmadd_ps(c6, m, a);
    c7 = _mm512_fmadd_ps(c7, m, a);
    c8 = _mm512_fmadd_ps(c8, m, a);
    c9 = _mm512_fmadd_ps(c9, m, a);
    c10 = _mm512_fmadd_ps(c10, m, a);
    c11 = _mm512_fmadd_ps(c11, m, a);
    c12 = _mm512_fmadd_ps(c12, m, a);
    c13 = _mm512_fmadd_ps(c13, m, a);
    c14 = _mm512_fmadd_ps(c14, m, a);
    c15 = _mm512_fmadd_ps(c15, m, a);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                     _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
  return _mm512_reduce_add_ps(s);
}

static void *worker(void *arg) {
  job_t *job = (job_t *)arg;
  pthread_barrier_wait(job->barrier);
  double t0 = now();
  job->sink = fma_loop(job->iterations, (float)((size_t)job % 7));
  job->seconds = now() - t0;
  return NULL;
}

/* GFLOP/s of `threads` threads each running `iterations` loop trips. */
static double run(int threads, long iterations, double *seconds) {
  pthread_t tid[64];
  job_t jobs[64];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  for (int t = 0; t < threads; ++t) {
    jobs[t].iterations = iterations;
    jobs[t].barrier = &barrier;
    pthread_create(&tid[t], NULL, worker, &jobs[t]);
  }
  double slowest = 0, sink = 0;
  for (int t = 0; t < threads; ++t) {
    pthread_join(tid[t], NULL);
    if (jobs[t].seconds > slowest)
      slowest = jobs[t].seconds;
    sink += jobs[t].sink;
  }
  pthread_barrier_destroy(&barrier);
  if (sink == 12345.678) /* keep the result alive */
    fprintf(stderr, "%f\n", sink);
  *seconds = slowest;
  return (double)threads * iterations * CHAINS * 32.0 / slowest * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s THREADS...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    int threads = atoi(argv[i]);
    if (threads < 1 || threads > 64) {
      fprintf(stderr, "bad thread count %s\n", argv[i]);
      return 2;
    }
    /* calibrate: grow the trip count until one run takes >= 0.2 s */
    long iterations = 1 << 16;
    double seconds = 0;
    for (;;) {
      run(threads, iterations, &seconds);
      if (seconds >= 0.2)
        break;
      iterations *= seconds > 0.02 ? (long)(0.25 / seconds) + 1 : 8;
    }
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      double g = run(threads, iterations, &seconds);
      if (g > best)
        best = g;
    }
    printf("peak: threads %d gflops %.1f\n", threads, best);
    fflush(stdout);
  }
  return 0;
}

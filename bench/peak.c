/* FP32 FMA peak of this machine, measured, for one vector ISA: every thread
 * runs independent chains of FMAs (acc = acc * m + a) and the program prints
 * the aggregate GFLOP/s for each thread count.
 *
 *   avx512: 16 chains on zmm registers (one FMA = 16 lanes x 2 flops), of the
 *           32 zmm registers; enough to cover a 4-cycle latency on two pipes.
 *   avx2:   12 chains on ymm registers (one FMA = 8 lanes x 2 flops): 12
 *           accumulators + the two operands fit the 16 ymm registers, and
 *           cover a 5-cycle latency (Zen 2) on two pipes.
 *
 * One binary for every x86-64 CPU: each kernel is compiled for its ISA with
 * __attribute__((target)), and the program checks the CPU before it runs one
 * (no -m flags needed, none allowed to leak into main).
 *
 *   cc -O2 -pthread bench/peak.c -o peak
 *   ./peak --isa avx512 1 2    ->  "peak: isa avx512 threads 1 gflops 116.4" ...
 *   ./peak --isa avx2 1 2      ->  "peak: isa avx2 threads 1 gflops 85.0" ...
 *   ./peak --isa auto 1 2      ->  the widest the CPU has (the default)
 *   ./peak --list              ->  "isa: avx512", "isa: avx2": those it can run
 *
 * Each thread count is timed 5 times for about 0.2 s; the best is reported.
 * Exit status 2 for bad arguments, 3 when the CPU lacks the ISA asked for.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef float (*kernel_fn)(long iterations, float seed);

typedef struct {
  const char *name;
  const char *cpu_features; /* for messages */
  int chains;
  int lanes;
  kernel_fn kernel;
  int (*supported)(void);
} isa_t;

#define STEP(c, m, a, fmadd) c = fmadd(c, m, a)

__attribute__((target("avx512f,fma"), noinline)) static float fma_avx512(long iterations, float seed) {
  __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
  __m512 c0 = _mm512_set1_ps(seed), c1 = _mm512_set1_ps(seed + 1), c2 = _mm512_set1_ps(seed + 2),
         c3 = _mm512_set1_ps(seed + 3), c4 = _mm512_set1_ps(seed + 4), c5 = _mm512_set1_ps(seed + 5),
         c6 = _mm512_set1_ps(seed + 6), c7 = _mm512_set1_ps(seed + 7), c8 = _mm512_set1_ps(seed + 8),
         c9 = _mm512_set1_ps(seed + 9), c10 = _mm512_set1_ps(seed + 10), c11 = _mm512_set1_ps(seed + 11),
         c12 = _mm512_set1_ps(seed + 12), c13 = _mm512_set1_ps(seed + 13), c14 = _mm512_set1_ps(seed + 14),
         c15 = _mm512_set1_ps(seed + 15);
  for (long i = 0; i < iterations; ++i) {
    STEP(c0, m, a, _mm512_fmadd_ps);
    STEP(c1, m, a, _mm512_fmadd_ps);
    STEP(c2, m, a, _mm512_fmadd_ps);
    STEP(c3, m, a, _mm512_fmadd_ps);
    STEP(c4, m, a, _mm512_fmadd_ps);
    STEP(c5, m, a, _mm512_fmadd_ps);
    STEP(c6, m, a, _mm512_fmadd_ps);
    STEP(c7, m, a, _mm512_fmadd_ps);
    STEP(c8, m, a, _mm512_fmadd_ps);
    STEP(c9, m, a, _mm512_fmadd_ps);
    STEP(c10, m, a, _mm512_fmadd_ps);
    STEP(c11, m, a, _mm512_fmadd_ps);
    STEP(c12, m, a, _mm512_fmadd_ps);
    STEP(c13, m, a, _mm512_fmadd_ps);
    STEP(c14, m, a, _mm512_fmadd_ps);
    STEP(c15, m, a, _mm512_fmadd_ps);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                     _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iterations, float seed) {
  __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(seed), c1 = _mm256_set1_ps(seed + 1), c2 = _mm256_set1_ps(seed + 2),
         c3 = _mm256_set1_ps(seed + 3), c4 = _mm256_set1_ps(seed + 4), c5 = _mm256_set1_ps(seed + 5),
         c6 = _mm256_set1_ps(seed + 6), c7 = _mm256_set1_ps(seed + 7), c8 = _mm256_set1_ps(seed + 8),
         c9 = _mm256_set1_ps(seed + 9), c10 = _mm256_set1_ps(seed + 10), c11 = _mm256_set1_ps(seed + 11);
  for (long i = 0; i < iterations; ++i) {
    STEP(c0, m, a, _mm256_fmadd_ps);
    STEP(c1, m, a, _mm256_fmadd_ps);
    STEP(c2, m, a, _mm256_fmadd_ps);
    STEP(c3, m, a, _mm256_fmadd_ps);
    STEP(c4, m, a, _mm256_fmadd_ps);
    STEP(c5, m, a, _mm256_fmadd_ps);
    STEP(c6, m, a, _mm256_fmadd_ps);
    STEP(c7, m, a, _mm256_fmadd_ps);
    STEP(c8, m, a, _mm256_fmadd_ps);
    STEP(c9, m, a, _mm256_fmadd_ps);
    STEP(c10, m, a, _mm256_fmadd_ps);
    STEP(c11, m, a, _mm256_fmadd_ps);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  float out[4];
  _mm_storeu_ps(out, h);
  return out[0] + out[1] + out[2] + out[3];
}

static int has_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"); }
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

/* Widest first: "auto" takes the first one the CPU supports. */
static const isa_t isas[] = {
    {"avx512", "avx512f and fma", 16, 16, fma_avx512, has_avx512},
    {"avx2", "avx2 and fma", 12, 8, fma_avx2, has_avx2},
};
#define NISAS ((int)(sizeof isas / sizeof isas[0]))

typedef struct {
  const isa_t *isa;
  long iterations;
  pthread_barrier_t *barrier;
  double seconds;
  float sink;
} job_t;

static void *worker(void *arg) {
  job_t *job = (job_t *)arg;
  pthread_barrier_wait(job->barrier);
  double t0 = now();
  job->sink = job->isa->kernel(job->iterations, (float)((size_t)job % 7));
  job->seconds = now() - t0;
  return NULL;
}

/* GFLOP/s of `threads` threads each running `iterations` loop trips. */
static double run(const isa_t *isa, int threads, long iterations, double *seconds) {
  pthread_t tid[64];
  job_t jobs[64];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  for (int t = 0; t < threads; ++t) {
    jobs[t].isa = isa;
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
  /* lanes x 2 flops per FMA */
  return (double)threads * iterations * isa->chains * isa->lanes * 2.0 / slowest * 1e-9;
}

static int usage(const char *argv0) {
  fprintf(stderr, "usage: %s [--isa auto|avx512|avx2] THREADS...\n       %s --list\n", argv0, argv0);
  return 2;
}

int main(int argc, char **argv) {
  __builtin_cpu_init();
  const char *want = "auto";
  int first = 1;
  if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
    for (int i = 0; i < NISAS; ++i)
      if (isas[i].supported())
        printf("isa: %s\n", isas[i].name);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--isa") == 0) {
    want = argv[2];
    first = 3;
  }
  if (first >= argc)
    return usage(argv[0]);

  const isa_t *isa = NULL;
  for (int i = 0; i < NISAS && !isa; ++i) {
    if (strcmp(want, "auto") == 0 ? isas[i].supported() : strcmp(want, isas[i].name) == 0)
      isa = &isas[i];
  }
  if (!isa) {
    if (strcmp(want, "auto") == 0) {
      fprintf(stderr, "peak: this CPU has neither AVX-512F nor AVX2 with FMA\n");
      return 3;
    }
    fprintf(stderr, "peak: unknown ISA '%s'\n", want);
    return usage(argv[0]);
  }
  if (!isa->supported()) {
    fprintf(stderr, "peak: this CPU lacks %s, needed for --isa %s\n", isa->cpu_features, isa->name);
    return 3;
  }

  for (int i = first; i < argc; ++i) {
    int threads = atoi(argv[i]);
    if (threads < 1 || threads > 64) {
      fprintf(stderr, "bad thread count %s\n", argv[i]);
      return 2;
    }
    /* calibrate: grow the trip count until one run takes >= 0.2 s */
    long iterations = 1 << 16;
    double seconds = 0;
    for (;;) {
      run(isa, threads, iterations, &seconds);
      if (seconds >= 0.2)
        break;
      iterations *= seconds > 0.02 ? (long)(0.25 / seconds) + 1 : 8;
    }
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      double g = run(isa, threads, iterations, &seconds);
      if (g > best)
        best = g;
    }
    printf("peak: isa %s threads %d gflops %.1f\n", isa->name, threads, best);
    fflush(stdout);
  }
  return 0;
}

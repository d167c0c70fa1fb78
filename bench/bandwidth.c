/* Read bandwidth of one core from a buffer of a given size, measured: the
 * bound of a batch-1 inference call, which reads every weight once (a
 * matrix-vector product per layer). A buffer that fits a cache level is
 * read from it once warm; the figures say how fast a model whose weights
 * take that many bytes can be at batch 1 on one thread.
 *
 *   cc -O2 bench/bandwidth.c -o bandwidth
 *   ./bandwidth 32 436 970 8192   ->  "bandwidth: kib 436 gbytes_per_s 112.3" ...
 *
 * Sizes in KiB. Each size is read repeatedly for about 0.2 s, 5 times; the
 * best is reported. The loads are AVX2 (256-bit) where the CPU has it,
 * eight independent sums so that the loads, not the adds, are the limit.
 * Exit status 2 for bad arguments.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2"))) static float sumAvx2(const float *p, size_t n) {
  /* Eight named sums, so that they stay in registers (an array of them was
   * kept in memory by GCC 12 at -O2, a store per load). */
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    s4 = _mm256_add_ps(s4, _mm256_load_ps(p + i + 32));
    s5 = _mm256_add_ps(s5, _mm256_load_ps(p + i + 40));
    s6 = _mm256_add_ps(s6, _mm256_load_ps(p + i + 48));
    s7 = _mm256_add_ps(s7, _mm256_load_ps(p + i + 56));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                           _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

static float sumPlain(const float *p, size_t n) {
  float s[8] = {0};
  for (size_t i = 0; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      s[j] += p[i + j];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bandwidth KIB...\n");
    return 2;
  }
  int avx2 = __builtin_cpu_supports("avx2");
  volatile float sink = 0;
  for (int a = 1; a < argc; ++a) {
    char *end = NULL;
    long kib = strtol(argv[a], &end, 10);
    if (!end || *end || kib < 1 || kib > 16 * 1024 * 1024) {
      fprintf(stderr, "bandwidth: '%s' is not a size in KiB (1 to 16777216)\n", argv[a]);
      return 2;
    }
    size_t n = (size_t)kib * 1024 / sizeof(float) / 64 * 64;
    if (n == 0)
      n = 64;
    float *p = aligned_alloc(64, n * sizeof(float));
    if (!p) {
      fprintf(stderr, "bandwidth: cannot allocate %ld KiB\n", kib);
      return 2;
    }
    for (size_t i = 0; i < n; ++i)
      p[i] = (float)(i % 7);
    double best = 0;
    for (int trial = 0; trial < 5; ++trial) {
      long reps = 0;
      double start = now(), elapsed = 0;
      do {
        sink += avx2 ? sumAvx2(p, n) : sumPlain(p, n);
        ++reps;
        elapsed = now() - start;
      } while (elapsed < 0.2);
      double rate = (double)reps * n * sizeof(float) / elapsed / 1e9;
      if (rate > best)
        best = rate;
    }
    printf("bandwidth: kib %ld gbytes_per_s %.1f\n", kib, best);
    free(p);
  }
  return 0;
}

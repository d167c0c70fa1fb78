//===- npy-compare.cpp - lit helper: two float32 NPY files agree ----------===//
//
//   npy-compare ACTUAL.npy EXPECTED.npy [--atol 1e-4] [--rtol 1e-4]
//
// Exit 0 when the shapes match and every element satisfies |a - e| <= atol
// and |a - e| / max(1, |e|) <= rtol; prints the largest errors either way.
// PyTorch's results at the edges are matched exactly: a NaN only by a NaN,
// an infinity only by the same infinity; anything else against them (and a
// NaN or infinity against a finite value) is a mismatch.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/npy.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static kiln_array_t *load(const char *path) {
  kiln_array_t *array = nullptr;
  if (kiln_status_t status = kiln_npy_read_f32(path, &array)) {
    std::fprintf(stderr, "npy-compare: %s\n", kiln_status_message(status));
    kiln_status_free(status);
    std::exit(2);
  }
  return array;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: npy-compare ACTUAL.npy EXPECTED.npy [--atol X] [--rtol X]\n");
    return 2;
  }
  double atol = 1e-4, rtol = 1e-4;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--atol"))
      atol = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rtol"))
      rtol = std::atof(argv[i + 1]);
  }
  kiln_array_t *actual = load(argv[1]), *expected = load(argv[2]);
  size_t rank = kiln_array_rank(actual);
  if (rank != kiln_array_rank(expected) ||
      std::memcmp(kiln_array_shape(actual), kiln_array_shape(expected), rank * sizeof(int64_t))) {
    std::printf("shape mismatch\n");
    return 1;
  }
  const float *a = static_cast<const float *>(kiln_array_const_data(actual));
  const float *e = static_cast<const float *>(kiln_array_const_data(expected));
  double maxAbs = 0, maxRel = 0;
  size_t worst = 0;
  for (size_t i = 0, n = kiln_array_count(actual); i < n; ++i) {
    double err = std::fabs(static_cast<double>(a[i]) - e[i]);
    if (std::isnan(e[i]) || std::isinf(e[i]))
      err = (std::isnan(e[i]) ? std::isnan(a[i]) : a[i] == e[i]) ? 0.0 : INFINITY;
    else if (std::isnan(err))
      err = INFINITY;
    if (err > maxAbs)
      worst = i;
    maxAbs = std::fmax(maxAbs, err);
    maxRel = std::fmax(maxRel, err / std::fmax(1.0, std::fabs(static_cast<double>(e[i]))));
  }
  bool ok = maxAbs <= atol && maxRel <= rtol;
  std::printf("%s: max abs error %.3g, max rel error %.3g\n", ok ? "match" : "MISMATCH", maxAbs, maxRel);
  if (!ok)
    std::printf("  worst at element %zu: %.9g, expected %.9g\n", worst, a[worst], e[worst]);
  kiln_array_free(actual);
  kiln_array_free(expected);
  return ok ? 0 : 1;
}

//===- safetensors-compare.cpp - lit helper: two checkpoints agree --------===//
//
//   safetensors-compare ACTUAL.safetensors EXPECTED.safetensors [--rtol 1e-4] [--atol 1e-5]
//
// Exit 0 when both files hold the same tensor names, each with the same
// dtype and shape, integer tensors (`step`, num_batches_tracked) equal
// exactly and float tensors within |a - e| <= atol + rtol·|e| element by
// element (the training fixtures' rule, test/fixtures/train/manifest.json);
// a NaN matches only a NaN, an infinity only the same infinity. A tensor
// missing from either file is a mismatch. Prints one line per tensor; one
// that differs names its first differing element and its worst. Metadata is not compared. Exit 1 on a mismatch, 2 on an unreadable
// file or a bad command line.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

kiln_safetensors_t *open(const char *path) {
  kiln_safetensors_t *file = nullptr;
  if (kiln_status_t status = kiln_safetensors_open(path, &file)) {
    std::fprintf(stderr, "safetensors-compare: %s\n", kiln_status_message(status));
    kiln_status_free(status);
    std::exit(2);
  }
  return file;
}

void check(kiln_status_t status) {
  if (status) {
    std::fprintf(stderr, "safetensors-compare: %s\n", kiln_status_message(status));
    kiln_status_free(status);
    std::exit(2);
  }
}

std::map<std::string, kiln_tensor_info_t> tensors(kiln_safetensors_t *file) {
  std::map<std::string, kiln_tensor_info_t> out;
  for (size_t i = 0; i < kiln_safetensors_count(file); ++i) {
    kiln_tensor_info_t info;
    check(kiln_safetensors_info(file, i, &info));
    out[info.name] = info;
  }
  return out;
}

bool isInteger(kiln_dtype_t dtype) {
  return dtype != KILN_DTYPE_F32 && dtype != KILN_DTYPE_F64 && dtype != KILN_DTYPE_F16 &&
         dtype != KILN_DTYPE_BF16;
}

std::string shapeOf(const kiln_tensor_info_t &info) {
  std::string text = "[";
  for (size_t d = 0; d < info.rank; ++d)
    text += (d ? ", " : "") + std::to_string(info.shape[d]);
  return text + "]";
}

/// Whether `a` is within the tolerance of the expected `e`.
bool close(float a, float e, double rtol, double atol) {
  if (std::isnan(e))
    return std::isnan(a);
  if (std::isinf(e))
    return a == e;
  double err = std::fabs(static_cast<double>(a) - e);
  return err <= atol + rtol * std::fabs(static_cast<double>(e)); // false for a NaN
}

/// Compares one tensor present in both files; prints what differs.
bool compare(kiln_safetensors_t *actual, kiln_safetensors_t *expected, const std::string &name,
             const kiln_tensor_info_t &a, const kiln_tensor_info_t &e, double rtol,
             double atol) {
  const char *key = name.c_str();
  if (a.dtype != e.dtype || a.rank != e.rank ||
      std::memcmp(a.shape, e.shape, a.rank * sizeof(int64_t))) {
    std::printf("MISMATCH '%s': dtype %s shape %s, expected dtype %s shape %s\n", key,
                kiln_dtype_name(a.dtype), shapeOf(a).c_str(), kiln_dtype_name(e.dtype),
                shapeOf(e).c_str());
    return false;
  }
  if (isInteger(e.dtype)) {
    std::vector<int64_t> x(a.count), y(e.count);
    check(kiln_safetensors_read_i64(actual, key, a.count, x.data()));
    check(kiln_safetensors_read_i64(expected, key, e.count, y.data()));
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) {
        std::printf("MISMATCH '%s': element %zu is %lld, expected %lld (integers: exactly)\n",
                    key, i, static_cast<long long>(x[i]), static_cast<long long>(y[i]));
        return false;
      }
    std::printf("match '%s': %zu integers equal\n", key, x.size());
    return true;
  }
  std::vector<float> x(a.count), y(e.count);
  check(kiln_safetensors_read_f32(actual, key, a.count, x.data()));
  check(kiln_safetensors_read_f32(expected, key, e.count, y.data()));
  size_t bad = 0, first = 0, worst = 0;
  double worstRatio = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    // In tolerances; a NaN against a NaN (or 0 against 0 at atol 0) is 0.
    double ratio = std::fabs(static_cast<double>(x[i]) - y[i]) /
                   (atol + rtol * std::fabs(static_cast<double>(y[i])));
    if (close(x[i], y[i], rtol, atol)) {
      ratio = std::isfinite(ratio) ? ratio : 0;
    } else {
      if (bad++ == 0)
        first = i;
      ratio = std::isfinite(ratio) ? ratio : INFINITY;
    }
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (bad) {
    std::printf("MISMATCH '%s': %zu of %zu elements outside atol %g + rtol %g; first at %zu: "
                "%.9g, expected %.9g; worst at %zu: %.9g, expected %.9g (%.3g tolerances)\n",
                key, bad, x.size(), atol, rtol, first, x[first], y[first], worst, x[worst],
                y[worst], worstRatio);
    return false;
  }
  std::printf("match '%s': %zu floats, worst %.3g tolerances\n", key, x.size(), worstRatio);
  return true;
}

} // namespace

int main(int argc, char **argv) {
  const char *usage = "usage: safetensors-compare ACTUAL EXPECTED [--rtol X] [--atol X]\n";
  if (argc < 3) {
    std::fputs(usage, stderr);
    return 2;
  }
  double rtol = 1e-4, atol = 1e-5;
  for (int i = 3; i < argc; i += 2) {
    char *end = nullptr;
    double value = i + 1 < argc ? std::strtod(argv[i + 1], &end) : NAN;
    if (i + 1 >= argc || *end || !(value >= 0) ||
        (std::strcmp(argv[i], "--rtol") && std::strcmp(argv[i], "--atol"))) {
      std::fputs(usage, stderr);
      return 2;
    }
    (std::strcmp(argv[i], "--rtol") ? atol : rtol) = value;
  }
  kiln_safetensors_t *actual = open(argv[1]), *expected = open(argv[2]);
  std::map<std::string, kiln_tensor_info_t> a = tensors(actual), e = tensors(expected);
  bool ok = true;
  for (const auto &[name, info] : e)
    if (!a.count(name)) {
      std::printf("MISMATCH '%s': missing from %s\n", name.c_str(), argv[1]);
      ok = false;
    }
  for (const auto &[name, info] : a)
    if (!e.count(name)) {
      std::printf("MISMATCH '%s': not in %s (an extra tensor)\n", name.c_str(), argv[2]);
      ok = false;
    }
  for (const auto &[name, info] : e)
    if (a.count(name) && !compare(actual, expected, name, a.at(name), info, rtol, atol))
      ok = false;
  std::printf("%s: %zu tensors\n", ok ? "match" : "MISMATCH", e.size());
  kiln_safetensors_close(actual);
  kiln_safetensors_close(expected);
  return ok ? 0 : 1;
}

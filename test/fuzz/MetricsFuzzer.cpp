//===- MetricsFuzzer.cpp - libFuzzer target for the metrics CSV reader ----===//
//
// Each input is a whole metrics.csv, read through the runtime's reader
// (kiln_metrics_read_csv: what `kilnc plot` and a resumed training run read).
// Besides what the sanitizers catch, it aborts on the reader's promises
// (runtime/include/kiln/runtime/metrics.h):
//
//   1. a failed read returns no rows (NULL, 0) and a message that starts
//      with the path and holds no control character (fields are escaped);
//   2. a read's rows are what the documented format allows: epochs >= 0 and
//      strictly increasing, accuracies in [0, 1] or NaN, one row per line
//      after the header (the file is the header line and `count` lines,
//      each ending in '\n');
//   3. the rows round-trip: kiln_metrics_write_csv accepts them, and reading
//      the file it wrote gives the same epochs and each value as %.9g's
//      digits give it back (the format keeps 9 significant digits, so a
//      value read with more comes back rounded, and one with 9 or fewer
//      exactly; NaN stays NaN, -0 stays -0).
//
// The written file goes to a directory of this process under $TMPDIR (or
// /tmp), removed at exit.
//
//===----------------------------------------------------------------------===//
#include "FuzzSupport.h"
#include "kiln/runtime/metrics.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void fail(const char *what) { kiln::fuzz::abortWith("metrics fuzzer", what); }

using kiln::fuzz::hasControlCharacter;
using kiln::fuzz::MemFile;

// The eight doubles of a row, in column order.
void valuesOf(const kiln_metrics_row_t &row, double out[8]) {
  const double values[8] = {row.train_loss,   row.train_accuracy, row.val_loss,
                            row.val_accuracy, row.seconds,        row.step_seconds,
                            row.eval_seconds, row.samples_per_second};
  std::memcpy(out, values, sizeof values);
}

bool fraction(double value) { return std::isnan(value) || (value >= 0 && value <= 1); }

// What the writer's 9 significant digits make of `value` when read back
// (this process runs in the C locale, so printf and strtod are plain).
double roundTo9Digits(double value) {
  if (std::isnan(value) || std::isinf(value))
    return value;
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", value);
  return std::strtod(text, nullptr);
}

bool sameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

// A directory for the round trip's file, made once, removed at exit.
struct ScratchDir {
  std::string dir, file;
  ScratchDir() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-metrics-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data()))
      fail("mkdtemp failed");
    dir = pattern;
    file = dir + "/metrics.csv";
  }
  ~ScratchDir() {
    std::remove(file.c_str());
    rmdir(dir.c_str());
  }
};

void checkRows(const kiln_metrics_row_t *rows, size_t count, const uint8_t *data, size_t size) {
  if ((count == 0) != (rows == nullptr))
    fail("rows are NULL exactly when there are none: not so");
  size_t newlines = 0;
  for (size_t i = 0; i < size; ++i)
    newlines += data[i] == '\n';
  if (newlines != count + 1 || size == 0 || data[size - 1] != '\n')
    fail("a read file is not the header line and one line per row");
  size_t header = std::strlen(KILN_METRICS_CSV_HEADER);
  if (size < header + 1 || std::memcmp(data, KILN_METRICS_CSV_HEADER, header) != 0 ||
      !(data[header] == '\n' || (data[header] == '\r' && data[header + 1] == '\n')))
    fail("a read file does not start with the header line");
  for (size_t i = 0; i < count; ++i) {
    if (rows[i].epoch < 0)
      fail("a negative epoch");
    if (i > 0 && rows[i].epoch <= rows[i - 1].epoch)
      fail("epochs are not strictly increasing");
    if (!fraction(rows[i].train_accuracy) || !fraction(rows[i].val_accuracy))
      fail("an accuracy outside [0, 1]");
  }
}

void checkRoundTrip(const kiln_metrics_row_t *rows, size_t count) {
  static ScratchDir scratch;
  kiln_status_t status = kiln_metrics_write_csv(scratch.file.c_str(), rows, count);
  if (status) {
    std::fprintf(stderr, "%s\n", kiln_status_message(status));
    fail("the writer refused rows the reader accepted");
  }
  kiln_metrics_row_t *back = nullptr;
  size_t backCount = 0;
  status = kiln_metrics_read_csv(scratch.file.c_str(), &back, &backCount);
  if (status) {
    std::fprintf(stderr, "%s\n", kiln_status_message(status));
    fail("the reader refused the file the writer wrote");
  }
  if (backCount != count)
    fail("a written file reads back with another number of rows");
  for (size_t i = 0; i < count; ++i) {
    if (back[i].epoch != rows[i].epoch)
      fail("an epoch changed in the round trip");
    double before[8], after[8];
    valuesOf(rows[i], before);
    valuesOf(back[i], after);
    for (int column = 0; column < 8; ++column)
      if (!sameValue(roundTo9Digits(before[column]), after[column])) {
        std::fprintf(stderr, "row %zu column %d: %.17g read back as %.17g\n", i, column + 1,
                     before[column], after[column]);
        fail("a value did not round-trip to its 9 significant digits");
      }
  }
  kiln_metrics_free(back);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MemFile input("metrics.csv", data, size);
  // Poisoned, so that outputs left as they were are caught.
  auto *poison = reinterpret_cast<kiln_metrics_row_t *>(uintptr_t(0x1));
  kiln_metrics_row_t *rows = poison;
  size_t count = 12345;
  kiln_status_t status = kiln_metrics_read_csv(input.path.c_str(), &rows, &count);
  if (status) {
    if (rows != nullptr || count != 0)
      fail("a failed read returned rows");
    const char *message = kiln_status_message(status);
    if (kiln_status_code(status) != KILN_OUT_OF_MEMORY &&
        std::strncmp(message, input.path.c_str(), input.path.size()) != 0)
      fail("a failed read's message does not start with the path");
    if (hasControlCharacter(message))
      fail("a message holds a control character");
    kiln_status_free(status);
    return 0;
  }
  checkRows(rows, count, data, size);
  checkRoundTrip(rows, count);
  kiln_metrics_free(rows);
  return 0;
}

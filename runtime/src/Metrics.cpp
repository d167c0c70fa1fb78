//===- Metrics.cpp - Training metrics as CSV, one row per epoch -----------===//
//
// The format is in kiln/runtime/metrics.h. Numbers go through
// std::to_chars / std::from_chars rather than printf / strtod, which follow
// the process's locale: a trainer embedded in a program that set a German
// locale would otherwise write "0,5" and break the columns.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/metrics.h"

#include "Support.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

using namespace kiln::runtime;

namespace {

constexpr size_t kColumns = 9;
constexpr char kHeader[] = KILN_METRICS_CSV_HEADER;
// Column indices of the accuracies, which must be fractions.
constexpr size_t kTrainAccuracy = 2, kValAccuracy = 4;

// The eight doubles of a row in column order (columns 1 to 8).
double *valueAt(kiln_metrics_row_t &row, size_t column) {
  double *values[] = {&row.train_loss,   &row.train_accuracy, &row.val_loss,
                      &row.val_accuracy, &row.seconds,        &row.step_seconds,
                      &row.eval_seconds, &row.samples_per_second};
  return values[column - 1];
}
double valueAt(const kiln_metrics_row_t &row, size_t column) {
  return *valueAt(const_cast<kiln_metrics_row_t &>(row), column);
}

bool isAccuracy(size_t column) { return column == kTrainAccuracy || column == kValAccuracy; }
// NaN (absent) or a fraction.
bool validAccuracy(double value) { return std::isnan(value) || (value >= 0 && value <= 1); }

const char *columnName(size_t column) {
  static const char *names[] = {"epoch",        "train_loss",   "train_accuracy",
                                "val_loss",     "val_accuracy", "seconds",
                                "step_seconds", "eval_seconds", "samples_per_second"};
  return names[column];
}

// %.9g's digits, in the C locale; NaN (absent) is the empty field.
void appendValue(std::string &out, double value) {
  if (std::isnan(value))
    return;
  char buffer[64];
  std::to_chars_result result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general, 9);
  out.append(buffer, result.ptr);
}

// The first row the reader would refuse, as a message; empty if none.
std::string invalidRow(const kiln_metrics_row_t *rows, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    std::string which = "row " + std::to_string(i) + " (epoch " + std::to_string(rows[i].epoch) + ")";
    if (rows[i].epoch < 0)
      return which + ": the epoch is negative";
    if (i > 0 && rows[i].epoch <= rows[i - 1].epoch)
      return which + ": the epoch is not above the previous row's (" +
             std::to_string(rows[i - 1].epoch) + ")";
    for (size_t column : {kTrainAccuracy, kValAccuracy})
      if (!validAccuracy(valueAt(rows[i], column)))
        return which + ": " + columnName(column) + " is not a fraction in [0, 1]";
  }
  return {};
}

std::string formatCsv(const kiln_metrics_row_t *rows, size_t count) {
  std::string text = std::string(kHeader) + "\n";
  for (size_t i = 0; i < count; ++i) {
    text += std::to_string(rows[i].epoch);
    for (size_t column = 1; column < kColumns; ++column) {
      text += ',';
      appendValue(text, valueAt(rows[i], column));
    }
    text += '\n';
  }
  return text;
}

// Splits `line` at commas (CSV without quoting: no field holds a comma).
std::vector<std::string_view> splitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string_view::npos; start = comma + 1)
    fields.push_back(line.substr(start, comma - start));
  fields.push_back(line.substr(start));
  return fields;
}

// Parses one file's text line by line; every error names the file and line.
class CsvParser {
public:
  CsvParser(std::string path, std::string_view text) : path_(std::move(path)), text_(text) {}

  kiln_status_t parse(std::vector<kiln_metrics_row_t> &rows) {
    if (text_.empty())
      return error(1, "empty file (expected the header line '" + std::string(kHeader) + "')");
    std::string_view line;
    KILN_RETURN_IF_ERROR(nextLine(line));
    if (line != kHeader)
      return error(1, "the header line is not '" + std::string(kHeader) + "'");
    while (pos_ < text_.size()) {
      KILN_RETURN_IF_ERROR(nextLine(line));
      kiln_metrics_row_t row = kiln_metrics_row_empty();
      KILN_RETURN_IF_ERROR(parseRow(line, row));
      if (!rows.empty() && row.epoch <= rows.back().epoch)
        return error(lineNumber_, "epoch " + std::to_string(row.epoch) +
                                      " is not above the previous row's (" +
                                      std::to_string(rows.back().epoch) + ")");
      rows.push_back(row);
    }
    return nullptr;
  }

private:
  std::string path_;
  std::string_view text_;
  size_t pos_ = 0;
  size_t lineNumber_ = 0;

  kiln_status_t error(size_t line, const std::string &message) const {
    return makeStatus(KILN_DATA_LOSS, path_ + ":" + std::to_string(line) + ": " + message);
  }

  // line := [^\n]* '\n', with a '\r' before the newline dropped.
  kiln_status_t nextLine(std::string_view &line) {
    ++lineNumber_;
    size_t newline = text_.find('\n', pos_);
    if (newline == std::string_view::npos)
      return error(lineNumber_, "the last line has no newline (is the file truncated?)");
    line = text_.substr(pos_, newline - pos_);
    pos_ = newline + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    return nullptr;
  }

  // row := epoch (',' value){8}
  kiln_status_t parseRow(std::string_view line, kiln_metrics_row_t &row) const {
    std::vector<std::string_view> fields = splitFields(line);
    if (fields.size() != kColumns)
      return error(lineNumber_, std::to_string(fields.size()) + " fields (expected " +
                                    std::to_string(kColumns) + ", as in the header)");
    KILN_RETURN_IF_ERROR(parseEpoch(fields[0], row.epoch));
    for (size_t column = 1; column < kColumns; ++column)
      KILN_RETURN_IF_ERROR(parseValue(fields[column], column, *valueAt(row, column)));
    return nullptr;
  }

  // epoch := [0-9]+
  kiln_status_t parseEpoch(std::string_view field, int64_t &out) const {
    const char *end = field.data() + field.size();
    std::from_chars_result result = std::from_chars(field.data(), end, out);
    if (field.empty() || field[0] == '-' || result.ec != std::errc() || result.ptr != end)
      return error(lineNumber_, "epoch '" + std::string(field) +
                                    "' is not a non-negative integer of 64 bits");
    return nullptr;
  }

  // value := '' | a decimal float, "inf" or "-inf" (from_chars' general
  // format: no sign '+', no spaces). "nan" is refused: absent is empty.
  kiln_status_t parseValue(std::string_view field, size_t column, double &out) const {
    if (field.empty()) {
      out = NAN;
      return nullptr;
    }
    const char *end = field.data() + field.size();
    std::from_chars_result result = std::from_chars(field.data(), end, out);
    if (result.ec != std::errc() || result.ptr != end || std::isnan(out))
      return error(lineNumber_, std::string(columnName(column)) + " '" + std::string(field) +
                                    "' is not a number (an absent value is an empty field)");
    if (isAccuracy(column) && !validAccuracy(out))
      return error(lineNumber_, std::string(columnName(column)) + " " + std::string(field) +
                                    " is not a fraction in [0, 1]");
    return nullptr;
  }
};

kiln_status_t readCsv(const std::string &path, std::vector<kiln_metrics_row_t> &rows) {
  InputFile input;
  KILN_RETURN_IF_ERROR(input.open(path));
  if (input.size() > KILN_METRICS_MAX_FILE_SIZE)
    return makeStatus(KILN_DATA_LOSS, path + ": " + std::to_string(input.size()) +
                                          " bytes, more than the " +
                                          std::to_string(KILN_METRICS_MAX_FILE_SIZE) +
                                          " a metrics file may have");
  std::string text(input.size(), '\0');
  KILN_RETURN_IF_ERROR(input.readAt(0, text.data(), text.size()));
  return CsvParser(path, text).parse(rows);
}

} // namespace

extern "C" {

kiln_metrics_row_t kiln_metrics_row_empty(void) {
  return {0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
}

kiln_status_t kiln_metrics_write_csv(const char *path, const kiln_metrics_row_t *rows,
                                     size_t count) {
  return guard([&]() -> kiln_status_t {
    if (!path || (count > 0 && !rows))
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_metrics_write_csv: NULL argument");
    std::string invalid = invalidRow(rows, count);
    if (!invalid.empty())
      return makeStatus(KILN_INVALID_ARGUMENT, std::string(path) + ": " + invalid);
    std::string text = formatCsv(rows, count);
    return writeFileAtomically(path, {{text.data(), text.size()}});
  });
}

kiln_status_t kiln_metrics_read_csv(const char *path, kiln_metrics_row_t **out_rows,
                                    size_t *out_count) {
  if (out_rows)
    *out_rows = nullptr;
  if (out_count)
    *out_count = 0;
  return guard([&]() -> kiln_status_t {
    if (!path || !out_rows || !out_count)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_metrics_read_csv: NULL argument");
    std::vector<kiln_metrics_row_t> rows;
    KILN_RETURN_IF_ERROR(readCsv(path, rows));
    if (rows.empty())
      return nullptr;
    // malloc, so that kiln_metrics_free is free() and C callers need no C++.
    auto *copy = static_cast<kiln_metrics_row_t *>(std::malloc(rows.size() * sizeof rows[0]));
    if (!copy)
      return outOfMemory();
    std::memcpy(copy, rows.data(), rows.size() * sizeof rows[0]);
    *out_rows = copy;
    *out_count = rows.size();
    return nullptr;
  });
}

void kiln_metrics_free(kiln_metrics_row_t *rows) { std::free(rows); }

} // extern "C"

//===- Show.cpp - `kilnc show`: a checkpoint's tensors and metadata -------===//
//
// Each tensor is read whole through the runtime's safetensors reader (which
// checks the file) and summarised in double precision. Statistics are over
// the finite values only, and the NaN and infinities are counted and said:
// a checkpoint that diverged shows "3 NaN" rather than a mean of nan that
// hides how much of the tensor is lost.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Show.h"

#include "kiln/Driver/OutputPath.h"
#include "kiln/Driver/TerminalSafeStream.h"
#include "kiln/runtime/safetensors.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <limits>
#include <vector>

namespace kiln {

namespace {

std::string take(kiln_status_t status) { return takeStatusMessage(status); }

/// `text` for one cell of a row: control characters escaped as
/// TerminalSafeStream escapes them, and newline and tab too, which would
/// break the row.
std::string cellText(llvm::StringRef text) {
  std::string flat;
  for (char c : text)
    flat += c == '\n' ? std::string("\\x0a") : c == '\t' ? std::string("\\x09") : std::string(1, c);
  return escapeControlCharacters(flat);
}

std::string formatShape(const kiln_tensor_info_t &info) {
  std::string text = "[";
  for (size_t i = 0; i < info.rank; ++i)
    text += (i ? ", " : "") + std::to_string(info.shape[i]);
  return text + "]";
}

/// %.9g: a float's value exactly, a double's to 9 digits.
std::string number(double value) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%.9g", value);
  return text;
}

/// One row of the listing, as the cells printed.
struct Row {
  std::string name, shape, dtype, min = "-", mean = "-", max = "-", note;
};

/// Min, mean and max of the finite values, and the count of the others.
struct FloatStats {
  double min = HUGE_VAL, max = -HUGE_VAL, sum = 0;
  size_t finite = 0, nan = 0, posInf = 0, negInf = 0;

  void add(double v) {
    if (std::isnan(v))
      ++nan;
    else if (std::isinf(v))
      ++(v > 0 ? posInf : negInf);
    else
      min = std::min(min, v), max = std::max(max, v), sum += v, ++finite;
  }
  void fill(Row &row) const {
    if (finite)
      row.min = number(min), row.mean = number(sum / double(finite)), row.max = number(max);
    std::vector<std::string> notes;
    if (nan)
      notes.push_back(std::to_string(nan) + " NaN");
    if (posInf)
      notes.push_back(std::to_string(posInf) + " +Inf");
    if (negInf)
      notes.push_back(std::to_string(negInf) + " -Inf");
    if (!notes.empty())
      row.note = llvm::join(notes, ", ") + " (not in min/mean/max)";
  }
};

/// Min, mean and max of integers, kept exact (a mean is a double).
template <typename T> void integerStats(const std::vector<T> &values, Row &row) {
  if (values.empty())
    return;
  T min = std::numeric_limits<T>::max(), max = std::numeric_limits<T>::lowest();
  double sum = 0;
  for (T v : values)
    min = std::min(min, v), max = std::max(max, v), sum += double(v);
  row.min = std::to_string(min);
  row.mean = number(sum / double(values.size()));
  row.max = std::to_string(max);
}

bool isFloat(kiln_dtype_t dtype) {
  return dtype == KILN_DTYPE_F32 || dtype == KILN_DTYPE_F64 || dtype == KILN_DTYPE_F16 ||
         dtype == KILN_DTYPE_BF16;
}

/// Reads tensor `info` and fills in its statistics.
kiln_status_t summarise(const kiln_safetensors_t *file, const kiln_tensor_info_t &info,
                        Row &row) {
  if (info.count == 0) {
    row.note = "no elements";
    return nullptr;
  }
  if (info.dtype == KILN_DTYPE_F64) { // read as doubles: float would round them
    std::vector<double> values(info.count);
    KILN_RETURN_IF_ERROR(
        kiln_safetensors_read_bytes(file, info.name, info.byte_size, values.data()));
    FloatStats stats;
    for (double v : values)
      stats.add(v);
    stats.fill(row);
  } else if (isFloat(info.dtype)) { // F16 and BF16 convert to float exactly
    std::vector<float> values(info.count);
    KILN_RETURN_IF_ERROR(kiln_safetensors_read_f32(file, info.name, info.count, values.data()));
    FloatStats stats;
    for (float v : values)
      stats.add(v);
    stats.fill(row);
  } else if (info.dtype == KILN_DTYPE_U64) { // beyond int64: the raw bytes
    std::vector<uint64_t> values(info.count);
    KILN_RETURN_IF_ERROR(
        kiln_safetensors_read_bytes(file, info.name, info.byte_size, values.data()));
    integerStats(values, row);
  } else { // the other integers and BOOL fit int64
    std::vector<int64_t> values(info.count);
    KILN_RETURN_IF_ERROR(kiln_safetensors_read_i64(file, info.name, info.count, values.data()));
    integerStats(values, row);
  }
  return nullptr;
}

/// Prints `rows` in columns: text left-aligned, numbers right-aligned, the
/// note last and unpadded.
void printTable(const std::vector<Row> &rows, llvm::raw_ostream &os) {
  auto cells = [](const Row &r) {
    return std::vector<const std::string *>{&r.name, &r.shape, &r.dtype, &r.min, &r.mean, &r.max};
  };
  std::vector<size_t> widths(6, 0);
  for (const Row &r : rows)
    for (size_t c = 0; c < 6; ++c)
      widths[c] = std::max(widths[c], cells(r)[c]->size());
  for (const Row &r : rows) {
    std::string line;
    for (size_t c = 0; c < 6; ++c) {
      const std::string &cell = *cells(r)[c];
      std::string pad(widths[c] - cell.size(), ' ');
      line += (c ? "  " : "") + (c < 3 ? cell + pad : pad + cell);
    }
    if (!r.note.empty())
      line += "  " + r.note;
    os << llvm::StringRef(line).rtrim() << "\n";
  }
}

/// The metadata, one "key  value" line each, keys aligned.
kiln_status_t printMetadata(const kiln_safetensors_t *file, llvm::raw_ostream &os) {
  size_t count = kiln_safetensors_metadata_count(file);
  os << "metadata: " << count << (count == 1 ? " entry" : " entries") << "\n";
  std::vector<std::pair<std::string, std::string>> entries;
  size_t width = 0;
  for (size_t i = 0; i < count; ++i) {
    const char *key = nullptr, *value = nullptr;
    KILN_RETURN_IF_ERROR(kiln_safetensors_metadata_at(file, i, &key, &value));
    entries.emplace_back(cellText(key), cellText(value));
    width = std::max(width, entries.back().first.size());
  }
  for (const auto &[key, value] : entries)
    os << "  " << key << std::string(width - key.size(), ' ') << "  " << value << "\n";
  return nullptr;
}

kiln_status_t listCheckpoint(const kiln_safetensors_t *file, llvm::StringRef path,
                             llvm::raw_ostream &os) {
  std::vector<Row> rows = {{"tensor", "shape", "dtype", "min", "mean", "max", ""}};
  size_t count = kiln_safetensors_count(file), elements = 0;
  for (size_t i = 0; i < count; ++i) {
    kiln_tensor_info_t info;
    KILN_RETURN_IF_ERROR(kiln_safetensors_info(file, i, &info));
    Row row;
    row.name = cellText(info.name);
    row.shape = formatShape(info);
    row.dtype = kiln_dtype_name(info.dtype);
    KILN_RETURN_IF_ERROR(summarise(file, info, row));
    rows.push_back(std::move(row));
    elements += info.count;
  }
  os << cellText(path) << ": " << count << (count == 1 ? " tensor, " : " tensors, ") << elements
     << (elements == 1 ? " element\n" : " elements\n");
  printTable(rows, os);
  return printMetadata(file, os);
}

} // namespace

mlir::LogicalResult showCheckpoint(llvm::StringRef path, llvm::raw_ostream &os,
                                   std::string &error) {
  kiln_safetensors_t *file = nullptr;
  if (kiln_status_t status = kiln_safetensors_open(path.str().c_str(), &file)) {
    error = take(status);
    return mlir::failure();
  }
  std::string text;
  llvm::raw_string_ostream listing(text);
  kiln_status_t status = listCheckpoint(file, path, listing);
  kiln_safetensors_close(file);
  if (status) {
    error = take(status);
    return mlir::failure();
  }
  os << listing.str();
  return mlir::success();
}

} // namespace kiln

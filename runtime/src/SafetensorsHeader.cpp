//===- SafetensorsHeader.cpp - Parsing and checking a safetensors header --===//
//
// The header is read with nlohmann's SAX interface rather than into a DOM:
// a DOM would silently keep one of two duplicate keys, and a hostile 100 MB
// header could expand to gigabytes of json nodes. The SAX handler below is a
// small state machine that accepts exactly the schema
//   header := '{' (name ':' entry | '"__metadata__"' ':' metadata)* '}'
//   entry  := '{' "dtype": string, "shape": [uint*], "data_offsets": [uint, uint] '}'
//   metadata := '{' (string ':' string)* '}'
// and builds the tensor list as it goes.
//
//===----------------------------------------------------------------------===//
#include "SafetensorsHeader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_set>

namespace kiln::runtime {

bool dtypeFromName(std::string_view name, kiln_dtype_t *out) {
  static const kiln_dtype_t all[] = {
      KILN_DTYPE_F32, KILN_DTYPE_F64, KILN_DTYPE_F16, KILN_DTYPE_BF16,
      KILN_DTYPE_I64, KILN_DTYPE_I32, KILN_DTYPE_I16, KILN_DTYPE_I8,
      KILN_DTYPE_U64, KILN_DTYPE_U32, KILN_DTYPE_U16, KILN_DTYPE_U8,
      KILN_DTYPE_BOOL};
  for (kiln_dtype_t dtype : all)
    if (name == kiln_dtype_name(dtype)) {
      *out = dtype;
      return true;
    }
  return false;
}

namespace {

using json = nlohmann::json;

class HeaderHandler {
public:
  std::vector<TensorEntry> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
  kiln_status_code_t code = KILN_DATA_LOSS;
  std::string error; // set when a callback returns false

  // nlohmann reports non-negative integers through number_unsigned, so
  // number_integer only ever sees negative values.
  bool number_integer(json::number_integer_t value) {
    if (where_ == Where::Shape || where_ == Where::Offsets)
      return fail(subject() + " has a negative entry " + std::to_string(value));
    return wrongType("a number");
  }
  bool number_unsigned(json::number_unsigned_t value) {
    if (where_ == Where::Shape) {
      if (value > static_cast<uint64_t>(INT64_MAX))
        return fail(subject() + " has an entry " + std::to_string(value) +
                    " above 2^63-1");
      if (entry_.shape.size() == KILN_MAX_RANK)
        return fail(subject() + " has more than " +
                    std::to_string(KILN_MAX_RANK) + " dimensions");
      entry_.shape.push_back(static_cast<int64_t>(value));
      return true;
    }
    if (where_ == Where::Offsets) {
      if (offsets_.size() == 2)
        return fail(subject() + " must have exactly 2 entries");
      offsets_.push_back(value);
      return true;
    }
    return wrongType("a number");
  }
  bool number_float(json::number_float_t, const std::string &text) {
    if (where_ == Where::Shape || where_ == Where::Offsets)
      return fail(subject() + " has a non-integer entry " + text);
    return wrongType("a number");
  }
  bool null() { return wrongType("null"); }
  bool boolean(bool) { return wrongType("a boolean"); }
  bool binary(json::binary_t &) { return wrongType("binary data"); }

  bool string(std::string &value) {
    if (where_ == Where::Metadata) {
      metadata.emplace_back(key_, value);
      return true;
    }
    if (where_ == Where::Entry && field_ == "dtype") {
      dtypeName_ = value;
      return true;
    }
    return wrongType("a string");
  }

  bool start_object(std::size_t) {
    if (where_ == Where::Start) {
      where_ = Where::Root;
      return true;
    }
    if (where_ != Where::Root)
      return wrongType("an object");
    if (key_ == "__metadata__") {
      where_ = Where::Metadata;
      return true;
    }
    entry_ = TensorEntry();
    entry_.name = key_;
    fields_.clear();
    where_ = Where::Entry;
    return true;
  }
  bool end_object() {
    switch (where_) {
    case Where::Metadata:
      where_ = Where::Root;
      return true;
    case Where::Entry:
      where_ = Where::Root;
      return finishEntry();
    default: // Root: the parser itself rejects anything after the last '}'
      where_ = Where::Done;
      return true;
    }
  }
  bool start_array(std::size_t) {
    if (where_ == Where::Entry && field_ == "shape") {
      where_ = Where::Shape;
      return true;
    }
    if (where_ == Where::Entry && field_ == "data_offsets") {
      where_ = Where::Offsets;
      offsets_.clear();
      return true;
    }
    return wrongType("an array");
  }
  bool end_array() {
    if (where_ == Where::Offsets && offsets_.size() != 2)
      return fail(subject() + " must have exactly 2 entries");
    where_ = Where::Entry;
    return true;
  }

  bool key(std::string &key) {
    // Names reach C callers as C strings; an embedded NUL would make two
    // distinct names look alike there.
    if (key.find('\0') != std::string::npos)
      return fail("key '" + key.substr(0, key.find('\0')) +
                  "\\u0000...' contains a NUL character");
    if (where_ == Where::Root) {
      if (key.empty())
        return fail("a tensor has an empty name");
      if (!names_.insert(key).second)
        return fail(describeRootKey(key) + " appears twice");
      key_ = key;
    } else if (where_ == Where::Entry) {
      if (key != "dtype" && key != "shape" && key != "data_offsets")
        return fail("tensor '" + entry_.name + "': unexpected field '" + key +
                    "' (allowed: dtype, shape, data_offsets)");
      if (!fields_.insert(key).second)
        return fail("tensor '" + entry_.name + "': field '" + key +
                    "' appears twice");
      field_ = key;
    } else { // Metadata
      if (!metadataKeys_.insert(key).second)
        return fail("__metadata__: key '" + key + "' appears twice");
      key_ = key;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string &,
                   const json::exception &e) {
    // A handler failure has already set the message; this is the parser's.
    return fail(std::string("header is not valid JSON: ") + e.what());
  }

private:
  enum class Where { Start, Root, Entry, Shape, Offsets, Metadata, Done };
  Where where_ = Where::Start;
  std::string key_;   // latest key of the root or metadata object
  std::string field_; // latest key inside a tensor entry
  TensorEntry entry_; // the entry being read
  std::string dtypeName_;
  std::vector<uint64_t> offsets_;
  std::unordered_set<std::string> names_, fields_, metadataKeys_;

  static std::string describeRootKey(const std::string &key) {
    return key == "__metadata__" ? "'__metadata__'" : "tensor '" + key + "'";
  }

  bool fail(std::string message, kiln_status_code_t failCode = KILN_DATA_LOSS) {
    if (error.empty()) {
      error = std::move(message);
      code = failCode;
    }
    return false;
  }

  // Where we are, for messages: "tensor 'fc1.weight': field 'dtype'".
  std::string subject() const {
    switch (where_) {
    case Where::Start: return "header";
    case Where::Root: return describeRootKey(key_);
    case Where::Entry: return "tensor '" + entry_.name + "': field '" + field_ + "'";
    case Where::Shape: return "tensor '" + entry_.name + "': shape";
    case Where::Offsets: return "tensor '" + entry_.name + "': data_offsets";
    case Where::Metadata: return "__metadata__: value of '" + key_ + "'";
    case Where::Done: break;
    }
    return "header";
  }
  std::string expected() const {
    switch (where_) {
    case Where::Start: return "a JSON object";
    case Where::Root: return "an object";
    case Where::Entry: return field_ == "dtype" ? "a string" : "an array";
    case Where::Shape:
    case Where::Offsets: return "a non-negative integer";
    case Where::Metadata: return "a string";
    case Where::Done: break;
    }
    return "nothing";
  }
  bool wrongType(const char *found) {
    if (where_ == Where::Shape || where_ == Where::Offsets)
      return fail(subject() + " must contain only non-negative integers, not " + found);
    return fail(subject() + " must be " + expected() + ", not " + found);
  }

  bool finishEntry() {
    for (const char *field : {"dtype", "shape", "data_offsets"})
      if (!fields_.count(field))
        return fail("tensor '" + entry_.name + "': missing field '" + field + "'");
    if (!dtypeFromName(dtypeName_, &entry_.dtype)) {
      // Float8 is a real safetensors dtype that Kiln cannot compute with yet;
      // anything else is not safetensors at all.
      bool known = dtypeName_ == "F8_E4M3" || dtypeName_ == "F8_E5M2";
      return fail("tensor '" + entry_.name + "': " +
                      (known ? "unsupported" : "unknown") + " dtype '" +
                      dtypeName_ + "'",
                  known ? KILN_UNIMPLEMENTED : KILN_DATA_LOSS);
    }
    entry_.begin = offsets_[0];
    entry_.end = offsets_[1];
    tensors.push_back(std::move(entry_));
    return true;
  }
};

// Checks one entry's byte range against its shape and the buffer size.
std::string checkEntry(TensorEntry &t, uint64_t dataSize) {
  std::string who = "tensor '" + t.name + "': ";
  std::string range =
      "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
  if (t.begin > t.end)
    return who + range + " begin after they end";
  if (t.end > dataSize)
    return who + range + " run past the end of the data buffer (" +
           std::to_string(dataSize) + " bytes; is the file truncated?)";
  uint64_t bytes = 0;
  if (!shapeCount(t.shape, &t.count) ||
      !checkedMul(t.count, kiln_dtype_size(t.dtype), &bytes))
    return who + "shape " + formatShape(t.shape) + " of " +
           kiln_dtype_name(t.dtype) + " overflows a 64-bit byte count";
  if (bytes != t.end - t.begin)
    return who + "shape " + formatShape(t.shape) + " of " +
           kiln_dtype_name(t.dtype) + " needs " + std::to_string(bytes) +
           " bytes but data_offsets span " + std::to_string(t.end - t.begin);
  return "";
}

// The ranges must tile [0, dataSize) exactly: a hole or trailing bytes would
// be data no tensor owns, an overlap would let two tensors alias.
std::string checkTiling(const std::vector<TensorEntry> &tensors,
                        uint64_t dataSize) {
  std::vector<const TensorEntry *> byOffset;
  for (const TensorEntry &t : tensors)
    byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(),
            [](const TensorEntry *a, const TensorEntry *b) {
              return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
            });
  uint64_t covered = 0;
  const TensorEntry *previous = nullptr;
  for (const TensorEntry *t : byOffset) {
    if (t->begin < covered)
      return "tensor '" + t->name + "': data_offsets [" +
             std::to_string(t->begin) + ", " + std::to_string(t->end) +
             "] overlap tensor '" + previous->name + "' [" +
             std::to_string(previous->begin) + ", " +
             std::to_string(previous->end) + "]";
    if (t->begin > covered)
      return "tensor '" + t->name + "': data_offsets begin at " +
             std::to_string(t->begin) + ", leaving bytes [" +
             std::to_string(covered) + ", " + std::to_string(t->begin) +
             ") of the data buffer unused";
    covered = t->end;
    previous = t;
  }
  if (covered != dataSize)
    return "tensors cover " + std::to_string(covered) +
           " bytes of the data buffer but it has " + std::to_string(dataSize) +
           " (trailing bytes after the last tensor)";
  return "";
}

} // namespace

kiln_status_t parseSafetensorsHeader(const std::string &path,
                                     std::string_view text, uint64_t dataSize,
                                     SafetensorsHeader &out) {
  HeaderHandler handler;
  if (!json::sax_parse(text.begin(), text.end(), &handler) ||
      !handler.error.empty())
    return makeStatus(handler.code, path + ": " + handler.error);
  for (TensorEntry &t : handler.tensors) {
    std::string error = checkEntry(t, dataSize);
    if (!error.empty())
      return makeStatus(KILN_DATA_LOSS, path + ": " + error);
  }
  std::string error = checkTiling(handler.tensors, dataSize);
  if (!error.empty())
    return makeStatus(KILN_DATA_LOSS, path + ": " + error);
  out.tensors = std::move(handler.tensors);
  out.metadata = std::move(handler.metadata);
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorEntry &a, const TensorEntry &b) { return a.name < b.name; });
  std::sort(out.metadata.begin(), out.metadata.end());
  return nullptr;
}

} // namespace kiln::runtime

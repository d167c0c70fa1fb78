//===- SafetensorsHeader.h - Parsing and checking a safetensors header ----===//
#ifndef KILN_RUNTIME_SRC_SAFETENSORSHEADER_H
#define KILN_RUNTIME_SRC_SAFETENSORSHEADER_H

#include "Support.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::runtime {

struct TensorEntry {
  std::string name;
  kiln_dtype_t dtype = KILN_DTYPE_F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0; // byte range within the data buffer
  uint64_t count = 0;          // elements
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;                          // sorted by name
  std::vector<std::pair<std::string, std::string>> metadata; // sorted by key
};

// Parses the JSON header `json` of the file `path` (named in every message)
// and checks that its tensors tile a data buffer of `dataSize` bytes.
kiln_status_t parseSafetensorsHeader(const std::string &path,
                                     std::string_view json, uint64_t dataSize,
                                     SafetensorsHeader &out);

// The dtype called `name` ("F32", ...); false if Kiln does not know it.
bool dtypeFromName(std::string_view name, kiln_dtype_t *out);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_SRC_SAFETENSORSHEADER_H

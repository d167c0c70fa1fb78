//===- SafetensorsWriter.cpp - Writing safetensors files ------------------===//
#include "kiln/runtime/safetensors.h"

#include "Support.h"

#include <nlohmann/json.hpp>

#include <map>

using namespace kiln::runtime;

namespace {
struct PendingTensor {
  kiln_dtype_t dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
} // namespace

struct kiln_safetensors_writer_s {
  // std::map keeps names sorted, which is the order tensors are written in.
  std::map<std::string, PendingTensor> tensors;
  std::map<std::string, std::string> metadata;
};

namespace {

kiln_status_t addTensor(kiln_safetensors_writer_t *writer, const char *name,
                        kiln_dtype_t dtype, size_t rank, const int64_t *shape,
                        const void *data) {
  std::string what = std::string("kiln_safetensors_writer_add: tensor '") +
                     (name ? name : "(null)") + "'";
  if (!writer || !name || (rank > 0 && !shape))
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": NULL argument");
  if (!*name || std::string(name) == "__metadata__")
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": name is reserved or empty");
  if (kiln_dtype_size(dtype) == 0)
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": unknown dtype " +
                                                 std::to_string(dtype));
  if (rank > KILN_MAX_RANK)
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": rank " + std::to_string(rank) +
                                                 " exceeds " + std::to_string(KILN_MAX_RANK));
  if (writer->tensors.count(name))
    return makeStatus(KILN_ALREADY_EXISTS, what + ": added twice");
  PendingTensor tensor{dtype, std::vector<int64_t>(shape, shape + rank), {}};
  uint64_t count = 0, bytes = 0;
  if (!shapeCount(tensor.shape, &count) ||
      !checkedMul(count, kiln_dtype_size(dtype), &bytes) || bytes > SIZE_MAX)
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": shape " +
                                                 formatShape(tensor.shape) +
                                                 " is negative or too large");
  if (bytes > 0 && !data)
    return makeStatus(KILN_INVALID_ARGUMENT, what + ": data is NULL");
  const auto *begin = static_cast<const uint8_t *>(data);
  tensor.bytes.assign(begin, begin + bytes);
  writer->tensors.emplace(name, std::move(tensor));
  return nullptr;
}

kiln_status_t writeFile(const kiln_safetensors_writer_t *writer,
                        const std::string &path) {
  nlohmann::json header = nlohmann::json::object();
  if (!writer->metadata.empty())
    header["__metadata__"] = writer->metadata;
  std::vector<Chunk> chunks(2); // length and header, filled in below
  uint64_t offset = 0;
  for (const auto &[name, tensor] : writer->tensors) {
    uint64_t end = offset + tensor.bytes.size();
    header[name] = {{"dtype", kiln_dtype_name(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, end}}};
    chunks.push_back({tensor.bytes.data(), tensor.bytes.size()});
    offset = end;
  }
  // Spaces pad the header to a multiple of 8 bytes, as the Python library
  // does, so that the data buffer starts 8-aligned.
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error &) { // thrown for invalid UTF-8
    return makeStatus(KILN_INVALID_ARGUMENT,
                      path + ": tensor names and metadata must be valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > KILN_SAFETENSORS_MAX_HEADER_SIZE)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      path + ": header would be " + std::to_string(text.size()) +
                          " bytes, more than readers accept");
  uint8_t length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  chunks[0] = {length, 8};
  chunks[1] = {text.data(), text.size()};
  return writeFileAtomically(path, chunks);
}

} // namespace

extern "C" {

kiln_status_t kiln_safetensors_writer_create(kiln_safetensors_writer_t **out_writer) {
  return guard([&]() -> kiln_status_t {
    if (!out_writer)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_writer_create: out_writer is NULL");
    *out_writer = new kiln_safetensors_writer_s();
    return nullptr;
  });
}

void kiln_safetensors_writer_free(kiln_safetensors_writer_t *writer) { delete writer; }

kiln_status_t kiln_safetensors_writer_add(kiln_safetensors_writer_t *writer,
                                          const char *name, kiln_dtype_t dtype,
                                          size_t rank, const int64_t *shape,
                                          const void *data) {
  return guard([&] { return addTensor(writer, name, dtype, rank, shape, data); });
}

kiln_status_t kiln_safetensors_writer_set_metadata(kiln_safetensors_writer_t *writer,
                                                   const char *key, const char *value) {
  return guard([&]() -> kiln_status_t {
    if (!writer || !key || !value)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_writer_set_metadata: NULL argument");
    writer->metadata[key] = value;
    return nullptr;
  });
}

kiln_status_t kiln_safetensors_writer_write(const kiln_safetensors_writer_t *writer,
                                            const char *path) {
  return guard([&]() -> kiln_status_t {
    if (!writer || !path)
      return makeStatus(KILN_INVALID_ARGUMENT,
                        "kiln_safetensors_writer_write: NULL argument");
    return writeFile(writer, path);
  });
}

} // extern "C"

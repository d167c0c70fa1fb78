//===- Support.cpp - Internal helpers of the Kiln runtime -----------------===//
#include "Support.h"

#include <cstring>

namespace kiln::runtime {

bool shapeCount(const std::vector<int64_t> &shape, uint64_t *out) {
  uint64_t count = 1;
  for (int64_t dim : shape)
    if (dim < 0 || !checkedMul(count, static_cast<uint64_t>(dim), &count))
      return false;
  *out = count;
  return true;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

kiln_status_t newArray(kiln_dtype_t dtype, const std::vector<int64_t> &shape,
                       const std::string &what, kiln_array_t **out_array,
                       bool zeroFill) {
  if (shape.size() > KILN_MAX_RANK)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      what + ": rank " + std::to_string(shape.size()) +
                          " exceeds the limit of " +
                          std::to_string(KILN_MAX_RANK));
  uint64_t count = 0, bytes = 0;
  if (!shapeCount(shape, &count) ||
      !checkedMul(count, kiln_dtype_size(dtype), &bytes) || bytes > SIZE_MAX)
    return makeStatus(KILN_INVALID_ARGUMENT,
                      what + ": shape " + formatShape(shape) +
                          " is negative or too large");
  auto array = std::make_unique<kiln_array_s>();
  array->dtype = dtype;
  array->shape = shape;
  array->count = count;
  array->byteSize = bytes;
  array->data = allocateAligned(bytes);
  if (!array->data)
    return outOfMemory();
  if (zeroFill)
    std::memset(array->data.get(), 0, bytes);
  *out_array = array.release();
  return nullptr;
}

std::string errnoText(int err) {
  char buffer[256];
  return kiln_errno_text(err, buffer, sizeof buffer);
}

} // namespace kiln::runtime

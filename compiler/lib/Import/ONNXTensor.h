//===- ONNXTensor.h - an ONNX TensorProto's values, checked -----*- C++ -*-===//
//
// Internal to the ONNX importer. A TensorProto's claims (dims, data type,
// where the data is) are checked against the bytes that are really there
// before anything is allocated: a file of 1 KB may claim a tensor of 2 GB.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_IMPORT_ONNXTENSOR_H
#define KILN_LIB_IMPORT_ONNXTENSOR_H

#include <onnx/onnx_pb.h>

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::onnximport {

/// The most elements one tensor may have: what the generated code indexes
/// with 32-bit integers.
constexpr int64_t kMaxElements = (int64_t(1) << 31) - 1;

/// A tensor's values on the host: float32 ones, or integers (INT64 and
/// INT32: shapes and axes).
struct HostTensor {
  std::string name;
  std::vector<int64_t> dims;
  bool isFloat = true;
  std::vector<float> floats;
  std::vector<int64_t> ints;

  int64_t elements() const {
    return static_cast<int64_t>(isFloat ? floats.size() : ints.size());
  }
};

/// Decodes `tensor`, whose external data (if any) lies in `modelDir`: a
/// location outside it (absolute, `..`, or a link leading out) is refused.
/// On error returns false and sets `error` to a sentence without the
/// tensor's name (the caller adds it).
bool decodeTensor(const onnx::TensorProto &tensor, llvm::StringRef modelDir, HostTensor &out,
                  std::string &error);

/// ONNX's name of a TensorProto data type ("FLOAT", "DOUBLE", ...).
std::string dataTypeName(int32_t type);

} // namespace kiln::onnximport

#endif // KILN_LIB_IMPORT_ONNXTENSOR_H

//===- ONNXTensor.cpp - an ONNX TensorProto's values, checked -------------===//
#include "ONNXTensor.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::onnximport {

std::string dataTypeName(int32_t type) {
  if (onnx::TensorProto_DataType_IsValid(type))
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type));
  return "type " + std::to_string(type);
}

namespace {

std::string shapeText(const onnx::TensorProto &tensor) {
  std::string text = "[";
  for (int i = 0; i < tensor.dims_size(); ++i)
    text += (i ? ", " : "") + std::to_string(tensor.dims(i));
  return text + "]";
}

/// The bytes of external data: `location` (relative to `modelDir`, inside
/// it), `offset` and `length`. `expected` is what the dims and type need.
bool readExternal(const onnx::TensorProto &tensor, llvm::StringRef modelDir, size_t expected,
                  std::string &bytes, std::string &error) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const onnx::StringStringEntryProto &entry : tensor.external_data()) {
    const std::string &key = entry.key(), &value = entry.value();
    if (key == "location") {
      location = value;
    } else if (key == "offset" || key == "length") {
      char *end = nullptr;
      errno = 0;
      long long number = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end || errno || number < 0) {
        error = "has external data with a bad " + key + " '" + value + "'";
        return false;
      }
      (key == "offset" ? offset : length) = number;
    }
  }
  if (location.empty()) {
    error = "has external data without a location";
    return false;
  }
  llvm::SmallString<256> relative(location);
  llvm::sys::path::remove_dots(relative, /*remove_dot_dot=*/true);
  bool escapes = llvm::sys::path::is_absolute(location) || relative.startswith("..") ||
                 location.find('\0') != std::string::npos;
  // The real paths: a symbolic link inside the directory may lead out of it.
  llvm::SmallString<256> dirReal, fileReal;
  llvm::SmallString<256> joined(modelDir.empty() ? "." : modelDir);
  llvm::sys::path::append(joined, relative);
  if (!escapes) {
    if (llvm::sys::fs::real_path(modelDir.empty() ? "." : modelDir, dirReal) ||
        llvm::sys::fs::real_path(joined, fileReal)) {
      error = "has external data in '" + location + "', which cannot be opened";
      return false;
    }
    escapes = !llvm::StringRef(fileReal).startswith(dirReal.str().str() + "/");
  }
  if (escapes) {
    error = "has external data at '" + location +
            "', outside the model's directory (only files beside the model are read)";
    return false;
  }
  int fd = ::open(fileReal.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat info;
  if (fd < 0 || ::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    error = "has external data in '" + location + "', which " +
            (fd < 0 ? std::string("cannot be opened: ") + std::strerror(errno)
                    : std::string("is not a regular file"));
    if (fd >= 0)
      ::close(fd);
    return false;
  }
  if (length < 0)
    length = static_cast<int64_t>(info.st_size) - offset;
  if (static_cast<size_t>(length) != expected || offset > info.st_size ||
      length > info.st_size - offset) {
    error = "claims " + std::to_string(expected) + " bytes at offset " + std::to_string(offset) +
            " of '" + location + "' (" + std::to_string(info.st_size) + " bytes, length " +
            std::to_string(length) + ")";
    ::close(fd);
    return false;
  }
  bytes.resize(expected);
  size_t done = 0;
  while (done < expected) {
    ssize_t got = ::pread(fd, &bytes[done], expected - done, offset + static_cast<off_t>(done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      error = "has external data in '" + location + "' that cannot be read";
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return true;
}

} // namespace

bool decodeTensor(const onnx::TensorProto &tensor, llvm::StringRef modelDir, HostTensor &out,
                  std::string &error) {
  out = HostTensor();
  out.name = tensor.name();
  int64_t elements = 1;
  for (int64_t dim : tensor.dims()) {
    if (dim < 0) {
      error = "has a negative dimension in " + shapeText(tensor);
      return false;
    }
    if (dim && elements > kMaxElements / dim) {
      error = "claims " + shapeText(tensor) + ", more than the " + std::to_string(kMaxElements) +
              " elements Kiln's generated code indexes";
      return false;
    }
    elements *= dim;
    out.dims.push_back(dim);
  }
  int32_t type = tensor.data_type();
  size_t width;
  switch (type) {
  case onnx::TensorProto::FLOAT: width = 4; break;
  case onnx::TensorProto::INT32: width = 4; break;
  case onnx::TensorProto::INT64: width = 8; break;
  default:
    error = "has data type " + dataTypeName(type) + "; Kiln takes FLOAT tensors (and INT64 or "
            "INT32 for shapes and axes)";
    return false;
  }
  if (tensor.has_segment()) {
    error = "is segmented, which Kiln does not read";
    return false;
  }
  size_t bytesNeeded = static_cast<size_t>(elements) * width;
  std::string external;
  const std::string *raw = nullptr;
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL) {
    if (!readExternal(tensor, modelDir, bytesNeeded, external, error))
      return false;
    raw = &external;
  } else if (tensor.has_raw_data()) {
    raw = &tensor.raw_data();
    if (raw->size() != bytesNeeded) {
      error = "claims " + shapeText(tensor) + " " + dataTypeName(type) + " (" +
              std::to_string(bytesNeeded) + " bytes) but holds " + std::to_string(raw->size()) +
              " bytes";
      return false;
    }
  }
  auto typedCount = [&]() -> int64_t {
    switch (type) {
    case onnx::TensorProto::FLOAT: return tensor.float_data_size();
    case onnx::TensorProto::INT32: return tensor.int32_data_size();
    default: return tensor.int64_data_size();
    }
  };
  if (!raw && typedCount() != elements) {
    error = "claims " + shapeText(tensor) + " (" + std::to_string(elements) +
            " elements) but holds " + std::to_string(typedCount());
    return false;
  }
  // The raw bytes are little-endian, as on every target Kiln runs on.
  out.isFloat = type == onnx::TensorProto::FLOAT;
  if (out.isFloat) {
    out.floats.resize(static_cast<size_t>(elements));
    if (raw)
      std::memcpy(out.floats.data(), raw->data(), bytesNeeded);
    else
      std::copy(tensor.float_data().begin(), tensor.float_data().end(), out.floats.begin());
    return true;
  }
  out.ints.resize(static_cast<size_t>(elements));
  for (int64_t i = 0; i < elements; ++i) {
    if (raw && type == onnx::TensorProto::INT32) {
      int32_t value;
      std::memcpy(&value, raw->data() + 4 * i, 4);
      out.ints[i] = value;
    } else if (raw) {
      std::memcpy(&out.ints[i], raw->data() + 8 * i, 8);
    } else {
      out.ints[i] = type == onnx::TensorProto::INT32 ? tensor.int32_data(static_cast<int>(i))
                                                     : tensor.int64_data(static_cast<int>(i));
    }
  }
  return true;
}

} // namespace kiln::onnximport

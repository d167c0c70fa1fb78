//===- OutputPath.h - kilnc's outputs, by the runtime's rules ---*- C++ -*-===//
//
// Every file kilnc writes (emit's -o, build's product and the header beside
// it) is resolved and written by the same rules as the runtime's writers
// (kiln/runtime/output.h, one implementation): never one of the inputs (by
// device and inode), a regular file replaced by rename through its links,
// and, where streams are allowed (emit), /dev/stdout, a FIFO or a character
// device written in place; directories and other special files are errors.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_OUTPUTPATH_H
#define KILN_DRIVER_OUTPUTPATH_H

#include "kiln/runtime/output.h"

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>

namespace kiln {

/// The message of a failed runtime status, which it frees (the Driver's
/// files that call the runtime share it).
std::string takeStatusMessage(kiln_status_t status);

/// An output path resolved by kiln_output_resolve.
class OutputPath {
public:
  /// Resolves `path`, which may be none of `inputs` (empty entries are
  /// skipped); `filesOnly` refuses streams. Null, with `error` saying why
  /// (the path named), if it may not be written.
  static std::unique_ptr<OutputPath> resolve(llvm::StringRef path,
                                             llvm::ArrayRef<std::string> inputs,
                                             bool filesOnly, std::string &error);
  ~OutputPath() { kiln_output_release(&output_); }
  OutputPath(const OutputPath &) = delete;
  OutputPath &operator=(const OutputPath &) = delete;

  /// Whether it is a regular file (new or existing), replaced by rename.
  bool isFile() const { return output_.kind == KILN_OUTPUT_FILE; }
  /// A file's absolute path without links: where a new file is renamed to.
  llvm::StringRef realPath() const { return output_.path ? output_.path : ""; }
  /// Writes `text` by the rules of its kind; `error` says why not.
  mlir::LogicalResult write(llvm::StringRef text, std::string &error) const;

private:
  OutputPath() = default;
  kiln_output_t output_ = {KILN_OUTPUT_FILE, nullptr, nullptr, -1};
};

} // namespace kiln

#endif // KILN_DRIVER_OUTPUTPATH_H

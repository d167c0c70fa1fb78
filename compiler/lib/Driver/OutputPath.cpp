//===- OutputPath.cpp - kilnc's outputs, by the runtime's rules -----------===//
#include "kiln/Driver/OutputPath.h"

#include <vector>

namespace kiln {

std::string takeStatusMessage(kiln_status_t status) {
  std::string message = kiln_status_message(status);
  kiln_status_free(status);
  return message;
}

namespace {

std::string take(kiln_status_t status) { return takeStatusMessage(status); }

} // namespace

std::unique_ptr<OutputPath> OutputPath::resolve(llvm::StringRef path,
                                                llvm::ArrayRef<std::string> inputs,
                                                bool filesOnly, std::string &error) {
  std::vector<const char *> names;
  for (const std::string &input : inputs)
    names.push_back(input.c_str());
  std::unique_ptr<OutputPath> output(new OutputPath());
  if (kiln_status_t status =
          kiln_output_resolve(path.str().c_str(), filesOnly ? KILN_OUTPUT_REGULAR_ONLY : 0,
                              names.data(), names.size(), &output->output_)) {
    error = take(status);
    return nullptr;
  }
  return output;
}

mlir::LogicalResult OutputPath::write(llvm::StringRef text, std::string &error) const {
  if (kiln_status_t status = kiln_output_write(&output_, text.data(), text.size())) {
    error = take(status);
    return mlir::failure();
  }
  return mlir::success();
}

} // namespace kiln

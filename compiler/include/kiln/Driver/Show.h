//===- Show.h - what `kilnc show` prints ------------------------*- C++ -*-===//
#ifndef KILN_DRIVER_SHOW_H
#define KILN_DRIVER_SHOW_H

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace kiln {

/// Lists the safetensors checkpoint at `path`: a line with the counts, then
/// one aligned row per tensor (name, shape, dtype, min, mean and max over its
/// finite values, and how many are NaN, +Inf or -Inf), then the metadata.
/// Names and metadata have every control character escaped (newline and tab
/// included, so each tensor stays one line). The whole listing is built
/// first: on failure nothing is printed and `error` (one line) names the file.
mlir::LogicalResult showCheckpoint(llvm::StringRef path, llvm::raw_ostream &os,
                                   std::string &error);

} // namespace kiln

#endif // KILN_DRIVER_SHOW_H

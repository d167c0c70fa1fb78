//===- Plot.h - `kilnc plot`: metrics CSVs to one SVG -----------*- C++ -*-===//
#ifndef KILN_DRIVER_PLOT_H
#define KILN_DRIVER_PLOT_H

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace kiln {

struct PlotOptions {
  std::vector<std::string> inputs; // metrics CSVs (kiln/runtime/metrics.h), one run each
  std::vector<std::string> labels; // one per input, or none: the inputs' file stems
  std::string output;              // the SVG: a file replaced whole, or a stream
  std::string title;               // empty: the runtime's default ("Training")
};

/// The label of the run read from `path` when none is given: its file stem
/// ("runs/adam.csv" -> "adam").
std::string defaultRunLabel(llvm::StringRef path);

/// Reads every input and writes one SVG of their curves (kiln/runtime/plot.h)
/// to the output, by output.h's rules (never over an input). On failure
/// `error` (one line) names the file at fault and nothing is written.
mlir::LogicalResult plotMetrics(const PlotOptions &options, std::string &error);

} // namespace kiln

#endif // KILN_DRIVER_PLOT_H

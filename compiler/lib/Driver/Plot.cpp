//===- Plot.cpp - `kilnc plot`: metrics CSVs to one SVG -------------------===//
//
// The reading and drawing are the runtime's (metrics.h, plot.h); here the
// runs get their labels and the SVG goes through OutputPath, which resolves
// -o against the CSVs so that no plot replaces the metrics it is drawn from.
//
//===----------------------------------------------------------------------===//
#include "kiln/Driver/Plot.h"

#include "kiln/Driver/OutputPath.h"
#include "kiln/runtime/plot.h"

#include "llvm/Support/Path.h"

#include <memory>

namespace kiln {

namespace {

std::string take(kiln_status_t status) { return takeStatusMessage(status); }

/// Rows read by kiln_metrics_read_csv, freed with it.
struct RowsDeleter {
  void operator()(kiln_metrics_row_t *rows) const { kiln_metrics_free(rows); }
};
using Rows = std::unique_ptr<kiln_metrics_row_t, RowsDeleter>;

struct SvgDeleter {
  void operator()(char *svg) const { kiln_plot_svg_free(svg); }
};

} // namespace

std::string defaultRunLabel(llvm::StringRef path) { return llvm::sys::path::stem(path).str(); }

mlir::LogicalResult plotMetrics(const PlotOptions &options, std::string &error) {
  if (!options.labels.empty() && options.labels.size() != options.inputs.size()) {
    error = std::to_string(options.labels.size()) + " --label for " +
            std::to_string(options.inputs.size()) +
            " metrics files: give one label per file, in order, or none";
    return mlir::failure();
  }
  std::vector<Rows> rows;
  std::vector<std::string> labels;
  std::vector<kiln_plot_run_t> runs;
  for (size_t i = 0; i < options.inputs.size(); ++i) {
    kiln_metrics_row_t *read = nullptr;
    size_t count = 0;
    if (kiln_status_t status = kiln_metrics_read_csv(options.inputs[i].c_str(), &read, &count)) {
      error = take(status);
      return mlir::failure();
    }
    rows.emplace_back(read);
    labels.push_back(options.labels.empty() ? defaultRunLabel(options.inputs[i])
                                            : options.labels[i]);
    runs.push_back({nullptr, read, count});
  }
  for (size_t i = 0; i < runs.size(); ++i)
    runs[i].label = labels[i].c_str();

  char *svg = nullptr;
  size_t size = 0;
  if (kiln_status_t status =
          kiln_plot_render_svg(options.title.empty() ? nullptr : options.title.c_str(),
                               runs.data(), runs.size(), &svg, &size)) {
    error = take(status);
    return mlir::failure();
  }
  std::unique_ptr<char, SvgDeleter> owned(svg);
  std::unique_ptr<OutputPath> output =
      OutputPath::resolve(options.output, options.inputs, /*filesOnly=*/false, error);
  if (!output)
    return mlir::failure();
  return output->write(llvm::StringRef(svg, size), error);
}

} // namespace kiln

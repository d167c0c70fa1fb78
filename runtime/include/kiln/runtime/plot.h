/* Kiln runtime: training curves as an SVG file.
 *
 * One standalone SVG 1.1 document (xmlns, width, height and viewBox set, no
 * script, no external reference) with a title and two panels side by side:
 * loss against epoch and accuracy against epoch. Each run has one colour;
 * its training values are solid lines, its validation values dashed. A
 * legend below the panels names every run. Absent values (NaN) and
 * infinities are skipped; a series with a single value is drawn as a
 * marker. Axes are scaled to the values with ticks at round numbers
 * (1, 2 or 5 times a power of ten; whole epochs).
 *
 * So that tests and scripts can find them, every curve is an element of
 * class "curve run-R SERIES" (R the run's index from 0, SERIES one of
 * train-loss, val-loss, train-accuracy, val-accuracy; a polyline, or a
 * circle with class "marker" added), and every legend entry a <text> of
 * class "legend-label run-R" whose text is the run's label. Labels and the
 * title are XML-escaped; control characters are dropped and bytes that are
 * not UTF-8 become U+FFFD, so any label gives a well-formed document.
 *
 * Ownership: the runs are only read; a document from kiln_plot_render_svg
 * belongs to the caller (kiln_plot_svg_free). Thread safety: the functions
 * share no state.
 */
#ifndef KILN_RUNTIME_PLOT_H
#define KILN_RUNTIME_PLOT_H

#include <stddef.h>

#include "kiln/runtime/metrics.h"
#include "kiln/runtime/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One run: a label and its rows (metrics.h), in order of epoch. */
typedef struct kiln_plot_run_t {
  const char *label;
  const kiln_metrics_row_t *rows; /* may be NULL when row_count is 0 */
  size_t row_count;
} kiln_plot_run_t;

/* The document for `count` (>= 1) runs under `title` (NULL: "Training"),
 * as a new NUL-terminated string of `*out_size` bytes. */
kiln_status_t kiln_plot_render_svg(const char *title, const kiln_plot_run_t *runs,
                                   size_t count, char **out_svg, size_t *out_size);

/* Releases a document from kiln_plot_render_svg; NULL is allowed. */
void kiln_plot_svg_free(char *svg);

/* Renders the document and writes it to `path` by the rules of output.h: a
 * regular file atomically (on failure `path` is untouched), a FIFO,
 * character device or /dev/stdout in place. */
kiln_status_t kiln_plot_write_svg(const char *path, const char *title,
                                  const kiln_plot_run_t *runs, size_t count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_PLOT_H */

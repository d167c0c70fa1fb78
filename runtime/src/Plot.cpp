//===- Plot.cpp - Training curves as an SVG file --------------------------===//
//
// The document is built as text: a fixed page (title, two panels, a legend
// growing with the number of runs), axes scaled to the data, one polyline
// per run and series. Coordinates are printed with std::to_chars, which
// ignores the process's locale (a decimal comma would break every number).
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/plot.h"

#include "Support.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

using namespace kiln::runtime;

namespace {

// ---- Page layout, in SVG user units (pixels at 100 %) --------------------
// Two 380 x 260 plot areas side by side leave room on the left of each for
// tick labels and a rotated axis title, and fit a 1000-wide page.
constexpr double kWidth = 1000, kPlotWidth = 380, kPlotHeight = 260;
constexpr double kPlotLeft[2] = {80, 580};
constexpr double kPlotTop = 70;
constexpr double kLegendTop = 400, kLegendRow = 22;
// Matplotlib's "tab10" colours: distinct, and readable on white.
constexpr const char *kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// ---- Text ------------------------------------------------------------------

// One code point decoded from UTF-8 at `p` (before `end`), or -1 for an
// invalid sequence (stray continuation, overlong form, surrogate, beyond
// U+10FFFF); `length` is set to the bytes consumed (1 when invalid).
long decodeUtf8(const unsigned char *p, const unsigned char *end, size_t &length) {
  length = 1;
  if (*p < 0x80)
    return *p;
  int extra = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : -1;
  if (extra < 0 || *p > 0xF4 || end - p <= extra)
    return -1;
  long code = *p & (0x3F >> extra);
  for (int i = 1; i <= extra; ++i) {
    if ((p[i] & 0xC0) != 0x80)
      return -1;
    code = code << 6 | (p[i] & 0x3F);
  }
  static const long smallest[] = {0, 0x80, 0x800, 0x10000};
  if (code < smallest[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
    return -1;
  length = extra + 1;
  return code;
}

// `text` as XML character data or attribute value: &, <, >, " and '
// escaped; control characters (C0, DEL, C1: XML 1.0 forbids most of them
// and none is meant in a label) dropped; U+FFFE, U+FFFF (not XML
// characters) and invalid UTF-8 (which no XML parser accepts) as U+FFFD.
std::string xmlText(const char *text) {
  std::string out;
  const auto *p = reinterpret_cast<const unsigned char *>(text);
  const unsigned char *end = p + std::strlen(text);
  while (p < end) {
    size_t length = 0;
    long code = decodeUtf8(p, end, length);
    if (code < 0 || code == 0xFFFE || code == 0xFFFF)
      out += "\xEF\xBF\xBD";
    else if (code < 0x20 || (code >= 0x7F && code <= 0x9F))
      ; // dropped
    else if (code == '&')
      out += "&amp;";
    else if (code == '<')
      out += "&lt;";
    else if (code == '>')
      out += "&gt;";
    else if (code == '"')
      out += "&quot;";
    else if (code == '\'')
      out += "&apos;";
    else
      out.append(reinterpret_cast<const char *>(p), length);
    p += length;
  }
  return out;
}

// A coordinate: two decimals are a hundredth of a pixel.
std::string coord(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 2);
  return std::string(buffer, result.ptr);
}

// ---- Axes ------------------------------------------------------------------

// A scale from [lo, hi] onto the page, with ticks every `step`.
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  int decimals = 1; // of the tick labels
};

// 1, 2, 5 or 10 times a power of ten near `x` > 0: rounded to the nearest
// (`round`) or the smallest not below it (Heckbert, "Nice numbers for graph
// labels", Graphics Gems, 1990).
double niceNumber(double x, bool round) {
  double power = std::pow(10.0, std::floor(std::log10(x)));
  double f = x / power;
  double nice = round ? (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10)
                      : (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10);
  return nice * power;
}

// An axis over the finite values from `min` to `max` (min > max: none) with
// about five ticks; `whole` keeps ticks on integers (epochs), and `[floor,
// ceiling]` bounds it (accuracy: [0, 1]).
Axis niceAxis(double min, double max, bool whole, double floor = -HUGE_VAL,
              double ceiling = HUGE_VAL) {
  if (min > max)
    min = 0, max = 1;
  if (max - min <= 1e-12 * std::max(1.0, std::fabs(max))) {
    // One value: an axis around it, so that its marker is not on the frame.
    double pad = whole ? 1 : std::max(0.5 * std::fabs(max), 0.05);
    min -= pad, max += pad;
  }
  Axis axis;
  axis.step = niceNumber(niceNumber(max - min, false) / 4, true);
  if (whole)
    axis.step = std::max(1.0, std::round(axis.step));
  // The tolerance keeps a value on a tick (0.6 / 0.1 = 5.9999999999999991)
  // from adding a step below or above it.
  axis.lo = std::floor(min / axis.step + 1e-9) * axis.step;
  axis.hi = std::ceil(max / axis.step - 1e-9) * axis.step;
  // The bounds apply when the values lie within them; a caller's
  // accuracies in percent get an axis that shows them rather than none.
  if (std::max(floor, axis.lo) < std::min(ceiling, axis.hi))
    axis.lo = std::max(floor, axis.lo), axis.hi = std::min(ceiling, axis.hi);
  axis.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(axis.step) + 1e-9)));
  return axis;
}

// A tick label: `decimals` digits after the point, or %g-style digits where
// fixed notation would be unreadable (tiny steps, huge values).
std::string tickLabel(double value, const Axis &axis) {
  if (std::fabs(value) < axis.step * 1e-9)
    value = 0; // not "-0.0" from rounding
  char buffer[400];
  bool fixed = axis.decimals <= 8 && std::fabs(value) < 1e7;
  auto result = fixed ? std::to_chars(buffer, buffer + sizeof buffer, value,
                                      std::chars_format::fixed, axis.decimals)
                      : std::to_chars(buffer, buffer + sizeof buffer, value,
                                      std::chars_format::general, 6);
  return std::string(buffer, result.ptr);
}

// The ticks of `axis`, from its first multiple of step to hi.
std::vector<double> ticks(const Axis &axis) {
  std::vector<double> values;
  double first = std::ceil(axis.lo / axis.step - 1e-9);
  for (double i = first; i * axis.step <= axis.hi + axis.step * 1e-9 && values.size() < 50; ++i)
    values.push_back(i * axis.step);
  return values;
}

// ---- Series ----------------------------------------------------------------

struct Series {
  const char *name; // the class: "train-loss", ...
  double kiln_metrics_row_t::*field;
  bool dashed; // validation
};
constexpr Series kLossSeries[] = {{"train-loss", &kiln_metrics_row_t::train_loss, false},
                                  {"val-loss", &kiln_metrics_row_t::val_loss, true}};
constexpr Series kAccuracySeries[] = {
    {"train-accuracy", &kiln_metrics_row_t::train_accuracy, false},
    {"val-accuracy", &kiln_metrics_row_t::val_accuracy, true}};

// The smallest and largest finite value of `series` over all runs (min >
// max when there is none).
void valueRange(const kiln_plot_run_t *runs, size_t count, const Series (&series)[2],
                double &min, double &max) {
  min = HUGE_VAL, max = -HUGE_VAL;
  for (size_t r = 0; r < count; ++r)
    for (size_t i = 0; i < runs[r].row_count; ++i)
      for (const Series &s : series) {
        double value = runs[r].rows[i].*(s.field);
        if (std::isfinite(value))
          min = std::min(min, value), max = std::max(max, value);
      }
}

void epochRange(const kiln_plot_run_t *runs, size_t count, double &min, double &max) {
  min = HUGE_VAL, max = -HUGE_VAL;
  for (size_t r = 0; r < count; ++r)
    for (size_t i = 0; i < runs[r].row_count; ++i) {
      min = std::min(min, double(runs[r].rows[i].epoch));
      max = std::max(max, double(runs[r].rows[i].epoch));
    }
}

// One panel: its place on the page and its two axes.
struct Panel {
  double left;
  Axis x, y;
  double px(double epoch) const { return left + (epoch - x.lo) / (x.hi - x.lo) * kPlotWidth; }
  double py(double value) const {
    return kPlotTop + kPlotHeight - (value - y.lo) / (y.hi - y.lo) * kPlotHeight;
  }
};

class SvgWriter {
public:
  SvgWriter(const char *title, const kiln_plot_run_t *runs, size_t count)
      : title_(xmlText(title ? title : "Training")), runs_(runs), count_(count) {}

  std::string render() {
    double height = kLegendTop + kLegendRow * double(count_ + 1) + 10;
    out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
            coord(kWidth) + "\" height=\"" + coord(height) + "\" viewBox=\"0 0 " +
            coord(kWidth) + " " + coord(height) +
            "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    out_ += "<title>" + title_ + "</title>\n";
    out_ += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    out_ += "<text class=\"title\" x=\"" + coord(kWidth / 2) +
            "\" y=\"30\" text-anchor=\"middle\" font-size=\"18\">" + title_ + "</text>\n";
    double emin, emax, lmin, lmax, amin, amax;
    epochRange(runs_, count_, emin, emax);
    valueRange(runs_, count_, kLossSeries, lmin, lmax);
    valueRange(runs_, count_, kAccuracySeries, amin, amax);
    Axis epochs = niceAxis(emin, emax, /*whole=*/true);
    panel("loss", "Loss", "loss", {kPlotLeft[0], epochs, niceAxis(lmin, lmax, false)},
          kLossSeries);
    panel("accuracy", "Accuracy", "accuracy",
          {kPlotLeft[1], epochs, niceAxis(amin, amax, false, 0, 1)}, kAccuracySeries);
    legend();
    out_ += "</svg>\n";
    return std::move(out_);
  }

private:
  std::string title_;
  const kiln_plot_run_t *runs_;
  size_t count_;
  std::string out_;

  void line(double x1, double y1, double x2, double y2, const std::string &attributes) {
    out_ += "<line x1=\"" + coord(x1) + "\" y1=\"" + coord(y1) + "\" x2=\"" + coord(x2) +
            "\" y2=\"" + coord(y2) + "\" " + attributes + "/>\n";
  }
  void text(double x, double y, const std::string &attributes, const std::string &body) {
    out_ += "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" " + attributes + ">" + body +
            "</text>\n";
  }

  void panel(const char *name, const char *heading, const char *yTitle, const Panel &p,
             const Series (&series)[2]) {
    out_ += std::string("<g class=\"panel ") + name + "\">\n";
    double bottom = kPlotTop + kPlotHeight, right = p.left + kPlotWidth;
    text(p.left + kPlotWidth / 2, kPlotTop - 12,
         "class=\"panel-title\" text-anchor=\"middle\" font-size=\"14\"", heading);
    for (double t : ticks(p.x)) {
      line(p.px(t), kPlotTop, p.px(t), bottom, "class=\"grid\" stroke=\"#e5e5e5\"");
      text(p.px(t), bottom + 18, "class=\"tick x\" text-anchor=\"middle\"", tickLabel(t, p.x));
    }
    for (double t : ticks(p.y)) {
      line(p.left, p.py(t), right, p.py(t), "class=\"grid\" stroke=\"#e5e5e5\"");
      text(p.left - 6, p.py(t) + 4, "class=\"tick y\" text-anchor=\"end\"", tickLabel(t, p.y));
    }
    out_ += "<rect class=\"frame\" x=\"" + coord(p.left) + "\" y=\"" + coord(kPlotTop) +
            "\" width=\"" + coord(kPlotWidth) + "\" height=\"" + coord(kPlotHeight) +
            "\" fill=\"none\" stroke=\"#333333\"/>\n";
    text(p.left + kPlotWidth / 2, bottom + 40, "class=\"axis-title x\" text-anchor=\"middle\"",
         "epoch");
    double yTitleX = p.left - 55, yTitleY = kPlotTop + kPlotHeight / 2;
    text(yTitleX, yTitleY,
         "class=\"axis-title y\" text-anchor=\"middle\" transform=\"rotate(-90 " +
             coord(yTitleX) + " " + coord(yTitleY) + ")\"",
         yTitle);
    for (size_t r = 0; r < count_; ++r)
      for (const Series &s : series)
        curve(p, r, s);
    out_ += "</g>\n";
  }

  static std::string stroke(size_t run, bool dashed) {
    return std::string("stroke=\"") + kPalette[run % std::size(kPalette)] +
           "\" stroke-width=\"2\"" + (dashed ? " stroke-dasharray=\"6 4\"" : "");
  }

  // Run `r`'s values of `s`: a polyline through the finite ones, a marker
  // if there is one, nothing if none.
  void curve(const Panel &p, size_t r, const Series &s) {
    std::vector<std::pair<double, double>> points;
    for (size_t i = 0; i < runs_[r].row_count; ++i) {
      const kiln_metrics_row_t &row = runs_[r].rows[i];
      if (std::isfinite(row.*(s.field)))
        points.emplace_back(p.px(double(row.epoch)), p.py(row.*(s.field)));
    }
    if (points.empty())
      return;
    std::string classes =
        "curve run-" + std::to_string(r) + " " + s.name;
    std::string id = "curve-" + std::to_string(r) + "-" + s.name;
    if (points.size() == 1) {
      out_ += "<circle class=\"" + classes + " marker\" id=\"" + id + "\" cx=\"" +
              coord(points[0].first) + "\" cy=\"" + coord(points[0].second) +
              "\" r=\"4\" fill=\"" + kPalette[r % std::size(kPalette)] + "\"" +
              (s.dashed ? " fill-opacity=\"0.4\" " + stroke(r, false) : "") + "/>\n";
      return;
    }
    out_ += "<polyline class=\"" + classes + "\" id=\"" + id + "\" fill=\"none\" " +
            stroke(r, s.dashed) + " points=\"";
    for (size_t i = 0; i < points.size(); ++i)
      out_ += (i ? " " : "") + coord(points[i].first) + "," + coord(points[i].second);
    out_ += "\"/>\n";
  }

  // The key to the line styles, then one entry per run.
  void legend() {
    out_ += "<g class=\"legend\">\n";
    double x = kPlotLeft[0], y = kLegendTop;
    line(x, y - 4, x + 30, y - 4, "stroke=\"#333333\" stroke-width=\"2\"");
    text(x + 36, y, "class=\"legend-key\"", "train");
    line(x + 100, y - 4, x + 130, y - 4,
         "stroke=\"#333333\" stroke-width=\"2\" stroke-dasharray=\"6 4\"");
    text(x + 136, y, "class=\"legend-key\"", "validation");
    for (size_t r = 0; r < count_; ++r) {
      y += kLegendRow;
      std::string run = "run-" + std::to_string(r);
      out_ += "<g class=\"legend-entry " + run + "\">\n";
      line(x, y - 4, x + 30, y - 4, stroke(r, false));
      text(x + 36, y, "class=\"legend-label " + run + "\"", xmlText(runs_[r].label));
      out_ += "</g>\n";
    }
    out_ += "</g>\n";
  }
};

// What the renderer needs of its arguments; empty if they are fine.
std::string checkRuns(const kiln_plot_run_t *runs, size_t count) {
  if (!runs || count == 0)
    return "no runs to plot";
  for (size_t r = 0; r < count; ++r) {
    if (!runs[r].label)
      return "run " + std::to_string(r) + " has no label";
    if (runs[r].row_count > 0 && !runs[r].rows)
      return "run " + std::to_string(r) + " has rows but no data";
  }
  return {};
}

kiln_status_t render(const char *title, const kiln_plot_run_t *runs, size_t count,
                     std::string &svg) {
  std::string problem = checkRuns(runs, count);
  if (!problem.empty())
    return makeStatus(KILN_INVALID_ARGUMENT, "kiln_plot: " + problem);
  svg = SvgWriter(title, runs, count).render();
  return nullptr;
}

} // namespace

extern "C" {

kiln_status_t kiln_plot_render_svg(const char *title, const kiln_plot_run_t *runs,
                                   size_t count, char **out_svg, size_t *out_size) {
  if (out_svg)
    *out_svg = nullptr;
  if (out_size)
    *out_size = 0;
  return guard([&]() -> kiln_status_t {
    if (!out_svg || !out_size)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_plot_render_svg: NULL argument");
    std::string svg;
    KILN_RETURN_IF_ERROR(render(title, runs, count, svg));
    // malloc, so that kiln_plot_svg_free is free() and C callers need no C++.
    char *copy = static_cast<char *>(std::malloc(svg.size() + 1));
    if (!copy)
      return outOfMemory();
    std::memcpy(copy, svg.c_str(), svg.size() + 1);
    *out_svg = copy;
    *out_size = svg.size();
    return nullptr;
  });
}

void kiln_plot_svg_free(char *svg) { std::free(svg); }

kiln_status_t kiln_plot_write_svg(const char *path, const char *title,
                                  const kiln_plot_run_t *runs, size_t count) {
  return guard([&]() -> kiln_status_t {
    if (!path)
      return makeStatus(KILN_INVALID_ARGUMENT, "kiln_plot_write_svg: NULL argument");
    std::string svg;
    KILN_RETURN_IF_ERROR(render(title, runs, count, svg));
    return writeFileAtomically(path, {{svg.data(), svg.size()}});
  });
}

} // extern "C"

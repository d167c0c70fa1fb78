//===- PlotTest.cpp - Training curves as SVG ------------------------------===//
//
// What the document holds, read as text; test/Tools/kilnc-plot-chromium.test
// has a browser lay it out.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/plot.h"

#include <cmath>
#include <regex>

using namespace kiln::test;

namespace {

kiln_metrics_row_t row(int64_t epoch, double trainLoss, double trainAccuracy, double valLoss,
                       double valAccuracy) {
  kiln_metrics_row_t r = kiln_metrics_row_empty();
  r.epoch = epoch;
  r.train_loss = trainLoss;
  r.train_accuracy = trainAccuracy;
  r.val_loss = valLoss;
  r.val_accuracy = valAccuracy;
  return r;
}

// The element (from '<' to '>') of class exactly `classes`; empty if none.
std::string element(const std::string &svg, const std::string &classes) {
  size_t at = svg.find("class=\"" + classes + "\"");
  if (at == std::string::npos)
    return {};
  size_t begin = svg.rfind('<', at), end = svg.find('>', at);
  return svg.substr(begin, end - begin + 1);
}

// The number of "x,y" pairs in a polyline's points.
size_t pointCount(const std::string &polyline) {
  std::smatch match;
  if (!std::regex_search(polyline, match, std::regex("points=\"([^\"]*)\"")))
    return 0;
  std::string points = match[1];
  return size_t(std::count(points.begin(), points.end(), ',')) ;
}

size_t occurrences(const std::string &text, const std::string &part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

class PlotTest : public TempDirTest {
protected:
  std::string render(const std::vector<kiln_plot_run_t> &runs, const char *title = "T") {
    char *svg = nullptr;
    size_t size = 0;
    Result r = take(kiln_plot_render_svg(title, runs.data(), runs.size(), &svg, &size));
    EXPECT_EQ(r.code, KILN_OK) << r.message;
    std::string text = svg ? std::string(svg, size) : std::string();
    kiln_plot_svg_free(svg);
    return text;
  }
  std::vector<kiln_metrics_row_t> a_ = {row(1, 0.9, 0.70, 0.95, 0.68),
                                        row(2, 0.6, 0.80, 0.70, 0.78),
                                        row(3, 0.4, 0.86, 0.55, 0.83)};
  std::vector<kiln_metrics_row_t> b_ = {row(1, 1.2, 0.60, NAN, NAN),
                                        row(2, 0.8, 0.75, NAN, NAN)};
};

TEST_F(PlotTest, IsAStandaloneSvgDocument) {
  std::string svg = render({{"a", a_.data(), a_.size()}});
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
                      "xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"1000.00\" "
                      "height=\"454.00\" viewBox=\"0 0 1000.00 454.00\"",
                      0),
            0u)
      << svg.substr(0, 300);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_NE(svg.find("<title>T</title>"), std::string::npos);
  EXPECT_NE(svg.find(">T</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST_F(PlotTest, EveryRunHasAColourFourCurvesAndALegendEntry) {
  std::string svg = render({{"first", a_.data(), a_.size()}, {"second", a_.data(), a_.size()}});
  for (std::string run : {"run-0", "run-1"})
    for (std::string series : {"train-loss", "val-loss", "train-accuracy", "val-accuracy"}) {
      std::string curve = element(svg, "curve " + run + " " + series);
      ASSERT_FALSE(curve.empty()) << run << " " << series;
      EXPECT_EQ(curve.rfind("<polyline", 0), 0u) << curve;
      EXPECT_EQ(pointCount(curve), 3u) << curve;
      // Validation dashed, training solid.
      EXPECT_EQ(curve.find("stroke-dasharray") != std::string::npos,
                series.rfind("val-", 0) == 0)
          << curve;
    }
  EXPECT_NE(element(svg, "curve run-0 train-loss").find("#1f77b4"), std::string::npos);
  EXPECT_NE(element(svg, "curve run-1 train-loss").find("#ff7f0e"), std::string::npos);
  EXPECT_NE(svg.find("class=\"legend-label run-0\">first</text>"), std::string::npos);
  EXPECT_NE(svg.find("class=\"legend-label run-1\">second</text>"), std::string::npos);
}

TEST_F(PlotTest, AbsentValuesAreSkipped) {
  std::vector<kiln_metrics_row_t> gap = a_;
  gap[1].train_loss = NAN;
  gap[2].val_accuracy = INFINITY;
  std::string svg = render({{"gap", gap.data(), gap.size()}, {"noval", b_.data(), b_.size()}});
  EXPECT_EQ(pointCount(element(svg, "curve run-0 train-loss")), 2u);
  EXPECT_EQ(pointCount(element(svg, "curve run-0 val-accuracy")), 2u);
  // A run without validation has no validation curves at all.
  EXPECT_EQ(svg.find("run-1 val-"), std::string::npos);
  EXPECT_FALSE(element(svg, "curve run-1 train-loss").empty());
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST_F(PlotTest, OneEpochIsAMarker) {
  std::vector<kiln_metrics_row_t> one = {row(1, 0.5, 0.9, 0.6, 0.85)};
  std::string svg = render({{"one", one.data(), one.size()}});
  std::string marker = element(svg, "curve run-0 train-loss marker");
  EXPECT_EQ(marker.rfind("<circle", 0), 0u) << marker;
  EXPECT_NE(marker.find("r=\"4\""), std::string::npos) << marker;
  EXPECT_FALSE(element(svg, "curve run-0 val-accuracy marker").empty());
  EXPECT_EQ(svg.find("<polyline"), std::string::npos);
  // Epoch 1 is inside the axis, which has ticks on whole epochs.
  EXPECT_NE(svg.find("class=\"tick x\" text-anchor=\"middle\">0</text>"), std::string::npos);
  EXPECT_NE(svg.find("class=\"tick x\" text-anchor=\"middle\">2</text>"), std::string::npos);
}

TEST_F(PlotTest, TicksAreRoundNumbers) {
  // Loss from 0.4 to 1.2 in the two runs: ticks every 0.2 from 0.4 to 1.2;
  // accuracy 0.6 to 0.86: every 0.1, from 0.6 to 0.9; epochs 1 to 3: whole.
  std::string svg = render({{"a", a_.data(), a_.size()}, {"b", b_.data(), b_.size()}});
  std::regex tick("class=\"tick (x|y)\" text-anchor=\"[a-z]+\">([^<]*)</text>");
  std::vector<std::string> x, y;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tick); it != std::sregex_iterator();
       ++it)
    ((*it)[1] == "x" ? x : y).push_back((*it)[2]);
  EXPECT_EQ(x, (std::vector<std::string>{"1", "2", "3", "1", "2", "3"}));
  EXPECT_EQ(y, (std::vector<std::string>{"0.4", "0.6", "0.8", "1.0", "1.2", "0.6", "0.7", "0.8",
                                         "0.9"}));
}

TEST_F(PlotTest, LabelsAndTitleAreEscaped) {
  std::string label = "<a & \"b\" 'c'>\x1b[31m\x7f\xc2\x9b\tend \xff\xc0\x80 \xe2\x82\xac";
  std::string svg = render({{label.c_str(), a_.data(), a_.size()}}, "x</title><script>");
  EXPECT_NE(svg.find(">&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;[31mend \xEF\xBF\xBD"
                     "\xEF\xBF\xBD\xEF\xBF\xBD \xe2\x82\xac</text>"),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("<title>x&lt;/title&gt;&lt;script&gt;</title>"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find('\x1b'), std::string::npos);
}

TEST_F(PlotTest, DefaultTitleAndEmptyRun) {
  std::string svg = render({{"empty", nullptr, 0}}, nullptr);
  EXPECT_NE(svg.find("<title>Training</title>"), std::string::npos);
  EXPECT_EQ(occurrences(svg, "class=\"curve"), 0u);
  EXPECT_NE(svg.find(">empty</text>"), std::string::npos);
}

TEST_F(PlotTest, LegendGrowsWithTheRuns) {
  std::vector<kiln_plot_run_t> runs(12, {"r", a_.data(), a_.size()});
  std::string svg = render(runs);
  EXPECT_NE(svg.find("height=\"696.00\""), std::string::npos);
  EXPECT_EQ(occurrences(svg, "class=\"legend-label"), 12u);
  // The palette cycles after ten runs.
  EXPECT_NE(element(svg, "curve run-10 train-loss").find("#1f77b4"), std::string::npos);
}

TEST_F(PlotTest, RejectsMissingRunsAndLabels) {
  char *svg = nullptr;
  size_t size = 0;
  Result r = take(kiln_plot_render_svg("t", nullptr, 0, &svg, &size));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_EQ(r.message, "kiln_plot: no runs to plot");
  kiln_plot_run_t unlabelled = {nullptr, a_.data(), a_.size()};
  r = take(kiln_plot_render_svg("t", &unlabelled, 1, &svg, &size));
  EXPECT_EQ(r.message, "kiln_plot: run 0 has no label");
  kiln_plot_run_t noData = {"x", nullptr, 2};
  r = take(kiln_plot_write_svg(path("p.svg").c_str(), "t", &noData, 1));
  EXPECT_EQ(r.message, "kiln_plot: run 0 has rows but no data");
  EXPECT_EQ(svg, nullptr);
  EXPECT_TRUE(listing().empty());
}

TEST_F(PlotTest, WritesTheRenderedDocumentWhole) {
  std::vector<kiln_plot_run_t> runs = {{"a", a_.data(), a_.size()}};
  writeBytes(path("p.svg"), std::string(100000, 'x'));
  KILN_ASSERT_OK(kiln_plot_write_svg(path("p.svg").c_str(), "T", runs.data(), runs.size()));
  EXPECT_EQ(readBytes(path("p.svg")), render(runs));
  EXPECT_EQ(listing(), std::vector<std::string>{"p.svg"});
  Result r = take(kiln_plot_write_svg(path("missing/p.svg").c_str(), "T", runs.data(), 1));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
}

} // namespace

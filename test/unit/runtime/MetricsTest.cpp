//===- MetricsTest.cpp - Training metrics CSV reader and writer -----------===//
#include "TestUtil.h"

#include "kiln/runtime/metrics.h"

#include <clocale>
#include <cmath>
#include <cstring>

using namespace kiln::test;

namespace {

const std::string kHeader = KILN_METRICS_CSV_HEADER "\n";

kiln_metrics_row_t row(int64_t epoch, double trainLoss, double trainAccuracy, double valLoss,
                       double valAccuracy) {
  kiln_metrics_row_t r = kiln_metrics_row_empty();
  r.epoch = epoch;
  r.train_loss = trainLoss;
  r.train_accuracy = trainAccuracy;
  r.val_loss = valLoss;
  r.val_accuracy = valAccuracy;
  r.seconds = 12.5;
  r.step_seconds = 11.25;
  r.eval_seconds = 1.25;
  r.samples_per_second = 4800;
  return r;
}

// Same values, NaN equal to NaN (absent), bit for bit otherwise.
void expectSameRow(const kiln_metrics_row_t &a, const kiln_metrics_row_t &b) {
  EXPECT_EQ(a.epoch, b.epoch);
  const double *x = &a.train_loss, *y = &b.train_loss;
  for (int i = 0; i < 8; ++i) {
    if (std::isnan(x[i]))
      EXPECT_TRUE(std::isnan(y[i])) << "column " << i + 1 << " of epoch " << a.epoch;
    else
      EXPECT_EQ(x[i], y[i]) << "column " << i + 1 << " of epoch " << a.epoch;
  }
}

class MetricsTest : public TempDirTest {
protected:
  void TearDown() override {
    kiln_metrics_free(rows_);
    TempDirTest::TearDown();
  }
  void read(const std::string &text) {
    writeBytes(path("m.csv"), text);
    KILN_ASSERT_OK(kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_));
  }
  // The file holding `text` is refused with a message that starts with
  // "PATH:LINE: " and holds `part`.
  void expectRejected(const std::string &text, int line, const std::string &part) {
    writeBytes(path("m.csv"), text);
    Result r = take(kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_));
    EXPECT_EQ(r.code, KILN_DATA_LOSS) << kiln_status_code_name(r.code) << ": " << r.message;
    EXPECT_EQ(rows_, nullptr);
    EXPECT_EQ(count_, 0u);
    std::string where = path("m.csv") + ":" + std::to_string(line) + ": ";
    EXPECT_EQ(r.message.rfind(where, 0), 0u) << "'" << where << "' does not start: " << r.message;
    EXPECT_NE(r.message.find(part), std::string::npos)
        << "'" << part << "' not in: " << r.message;
  }
  kiln_metrics_row_t *rows_ = nullptr;
  size_t count_ = 0;
};

TEST_F(MetricsTest, RoundTripKeepsEveryValueExactlyToNineDigits) {
  // Values with 9 significant digits or fewer come back bit for bit.
  std::vector<kiln_metrics_row_t> rows = {row(1, 0.512345679, 0.8125, 0.45, 0.84),
                                          row(2, 0.1, 0.875, 1e-9, 1),
                                          row(10, 123456789, 0, 3.5e20, 0.5)};
  rows[2].samples_per_second = INFINITY;
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("m.csv").c_str(), rows.data(), rows.size()));
  KILN_ASSERT_OK(kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_));
  ASSERT_EQ(count_, rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    expectSameRow(rows[i], rows_[i]);
}

TEST_F(MetricsTest, RoundTripKeepsAFloatsValue) {
  // A float loss (the training step's) widened to double comes back as the
  // same float: 9 significant digits round-trip any float.
  std::vector<float> losses = {0.1f, 2.30258512f, 1e-7f, 3.40282347e38f, 0.693147182f};
  std::vector<kiln_metrics_row_t> rows;
  for (size_t i = 0; i < losses.size(); ++i)
    rows.push_back(row(int64_t(i), losses[i], 0.5, NAN, NAN));
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("m.csv").c_str(), rows.data(), rows.size()));
  KILN_ASSERT_OK(kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_));
  ASSERT_EQ(count_, rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(float(rows_[i].train_loss), losses[i]) << i;
}

TEST_F(MetricsTest, WritesTheHeaderAndNineSignificantDigits) {
  kiln_metrics_row_t r = row(3, 1.0 / 3, 0.25, NAN, NAN);
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("m.csv").c_str(), &r, 1));
  EXPECT_EQ(readBytes(path("m.csv")),
            kHeader + "3,0.333333333,0.25,,,12.5,11.25,1.25,4800\n");
}

TEST_F(MetricsTest, AbsentValuesAreEmptyFieldsBothWays) {
  kiln_metrics_row_t r = kiln_metrics_row_empty();
  r.epoch = 1;
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("m.csv").c_str(), &r, 1));
  EXPECT_EQ(readBytes(path("m.csv")), kHeader + "1,,,,,,,,\n");
  read(kHeader + "1,,,,,,,,\n");
  ASSERT_EQ(count_, 1u);
  expectSameRow(r, rows_[0]);
}

TEST_F(MetricsTest, NumbersIgnoreTheProcessLocale) {
  // A locale with a decimal comma (where the system has one) changes
  // neither what is written nor what is read.
  const char *old = std::setlocale(LC_NUMERIC, nullptr);
  std::string saved = old ? old : "C";
  bool comma = std::setlocale(LC_NUMERIC, "de_DE.UTF-8") != nullptr;
  kiln_metrics_row_t r = row(1, 0.5, 0.75, 0.25, 0.125);
  kiln_status_t written = kiln_metrics_write_csv(path("m.csv").c_str(), &r, 1);
  kiln_status_t readBack = kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_);
  std::setlocale(LC_NUMERIC, saved.c_str());
  KILN_ASSERT_OK(written);
  KILN_ASSERT_OK(readBack);
  EXPECT_EQ(readBytes(path("m.csv")), kHeader + "1,0.5,0.75,0.25,0.125,12.5,11.25,1.25,4800\n");
  ASSERT_EQ(count_, 1u);
  expectSameRow(r, rows_[0]);
  if (!comma)
    GTEST_LOG_(INFO) << "no de_DE.UTF-8 locale here: checked in the C locale only";
}

TEST_F(MetricsTest, HeaderOnlyIsZeroRows) {
  read(kHeader);
  EXPECT_EQ(count_, 0u);
  EXPECT_EQ(rows_, nullptr);
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("empty.csv").c_str(), nullptr, 0));
  EXPECT_EQ(readBytes(path("empty.csv")), kHeader);
}

TEST_F(MetricsTest, AcceptsCrLfLinesAndInfinities) {
  // A file saved by a spreadsheet on Windows; a diverged loss is inf.
  read(std::string(KILN_METRICS_CSV_HEADER) + "\r\n0,inf,0.1,-inf,,1,1,0,5e3\r\n");
  ASSERT_EQ(count_, 1u);
  EXPECT_EQ(rows_[0].epoch, 0);
  EXPECT_EQ(rows_[0].train_loss, INFINITY);
  EXPECT_EQ(rows_[0].val_loss, -INFINITY);
  EXPECT_TRUE(std::isnan(rows_[0].val_accuracy));
  EXPECT_EQ(rows_[0].samples_per_second, 5000);
}

TEST_F(MetricsTest, RejectsEmptyFile) { expectRejected("", 1, "empty file"); }

TEST_F(MetricsTest, RejectsWrongHeader) {
  // Columns in another order are another file, not ours.
  expectRejected("epoch,train_accuracy,train_loss,val_loss,val_accuracy,seconds,step_seconds,"
                 "eval_seconds,samples_per_second\n",
                 1, "the header line is not 'epoch,train_loss,");
  expectRejected("1,0.5,0.5,,,1,1,0,1\n", 1, "the header line is not");
}

TEST_F(MetricsTest, RejectsWrongColumnCount) {
  expectRejected(kHeader + "1,0.5,0.5,,,1,1,0\n", 2, "8 fields (expected 9");
  expectRejected(kHeader + "1,0.5,0.5,,,1,1,0,1\n2,0.5,0.5,,,1,1,0,1,7\n", 3,
                 "10 fields (expected 9");
  expectRejected(kHeader + "\n", 2, "1 fields (expected 9");
}

TEST_F(MetricsTest, RejectsBadNumbers) {
  expectRejected(kHeader + "1,0.5x,0.5,,,1,1,0,1\n", 2, "train_loss '0.5x' is not a number");
  expectRejected(kHeader + "1,0.5,0.5, 1,,1,1,0,1\n", 2, "val_loss ' 1' is not a number");
  expectRejected(kHeader + "1,nan,0.5,,,1,1,0,1\n", 2, "train_loss 'nan' is not a number");
  expectRejected(kHeader + "1,0.5,0.5,,,1,1,0,1e999\n", 2,
                 "samples_per_second '1e999' is not a number");
  expectRejected(kHeader + "1,0.5,0.5,,,1,1,0,1\n2,0.5,0.5,,,1,0x10,0,1\n", 3,
                 "step_seconds '0x10' is not a number");
}

TEST_F(MetricsTest, RejectsBadEpochs) {
  expectRejected(kHeader + "one,0.5,0.5,,,1,1,0,1\n", 2, "epoch 'one' is not a non-negative");
  expectRejected(kHeader + "-1,0.5,0.5,,,1,1,0,1\n", 2, "epoch '-1' is not a non-negative");
  expectRejected(kHeader + "1.5,0.5,0.5,,,1,1,0,1\n", 2, "epoch '1.5'");
  expectRejected(kHeader + ",0.5,0.5,,,1,1,0,1\n", 2, "epoch ''");
  expectRejected(kHeader + "99999999999999999999,0.5,0.5,,,1,1,0,1\n", 2,
                 "is not a non-negative integer of 64 bits");
}

TEST_F(MetricsTest, RejectsEpochsNotIncreasing) {
  std::string r = ",0.5,0.5,,,1,1,0,1\n";
  expectRejected(kHeader + "1" + r + "2" + r + "2" + r, 4,
                 "epoch 2 is not above the previous row's (2)");
  expectRejected(kHeader + "3" + r + "1" + r, 3, "epoch 1 is not above the previous row's (3)");
}

TEST_F(MetricsTest, RejectsAccuracyOutsideZeroToOne) {
  // Percentages where fractions belong.
  expectRejected(kHeader + "1,0.5,84.5,,,1,1,0,1\n", 2,
                 "train_accuracy 84.5 is not a fraction in [0, 1]");
  expectRejected(kHeader + "1,0.5,0.5,0.5,-0.1,1,1,0,1\n", 2,
                 "val_accuracy -0.1 is not a fraction in [0, 1]");
}

TEST_F(MetricsTest, RejectsTruncatedLastLine) {
  expectRejected(kHeader + "1,0.5,0.5,,,1,1,0,48", 2, "the last line has no newline");
  expectRejected(KILN_METRICS_CSV_HEADER, 1, "the last line has no newline");
}

TEST_F(MetricsTest, EscapesControlCharactersInMessages) {
  expectRejected(kHeader + "1,\x1b[2J,0.5,,,1,1,0,1\n", 2, "train_loss '\\x1b[2J'");
}

TEST_F(MetricsTest, RejectsOversizedFileBeforeReadingIt) {
  writeSparse(path("m.csv"), kHeader, off_t(KILN_METRICS_MAX_FILE_SIZE) + 1);
  Result r = take(kiln_metrics_read_csv(path("m.csv").c_str(), &rows_, &count_));
  EXPECT_EQ(r.code, KILN_DATA_LOSS);
  EXPECT_EQ(r.message, path("m.csv") + ": 16777217 bytes, more than the 16777216 a metrics "
                                       "file may have");
}

TEST_F(MetricsTest, RejectsFifoWithoutBlocking) {
  readFifoWithoutWriter(path("fifo"), [&] {
    Result r = take(kiln_metrics_read_csv(path("fifo").c_str(), &rows_, &count_));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, path("fifo") + ": cannot read: it is a FIFO, not a regular file");
  });
}

TEST_F(MetricsTest, RejectsDirectoriesAndMissingFiles) {
  Result r = take(kiln_metrics_read_csv(dir_.c_str(), &rows_, &count_));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_EQ(r.message, dir_ + ": cannot read: it is a directory, not a regular file");
  r = take(kiln_metrics_read_csv(path("missing.csv").c_str(), &rows_, &count_));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_EQ(r.message.rfind(path("missing.csv") + ": ", 0), 0u) << r.message;
}

TEST_F(MetricsTest, WriterRefusesRowsTheReaderWouldRefuse) {
  std::vector<std::pair<std::vector<kiln_metrics_row_t>, std::string>> cases = {
      {{row(2, 1, 0.5, 1, 0.5), row(2, 1, 0.5, 1, 0.5)},
       "row 1 (epoch 2): the epoch is not above the previous row's (2)"},
      {{row(-1, 1, 0.5, 1, 0.5)}, "row 0 (epoch -1): the epoch is negative"},
      {{row(1, 1, 50, 1, 0.5)}, "row 0 (epoch 1): train_accuracy is not a fraction in [0, 1]"},
  };
  for (const auto &[rows, message] : cases) {
    Result r = take(kiln_metrics_write_csv(path("m.csv").c_str(), rows.data(), rows.size()));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, path("m.csv") + ": " + message);
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(MetricsTest, WriteReplacesExistingFileWhole) {
  writeBytes(path("m.csv"), std::string(5000, 'x'));
  kiln_metrics_row_t r = row(1, 0.5, 0.5, 0.5, 0.5);
  KILN_ASSERT_OK(kiln_metrics_write_csv(path("m.csv").c_str(), &r, 1));
  read(readBytes(path("m.csv")));
  EXPECT_EQ(count_, 1u);
  EXPECT_EQ(listing(), std::vector<std::string>{"m.csv"});
}

TEST_F(MetricsTest, WriteIntoMissingDirectoryFailsAndLeavesNothing) {
  kiln_metrics_row_t r = row(1, 0.5, 0.5, 0.5, 0.5);
  Result result = take(kiln_metrics_write_csv(path("missing/m.csv").c_str(), &r, 1));
  EXPECT_EQ(result.code, KILN_NOT_FOUND);
  EXPECT_TRUE(listing().empty());
}

TEST_F(MetricsTest, NullArgumentsAreInvalid) {
  EXPECT_EQ(take(kiln_metrics_write_csv(nullptr, nullptr, 0)).code, KILN_INVALID_ARGUMENT);
  EXPECT_EQ(take(kiln_metrics_write_csv(path("m.csv").c_str(), nullptr, 1)).code,
            KILN_INVALID_ARGUMENT);
  EXPECT_EQ(take(kiln_metrics_read_csv(nullptr, &rows_, &count_)).code, KILN_INVALID_ARGUMENT);
  kiln_metrics_free(nullptr);
}

} // namespace

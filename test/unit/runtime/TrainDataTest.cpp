//===- TrainDataTest.cpp - a training run's data and batch order ----------===//
#include "TestUtil.h"

#include "kiln/runtime/npy.h"
#include "kiln/runtime/train_data.h"

#include <string>
#include <utility>
#include <vector>

using namespace kiln::test;

namespace {

std::string messageOf(kiln_status_t status) { return take(status).message; }

/// An NPY v1.0 file of int64 labels, padded as numpy pads it.
void writeLabels(const std::string &path, const std::vector<int64_t> &labels) {
  std::string header =
      "{'descr': '<i8', 'fortran_order': False, 'shape': (" + std::to_string(labels.size()) + ",), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  writeBytes(path, bytes + header + bytesOf(labels));
}

std::vector<std::pair<int64_t, int64_t>> pass(int64_t steps, int64_t rows, int64_t batch) {
  std::vector<std::pair<int64_t, int64_t>> batches;
  for (int64_t i = 0; i < steps; ++i) {
    int64_t first = -1, size = -1;
    kiln_train_batch(i, rows, batch, &first, &size);
    batches.push_back({first, size});
  }
  return batches;
}

TEST(TrainDataTest, BatchesTakeTheRowsInOrderAndWrapAround) {
  using Batches = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(pass(3, 160, 16), (Batches{{0, 16}, {16, 16}, {32, 16}}));
  EXPECT_EQ(pass(11, 160, 16).back(), (std::pair<int64_t, int64_t>{0, 16}));
  // The last batch of a pass holds what is left, then row 0 again.
  EXPECT_EQ(pass(5, 50, 16), (Batches{{0, 16}, {16, 16}, {32, 16}, {48, 2}, {0, 16}}));
  EXPECT_EQ(pass(2, 7, 7), (Batches{{0, 7}, {0, 7}}));
}

TEST(TrainDataTest, BatchChecks) {
  EXPECT_EQ(messageOf(kiln_train_check_batch(160, 161, 1, 1, "x.npy")),
            "--batch 161 is larger than the data: x.npy has 160 samples");
  // A last batch of 1 with BatchNorm1d, only where the steps reach it.
  KILN_EXPECT_OK(kiln_train_check_batch(161, 16, 10, 2, "x.npy"));
  EXPECT_EQ(messageOf(kiln_train_check_batch(161, 16, 11, 2, "x.npy")),
            "--batch 16 over 161 samples leaves a last batch of 1, and train-mode BatchNorm1d "
            "needs more than 1 value per channel; pick another --batch");
  KILN_EXPECT_OK(kiln_train_check_batch(161, 16, 11, 1, "x.npy"));
}

class TrainDataFileTest : public TempDirTest {};

TEST_F(TrainDataFileTest, ReadsRowsAndChecksLabels) {
  std::vector<float> x(3 * 2 * 2);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i);
  int64_t shape[] = {3, 2, 2};
  KILN_ASSERT_OK(kiln_npy_write_f32(path("x.npy").c_str(), x.data(), 3, shape));
  std::vector<int64_t> good = {0, 1, 2}, bad = {0, 3, 1};
  writeLabels(path("y.npy"), good);
  writeLabels(path("bad.npy"), bad);
  const int64_t input[] = {-1, 2, 2};
  kiln_train_data_t *data = nullptr;
  KILN_ASSERT_OK(kiln_train_data_read(path("x.npy").c_str(), path("y.npy").c_str(), 3, input, 3,
                                      &data));
  EXPECT_EQ(kiln_train_data_rows(data), 3);
  EXPECT_EQ(kiln_train_data_sample_size(data), 4);
  EXPECT_EQ(kiln_train_data_inputs(data)[5], 5.0f);
  EXPECT_EQ(kiln_train_data_labels(data)[2], 2);
  kiln_train_data_free(data);
  EXPECT_EQ(messageOf(kiln_train_data_read(path("x.npy").c_str(), path("bad.npy").c_str(), 3,
                                               input, 3, &data)),
            path("bad.npy") +
                ": label 3 of sample 1 is out of range: the model has 3 classes (0 to 2)");
  EXPECT_EQ(data, nullptr);
  const int64_t other[] = {-1, 4};
  EXPECT_EQ(messageOf(kiln_train_data_read(path("x.npy").c_str(), path("y.npy").c_str(), 2,
                                               other, 3, &data)),
            path("x.npy") +
                ": inputs of shape [3, 2, 2] are not samples of the model's input [N, 4]: the "
                "last dimensions must be [4], after one or more leading dimensions of samples");
}

} // namespace

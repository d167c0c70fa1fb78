//===- FixturesTest.cpp - Files written by other tools --------------------===//
//
// The PyTorch fixtures in test/fixtures were written by an independent
// safetensors writer (test/fixtures/safetensors_io.py) and by numpy.save, so
// reading them checks the readers against someone else's idea of the format.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/npy.h"
#include "kiln/runtime/safetensors.h"

#include <cstring>

using namespace kiln::test;

namespace {

const std::string kFixtures = KILN_FIXTURES_DIR;

class FixturesTest : public TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (!std::filesystem::exists(kFixtures + "/simple_nn_bn/weights.safetensors"))
      GTEST_SKIP() << "no fixtures in " << kFixtures;
  }
  static std::vector<std::string> checkpoints() {
    std::vector<std::string> paths;
    for (const auto &entry : std::filesystem::directory_iterator(kFixtures))
      if (std::filesystem::exists(entry.path() / "weights.safetensors"))
        paths.push_back((entry.path() / "weights.safetensors").string());
    return paths;
  }
  // The bytes after the header of a safetensors file.
  static std::string dataBuffer(const std::string &bytes) {
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    return bytes.substr(8 + n);
  }
};

TEST_F(FixturesTest, ReadsEveryCommittedCheckpoint) {
  ASSERT_FALSE(checkpoints().empty());
  for (const std::string &p : checkpoints()) {
    SCOPED_TRACE(p);
    kiln_safetensors_t *file = nullptr;
    KILN_ASSERT_OK(kiln_safetensors_open(p.c_str(), &file));
    EXPECT_GT(kiln_safetensors_count(file), 0u);
    const char *format = nullptr;
    KILN_EXPECT_OK(kiln_safetensors_metadata_get(file, "format", &format));
    EXPECT_STREQ(format, "pt");
    for (size_t i = 0; i < kiln_safetensors_count(file); ++i) {
      kiln_tensor_info_t info;
      KILN_ASSERT_OK(kiln_safetensors_info(file, i, &info));
      if (info.dtype == KILN_DTYPE_I64) { // num_batches_tracked: a scalar
        int64_t tracked = -1;
        KILN_EXPECT_OK(kiln_safetensors_read_i64(file, info.name, 1, &tracked));
        EXPECT_GE(tracked, 0) << info.name;
      } else {
        EXPECT_EQ(info.dtype, KILN_DTYPE_F32) << info.name;
        std::vector<float> values(info.count);
        KILN_EXPECT_OK(kiln_safetensors_read_f32(file, info.name, info.count, values.data()));
      }
    }
    kiln_safetensors_close(file);
  }
}

TEST_F(FixturesTest, RewrittenCheckpointKeepsDataBufferByteForByte) {
  // Both writers store tensors contiguously in sorted-name order, so only the
  // JSON text of the header may differ (key order, not content).
  std::string original = kFixtures + "/simple_nn_bn/weights.safetensors";
  kiln_safetensors_t *file = nullptr;
  KILN_ASSERT_OK(kiln_safetensors_open(original.c_str(), &file));
  kiln_safetensors_writer_t *writer = nullptr;
  KILN_ASSERT_OK(kiln_safetensors_writer_create(&writer));
  for (size_t i = 0; i < kiln_safetensors_count(file); ++i) {
    kiln_tensor_info_t info;
    KILN_ASSERT_OK(kiln_safetensors_info(file, i, &info));
    std::string data(info.byte_size, '\0');
    KILN_ASSERT_OK(kiln_safetensors_read_bytes(file, info.name, data.size(), data.data()));
    KILN_ASSERT_OK(kiln_safetensors_writer_add(writer, info.name, info.dtype, info.rank,
                                               info.shape, data.data()));
  }
  for (size_t i = 0; i < kiln_safetensors_metadata_count(file); ++i) {
    const char *key, *value;
    KILN_ASSERT_OK(kiln_safetensors_metadata_at(file, i, &key, &value));
    KILN_ASSERT_OK(kiln_safetensors_writer_set_metadata(writer, key, value));
  }
  KILN_ASSERT_OK(kiln_safetensors_writer_write(writer, path("copy.safetensors").c_str()));
  kiln_safetensors_writer_free(writer);
  kiln_safetensors_close(file);
  EXPECT_EQ(dataBuffer(readBytes(path("copy.safetensors"))),
            dataBuffer(readBytes(original)));
}

TEST_F(FixturesTest, ReadsNumpySavedInputs) {
  kiln_array_t *array = nullptr;
  KILN_ASSERT_OK(kiln_npy_read_f32((kFixtures + "/lenet/input_b7.npy").c_str(), &array));
  const int64_t *shape = kiln_array_shape(array);
  ASSERT_EQ(kiln_array_rank(array), 4u);
  EXPECT_EQ(std::vector<int64_t>(shape, shape + 4), (std::vector<int64_t>{7, 1, 28, 28}));
  kiln_array_free(array);
}

} // namespace

//===- SafetensorsTest.cpp - safetensors writer and reader ----------------===//
#include "TestUtil.h"

#include "kiln/runtime/safetensors.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace kiln::test;

namespace {

class SafetensorsTest : public TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    KILN_ASSERT_OK(kiln_safetensors_writer_create(&writer_));
  }
  void TearDown() override {
    kiln_safetensors_writer_free(writer_);
    kiln_safetensors_close(file_);
    TempDirTest::TearDown();
  }
  void add(const char *name, kiln_dtype_t dtype, std::vector<int64_t> shape,
           const std::string &bytes) {
    KILN_ASSERT_OK(kiln_safetensors_writer_add(writer_, name, dtype, shape.size(),
                                               shape.data(), bytes.data()));
  }
  // Writes what was added to `name` and opens it as file_.
  void writeAndOpen(const std::string &name = "model.safetensors") {
    KILN_ASSERT_OK(kiln_safetensors_writer_write(writer_, path(name).c_str()));
    KILN_ASSERT_OK(kiln_safetensors_open(path(name).c_str(), &file_));
  }
  std::vector<float> readF32(const char *name, size_t count) {
    std::vector<float> values(count);
    KILN_EXPECT_OK(kiln_safetensors_read_f32(file_, name, count, values.data()));
    return values;
  }
  kiln_safetensors_writer_t *writer_ = nullptr;
  kiln_safetensors_t *file_ = nullptr;
};

struct DtypeCase {
  kiln_dtype_t dtype;
  std::string bytes; // 2 x 3 elements
};

std::vector<DtypeCase> allDtypeCases() {
  return {
      {KILN_DTYPE_F32, bytesOf<float>({1.5f, -2, 3, 4, 5, 6})},
      {KILN_DTYPE_F64, bytesOf<double>({1.5, -2, 3, 4, 5, 1e300})},
      {KILN_DTYPE_F16, bytesOf<uint16_t>({0x3c00, 0xc000, 1, 2, 3, 4})},
      {KILN_DTYPE_BF16, bytesOf<uint16_t>({0x3fc0, 0xc000, 1, 2, 3, 4})},
      {KILN_DTYPE_I64, bytesOf<int64_t>({-1, INT64_MAX, 3, 4, 5, 6})},
      {KILN_DTYPE_I32, bytesOf<int32_t>({-1, INT32_MIN, 3, 4, 5, 6})},
      {KILN_DTYPE_I16, bytesOf<int16_t>({-1, 2, 3, 4, 5, 6})},
      {KILN_DTYPE_I8, bytesOf<int8_t>({-1, 2, 3, 4, 5, 6})},
      {KILN_DTYPE_U64, bytesOf<uint64_t>({1, 2, 3, 4, 5, UINT64_MAX})},
      {KILN_DTYPE_U32, bytesOf<uint32_t>({1, 2, 3, 4, 5, UINT32_MAX})},
      {KILN_DTYPE_U16, bytesOf<uint16_t>({1, 2, 3, 4, 5, 65535})},
      {KILN_DTYPE_U8, bytesOf<uint8_t>({1, 2, 3, 4, 5, 255})},
      {KILN_DTYPE_BOOL, bytesOf<uint8_t>({0, 1, 1, 0, 0, 1})},
  };
}

TEST_F(SafetensorsTest, RoundTripPreservesEveryDtypeBitForBit) {
  for (const DtypeCase &c : allDtypeCases())
    add(kiln_dtype_name(c.dtype), c.dtype, {2, 3}, c.bytes);
  writeAndOpen();
  ASSERT_EQ(kiln_safetensors_count(file_), allDtypeCases().size());
  for (const DtypeCase &c : allDtypeCases()) {
    SCOPED_TRACE(kiln_dtype_name(c.dtype));
    kiln_tensor_info_t info;
    KILN_ASSERT_OK(kiln_safetensors_find(file_, kiln_dtype_name(c.dtype), &info));
    EXPECT_EQ(info.dtype, c.dtype);
    ASSERT_EQ(info.rank, 2u);
    EXPECT_EQ(info.shape[0], 2);
    EXPECT_EQ(info.shape[1], 3);
    EXPECT_EQ(info.count, 6u);
    EXPECT_EQ(info.byte_size, c.bytes.size());
    std::string bytes(info.byte_size, '\0');
    KILN_ASSERT_OK(kiln_safetensors_read_bytes(file_, info.name, bytes.size(), bytes.data()));
    EXPECT_EQ(bytes, c.bytes);
  }
}

TEST_F(SafetensorsTest, ReadF32ConvertsEveryDtype) {
  for (const DtypeCase &c : allDtypeCases())
    add(kiln_dtype_name(c.dtype), c.dtype, {2, 3}, c.bytes);
  writeAndOpen();
  EXPECT_EQ(readF32("F32", 6)[0], 1.5f);
  EXPECT_EQ(readF32("F64", 6)[1], -2.0f);
  EXPECT_EQ(readF32("F64", 6)[5], std::numeric_limits<float>::infinity());
  EXPECT_EQ(readF32("F16", 6)[0], 1.0f);
  EXPECT_EQ(readF32("F16", 6)[1], -2.0f);
  EXPECT_EQ(readF32("BF16", 6)[0], 1.5f);
  EXPECT_EQ(readF32("BF16", 6)[1], -2.0f);
  EXPECT_EQ(readF32("I64", 6)[0], -1.0f);
  EXPECT_EQ(readF32("I64", 6)[1], 9223372036854775807.0f); // rounds to 2^63
  EXPECT_EQ(readF32("I32", 6)[1], -2147483648.0f);
  EXPECT_EQ(readF32("I16", 6)[0], -1.0f);
  EXPECT_EQ(readF32("I8", 6)[0], -1.0f);
  EXPECT_EQ(readF32("U64", 6)[5], 18446744073709551615.0f);
  EXPECT_EQ(readF32("U32", 6)[5], 4294967295.0f);
  EXPECT_EQ(readF32("U16", 6)[5], 65535.0f);
  EXPECT_EQ(readF32("U8", 6)[5], 255.0f);
  EXPECT_EQ(readF32("BOOL", 6), (std::vector<float>{0, 1, 1, 0, 0, 1}));
}

TEST_F(SafetensorsTest, ReadF32ConvertsHalfSpecialValues) {
  add("h", KILN_DTYPE_F16, {6},
      bytesOf<uint16_t>({0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x8000}));
  add("nan", KILN_DTYPE_F16, {1}, bytesOf<uint16_t>({0x7e00}));
  writeAndOpen();
  std::vector<float> h = readF32("h", 6);
  EXPECT_EQ(h[0], std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(h[1], std::ldexp(1023.0f, -24));
  EXPECT_EQ(h[2], 65504.0f); // largest finite half
  EXPECT_EQ(h[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[4], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(h[5]) && h[5] == 0.0f);
  EXPECT_TRUE(std::isnan(readF32("nan", 1)[0]));
}

TEST_F(SafetensorsTest, ReadI64ReadsIntegerTensors) {
  add("bn.num_batches_tracked", KILN_DTYPE_I64, {}, bytesOf<int64_t>({938}));
  add("i8", KILN_DTYPE_I8, {2}, bytesOf<int8_t>({-128, 127}));
  add("u32", KILN_DTYPE_U32, {1}, bytesOf<uint32_t>({UINT32_MAX}));
  writeAndOpen();
  int64_t tracked = 0;
  KILN_EXPECT_OK(kiln_safetensors_read_i64(file_, "bn.num_batches_tracked", 1, &tracked));
  EXPECT_EQ(tracked, 938);
  int64_t pair[2];
  KILN_EXPECT_OK(kiln_safetensors_read_i64(file_, "i8", 2, pair));
  EXPECT_EQ(pair[0], -128);
  EXPECT_EQ(pair[1], 127);
  KILN_EXPECT_OK(kiln_safetensors_read_i64(file_, "u32", 1, pair));
  EXPECT_EQ(pair[0], int64_t{UINT32_MAX});
}

TEST_F(SafetensorsTest, ReadI64RejectsFloatTensor) {
  add("w", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  writeAndOpen();
  int64_t value;
  Result r = take(kiln_safetensors_read_i64(file_, "w", 1, &value));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("'w'"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("F32"), std::string::npos) << r.message;
}

TEST_F(SafetensorsTest, ReadI64RejectsU64AboveInt64Max) {
  add("big", KILN_DTYPE_U64, {1}, bytesOf<uint64_t>({uint64_t{1} << 63}));
  writeAndOpen();
  int64_t value;
  EXPECT_EQ(take(kiln_safetensors_read_i64(file_, "big", 1, &value)).code,
            KILN_OUT_OF_RANGE);
}

TEST_F(SafetensorsTest, ReadRejectsWrongElementCount) {
  add("w", KILN_DTYPE_F32, {2, 2}, bytesOf<float>({1, 2, 3, 4}));
  writeAndOpen();
  std::vector<float> values(5);
  Result r = take(kiln_safetensors_read_f32(file_, "w", 5, values.data()));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("'w' has 4 elements (shape [2, 2])"), std::string::npos)
      << r.message;
}

TEST_F(SafetensorsTest, FindReportsMissingTensorByName) {
  writeAndOpen();
  kiln_tensor_info_t info;
  Result r = take(kiln_safetensors_find(file_, "fc1.weight", &info));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_NE(r.message.find(path("model.safetensors")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("'fc1.weight'"), std::string::npos) << r.message;
}

TEST_F(SafetensorsTest, InfoByIndexIsInNameOrder) {
  add("layer2.bias", KILN_DTYPE_F32, {1}, bytesOf<float>({2}));
  add("layer1.weight", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  add("bn1.running_var", KILN_DTYPE_F32, {1}, bytesOf<float>({0}));
  writeAndOpen();
  std::vector<std::string> names;
  for (size_t i = 0; i < kiln_safetensors_count(file_); ++i) {
    kiln_tensor_info_t info;
    KILN_ASSERT_OK(kiln_safetensors_info(file_, i, &info));
    names.push_back(info.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"bn1.running_var", "layer1.weight",
                                             "layer2.bias"}));
  kiln_tensor_info_t info;
  EXPECT_EQ(take(kiln_safetensors_info(file_, 3, &info)).code, KILN_OUT_OF_RANGE);
}

TEST_F(SafetensorsTest, WriterLaysOutSortedContiguousDataAfterPaddedHeader) {
  add("b", KILN_DTYPE_F32, {1}, bytesOf<float>({2}));
  add("a", KILN_DTYPE_F64, {1}, bytesOf<double>({1}));
  KILN_ASSERT_OK(kiln_safetensors_writer_write(writer_, path("x.safetensors").c_str()));
  std::string bytes = readBytes(path("x.safetensors"));
  uint64_t headerSize;
  std::memcpy(&headerSize, bytes.data(), 8);
  EXPECT_EQ(headerSize % 8, 0u);
  std::string header = bytes.substr(8, headerSize);
  EXPECT_NE(header.find(R"("a":{"data_offsets":[0,8],"dtype":"F64","shape":[1]})"),
            std::string::npos) << header;
  EXPECT_NE(header.find(R"("b":{"data_offsets":[8,12],"dtype":"F32","shape":[1]})"),
            std::string::npos) << header;
  EXPECT_EQ(bytes.size(), 8 + headerSize + 12);
  EXPECT_EQ(bytes.substr(8 + headerSize), bytesOf<double>({1}) + bytesOf<float>({2}));
}

TEST_F(SafetensorsTest, ScalarAndEmptyTensorsRoundTrip) {
  add("scalar", KILN_DTYPE_F32, {}, bytesOf<float>({7}));
  add("empty", KILN_DTYPE_F32, {0, 3}, "");
  writeAndOpen();
  kiln_tensor_info_t info;
  KILN_ASSERT_OK(kiln_safetensors_find(file_, "scalar", &info));
  EXPECT_EQ(info.rank, 0u);
  EXPECT_EQ(info.count, 1u);
  EXPECT_EQ(readF32("scalar", 1)[0], 7.0f);
  KILN_ASSERT_OK(kiln_safetensors_find(file_, "empty", &info));
  EXPECT_EQ(info.count, 0u);
  EXPECT_EQ(info.byte_size, 0u);
  KILN_EXPECT_OK(kiln_safetensors_read_f32(file_, "empty", 0, nullptr));
}

TEST_F(SafetensorsTest, FileWithoutTensorsRoundTrips) {
  writeAndOpen();
  EXPECT_EQ(kiln_safetensors_count(file_), 0u);
  EXPECT_EQ(kiln_safetensors_metadata_count(file_), 0u);
}

TEST_F(SafetensorsTest, ReadBytesWantsTheTensorsSize) {
  add("w", KILN_DTYPE_F32, {3}, bytesOf<float>({1, 2, 3}));
  writeAndOpen();
  std::string bytes(11, '\0');
  Result r = take(kiln_safetensors_read_bytes(file_, "w", bytes.size(), bytes.data()));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("tensor 'w' has 12 bytes but the destination holds 11"),
            std::string::npos)
      << r.message;
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  KILN_ASSERT_OK(kiln_safetensors_writer_set_metadata(writer_, "format", "pt"));
  KILN_ASSERT_OK(kiln_safetensors_writer_set_metadata(writer_, "epoch", "3"));
  KILN_ASSERT_OK(kiln_safetensors_writer_set_metadata(writer_, "epoch", "4"));
  writeAndOpen();
  const char *value = nullptr;
  KILN_ASSERT_OK(kiln_safetensors_metadata_get(file_, "format", &value));
  EXPECT_STREQ(value, "pt");
  KILN_ASSERT_OK(kiln_safetensors_metadata_get(file_, "epoch", &value));
  EXPECT_STREQ(value, "4"); // set_metadata replaces
  ASSERT_EQ(kiln_safetensors_metadata_count(file_), 2u);
  const char *key = nullptr;
  KILN_ASSERT_OK(kiln_safetensors_metadata_at(file_, 0, &key, &value));
  EXPECT_STREQ(key, "epoch");
  Result r = take(kiln_safetensors_metadata_get(file_, "missing", &value));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_NE(r.message.find("'missing'"), std::string::npos);
}

TEST_F(SafetensorsTest, WriterRejectsDuplicateName) {
  add("w", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  float one = 1;
  int64_t shape[] = {1};
  Result r = take(kiln_safetensors_writer_add(writer_, "w", KILN_DTYPE_F32, 1, shape, &one));
  EXPECT_EQ(r.code, KILN_ALREADY_EXISTS);
  EXPECT_NE(r.message.find("'w'"), std::string::npos) << r.message;
}

TEST_F(SafetensorsTest, WriterRejectsEmptyAndReservedNames) {
  float one = 1;
  int64_t shape[] = {1};
  for (const char *name : {"", "__metadata__"})
    EXPECT_EQ(take(kiln_safetensors_writer_add(writer_, name, KILN_DTYPE_F32, 1,
                                               shape, &one)).code,
              KILN_INVALID_ARGUMENT) << name;
}

TEST_F(SafetensorsTest, WriterRejectsNegativeOrOverflowingShape) {
  float one = 1;
  int64_t negative[] = {2, -1};
  EXPECT_EQ(take(kiln_safetensors_writer_add(writer_, "n", KILN_DTYPE_F32, 2,
                                             negative, &one)).code,
            KILN_INVALID_ARGUMENT);
  int64_t huge[] = {int64_t{1} << 62, 8};
  EXPECT_EQ(take(kiln_safetensors_writer_add(writer_, "h", KILN_DTYPE_F32, 2, huge,
                                             &one)).code,
            KILN_INVALID_ARGUMENT);
}

TEST_F(SafetensorsTest, WriterRejectsNullDataForNonEmptyTensor) {
  int64_t shape[] = {4};
  EXPECT_EQ(take(kiln_safetensors_writer_add(writer_, "w", KILN_DTYPE_F32, 1, shape,
                                             nullptr)).code,
            KILN_INVALID_ARGUMENT);
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryFailsAndLeavesNothing) {
  add("w", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  std::string target = path("no/such/dir/model.safetensors");
  Result r = take(kiln_safetensors_writer_write(writer_, target.c_str()));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_NE(r.message.find(target), std::string::npos) << r.message;
  EXPECT_TRUE(listing().empty());
}

TEST_F(SafetensorsTest, WriteReplacesExistingFileWhole) {
  writeBytes(path("model.safetensors"), std::string(100000, 'x'));
  add("w", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  writeAndOpen();
  EXPECT_EQ(readF32("w", 1)[0], 1.0f);
  EXPECT_LT(readBytes(path("model.safetensors")).size(), 1000u);
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, DirectoryTargetIsRefusedBeforeWriting) {
  // A directory is never renamed over (output.h): the write fails before a
  // temporary file is made, and the directory keeps what it holds.
  std::filesystem::create_directory(path("model.safetensors"));
  writeBytes(path("model.safetensors/keep"), "kept");
  add("w", KILN_DTYPE_F32, {1}, bytesOf<float>({1}));
  Result r = take(kiln_safetensors_writer_write(writer_, path("model.safetensors").c_str()));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("model.safetensors' is a directory"), std::string::npos) << r.message;
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(readBytes(path("model.safetensors/keep")), "kept");
}

TEST_F(SafetensorsTest, OpenMissingFileIsNotFound) {
  Result r = take(kiln_safetensors_open(path("absent.safetensors").c_str(), &file_));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_NE(r.message.find(path("absent.safetensors")), std::string::npos);
  EXPECT_EQ(file_, nullptr);
}

TEST_F(SafetensorsTest, OpenDirectoryIsRejected) {
  Result r = take(kiln_safetensors_open(dir_.c_str(), &file_));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("not a regular file"), std::string::npos) << r.message;
}

} // namespace

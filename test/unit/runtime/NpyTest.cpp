//===- NpyTest.cpp - NPY reader and writer --------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/npy.h"

using namespace kiln::test;

namespace {

class NpyTest : public TempDirTest {
protected:
  void TearDown() override {
    kiln_array_free(array_);
    TempDirTest::TearDown();
  }
  // An NPY file of `version` with dict `dict`, padded as numpy pads it.
  static std::string npy(const std::string &dict, const std::string &data,
                         int version = 1) {
    size_t preamble = version == 1 ? 10 : 12;
    std::string header = dict;
    header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string bytes = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
    for (size_t i = 0; i < preamble - 8; ++i)
      bytes += static_cast<char>(header.size() >> (8 * i));
    return bytes + header + data;
  }
  static std::string dict(const std::string &descr, const std::string &shape,
                          const std::string &order = "False") {
    return "{'descr': '" + descr + "', 'fortran_order': " + order +
           ", 'shape': " + shape + ", }";
  }
  void expectRejected(const std::string &bytes, kiln_status_code_t code,
                      const std::string &part) {
    writeBytes(path("x.npy"), bytes);
    Result r = take(kiln_npy_read_f32(path("x.npy").c_str(), &array_));
    EXPECT_EQ(r.code, code) << kiln_status_code_name(r.code) << ": " << r.message;
    EXPECT_EQ(array_, nullptr);
    EXPECT_EQ(r.message.rfind(path("x.npy") + ": ", 0), 0u) << r.message;
    EXPECT_NE(r.message.find(part), std::string::npos)
        << "'" << part << "' not in: " << r.message;
  }
  void read(const std::string &bytes) {
    writeBytes(path("x.npy"), bytes);
    KILN_ASSERT_OK(kiln_npy_read_f32(path("x.npy").c_str(), &array_));
  }
  std::vector<float> values() const {
    auto *data = static_cast<const float *>(kiln_array_const_data(array_));
    return std::vector<float>(data, data + kiln_array_count(array_));
  }
  std::vector<int64_t> shape() const {
    const int64_t *s = kiln_array_shape(array_);
    return std::vector<int64_t>(s, s + kiln_array_rank(array_));
  }
  kiln_array_t *array_ = nullptr;
};

TEST_F(NpyTest, RoundTripKeepsShapeAndValues) {
  std::vector<float> data = {1, -2.5f, 3, 4, 5, 6};
  int64_t dims[] = {2, 3};
  KILN_ASSERT_OK(kiln_npy_write_f32(path("a.npy").c_str(), data.data(), 2, dims));
  KILN_ASSERT_OK(kiln_npy_read_f32(path("a.npy").c_str(), &array_));
  EXPECT_EQ(kiln_array_dtype(array_), KILN_DTYPE_F32);
  EXPECT_EQ(shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values(), data);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(kiln_array_data(array_)) % 64, 0u);
}

TEST_F(NpyTest, WriterProducesNumpysHeaderLayout) {
  std::vector<float> data = {1, 2, 3};
  int64_t dims[] = {3};
  KILN_ASSERT_OK(kiln_npy_write_f32(path("a.npy").c_str(), data.data(), 1, dims));
  std::string bytes = readBytes(path("a.npy"));
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t headerSize = uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8;
  EXPECT_EQ((10 + headerSize) % 64, 0u);
  EXPECT_EQ(bytes.substr(10, headerSize),
            npy(dict("<f4", "(3,)"), "").substr(10)); // same text and padding
  EXPECT_EQ(bytes.size(), 10 + headerSize + 12);
}

TEST_F(NpyTest, ScalarAndEmptyArraysRoundTrip) {
  float seven = 7;
  KILN_ASSERT_OK(kiln_npy_write_f32(path("s.npy").c_str(), &seven, 0, nullptr));
  KILN_ASSERT_OK(kiln_npy_read_f32(path("s.npy").c_str(), &array_));
  EXPECT_EQ(kiln_array_rank(array_), 0u);
  EXPECT_EQ(values(), std::vector<float>{7});
  kiln_array_free(array_);
  array_ = nullptr;
  int64_t dims[] = {0, 5};
  KILN_ASSERT_OK(kiln_npy_write_f32(path("e.npy").c_str(), nullptr, 2, dims));
  KILN_ASSERT_OK(kiln_npy_read_f32(path("e.npy").c_str(), &array_));
  EXPECT_EQ(shape(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(kiln_array_count(array_), 0u);
}

TEST_F(NpyTest, ReadsFloat64ByConverting) {
  read(npy(dict("<f8", "(2,)"), bytesOf<double>({0.1, -3.0})));
  EXPECT_EQ(values(), (std::vector<float>{0.1f, -3.0f}));
}

TEST_F(NpyTest, ReadsVersion2And3) {
  for (int version : {2, 3}) {
    SCOPED_TRACE(version);
    read(npy(dict("<f4", "(1, 2)"), bytesOf<float>({1, 2}), version));
    EXPECT_EQ(shape(), (std::vector<int64_t>{1, 2}));
    kiln_array_free(array_);
    array_ = nullptr;
  }
}

TEST_F(NpyTest, AcceptsKeysInAnyOrderWithoutTrailingComma) {
  read(npy("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}",
           bytesOf<float>({1, 2})));
  EXPECT_EQ(values(), (std::vector<float>{1, 2}));
}

TEST_F(NpyTest, RejectsBadMagic) {
  expectRejected(std::string("\x93NUMPZ\x01\x00\x00\x00", 10), KILN_DATA_LOSS, "magic");
}

TEST_F(NpyTest, RejectsShortFile) {
  expectRejected("\x93NUM", KILN_DATA_LOSS, "too short");
}

TEST_F(NpyTest, RejectsUnknownVersion) {
  std::string bytes = npy(dict("<f4", "(1,)"), bytesOf<float>({1}));
  bytes[6] = 4;
  expectRejected(bytes, KILN_UNIMPLEMENTED, "version 4.0");
}

TEST_F(NpyTest, RejectsBigEndian) {
  expectRejected(npy(dict(">f4", "(1,)"), bytesOf<float>({1})), KILN_UNIMPLEMENTED,
                 "big-endian");
}

TEST_F(NpyTest, RejectsOtherDtypes) {
  expectRejected(npy(dict("<i8", "(1,)"), bytesOf<int64_t>({1})), KILN_UNIMPLEMENTED,
                 "dtype '<i8' is not supported");
}

TEST_F(NpyTest, RejectsFortranOrder) {
  expectRejected(npy(dict("<f4", "(2, 2)", "True"), bytesOf<float>({1, 2, 3, 4})),
                 KILN_UNIMPLEMENTED, "fortran_order is True");
}

TEST_F(NpyTest, RejectsMissingKey) {
  expectRejected(npy("{'descr': '<f4', 'shape': (1,), }", bytesOf<float>({1})),
                 KILN_DATA_LOSS, "missing key 'fortran_order'");
}

TEST_F(NpyTest, RejectsUnexpectedKey) {
  expectRejected(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "
                     "'extra': True}",
                     bytesOf<float>({1})),
                 KILN_DATA_LOSS, "unexpected key 'extra'");
}

TEST_F(NpyTest, RejectsDuplicateKey) {
  expectRejected(npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                     "'shape': (1,)}",
                     bytesOf<float>({1})),
                 KILN_DATA_LOSS, "key 'descr' appears twice");
}

TEST_F(NpyTest, RejectsOneElementTupleWithoutComma) {
  expectRejected(npy(dict("<f4", "(1)"), bytesOf<float>({1})), KILN_DATA_LOSS,
                 "trailing comma");
}

TEST_F(NpyTest, RejectsNegativeExtent) {
  expectRejected(npy(dict("<f4", "(-1,)"), ""), KILN_DATA_LOSS, "non-negative");
}

TEST_F(NpyTest, RejectsHeaderWithoutNewline) {
  std::string bytes = npy(dict("<f4", "(1,)"), bytesOf<float>({1}));
  bytes[10 + 117] = ' '; // the '\n' closing the 118-byte header
  expectRejected(bytes, KILN_DATA_LOSS, "newline");
}

TEST_F(NpyTest, RejectsHeaderPastEndOfFile) {
  expectRejected(npy(dict("<f4", "(1,)"), "").substr(0, 40), KILN_DATA_LOSS,
                 "runs past the end");
}

TEST_F(NpyTest, RejectsOversizedHeader) {
  std::string bytes = npy(dict("<f4", "(1,)"), "", 2);
  bytes[10] = 1; // header length 65536 + ...
  expectRejected(bytes, KILN_DATA_LOSS, "exceeds the limit");
}

TEST_F(NpyTest, RejectsTruncatedData) {
  expectRejected(npy(dict("<f4", "(3,)"), bytesOf<float>({1, 2})), KILN_DATA_LOSS,
                 "needs 12 data bytes but the file has 8 (truncated)");
}

TEST_F(NpyTest, RejectsTrailingData) {
  expectRejected(npy(dict("<f4", "(1,)"), bytesOf<float>({1, 2})), KILN_DATA_LOSS,
                 "(trailing bytes)");
}

TEST_F(NpyTest, RejectsOverflowingShape) {
  expectRejected(npy(dict("<f4", "(4611686018427387904, 4)"), ""), KILN_DATA_LOSS,
                 "overflows");
}

TEST_F(NpyTest, RejectsFifoWithoutBlocking) {
  readFifoWithoutWriter(path("fifo"), [&] {
    Result r = take(kiln_npy_read_f32(path("fifo").c_str(), &array_));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, path("fifo") + ": cannot read: it is a FIFO, not a regular file");
  });
}

TEST_F(NpyTest, RejectsDevicesAndDirectories) {
  for (std::string file : {std::string("/dev/zero"), std::string("/dev/urandom"), dir_}) {
    Result r = take(kiln_npy_read_f32(file.c_str(), &array_));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, file + ": cannot read: it is " +
                             (file == dir_ ? "a directory" : "a character device") +
                             ", not a regular file");
  }
}

TEST_F(NpyTest, RejectsHugeArrayBeforeReadingIt) {
  // A valid header over 100 GB of sparse zeros: exactly the size the shape
  // needs, so only the limit stops it, before anything is allocated.
  std::string header = npy(dict("<f4", "(25000000000,)"), "");
  writeSparse(path("x.npy"), header, off_t(header.size()) + 100000000000);
  Result r = take(kiln_npy_read_f32(path("x.npy").c_str(), &array_));
  EXPECT_EQ(r.code, KILN_DATA_LOSS);
  EXPECT_EQ(r.message, path("x.npy") + ": shape [25000000000] has 25000000000 elements, "
                                       "more than the 1073741824 (4 GiB of float32) Kiln reads");
}

TEST_F(NpyTest, EscapesControlCharactersFromTheHeader) {
  // An ESC sequence in the dtype must not reach the terminal of whoever
  // prints the message.
  expectRejected(npy(dict("<f4\x1b[2J\x9b", "(1,)"), bytesOf<float>({1})), KILN_UNIMPLEMENTED,
                 "dtype '<f4\\x1b[2J\\x9b' is not supported");
}

TEST_F(NpyTest, WriteIntoMissingDirectoryFailsAndLeavesNothing) {
  float one = 1;
  int64_t dims[] = {1};
  Result r = take(kiln_npy_write_f32(path("missing/a.npy").c_str(), &one, 1, dims));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_TRUE(listing().empty());
}

TEST_F(NpyTest, WriteReplacesExistingFileWhole) {
  writeBytes(path("a.npy"), std::string(5000, 'x'));
  float one = 1;
  int64_t dims[] = {1};
  KILN_ASSERT_OK(kiln_npy_write_f32(path("a.npy").c_str(), &one, 1, dims));
  KILN_ASSERT_OK(kiln_npy_read_f32(path("a.npy").c_str(), &array_));
  EXPECT_EQ(values(), std::vector<float>{1});
  EXPECT_EQ(listing(), std::vector<std::string>{"a.npy"});
}

// Labels: int64 class indices ('<i8'), read by kiln_npy_read_i64 with the
// float reader's checks.
class NpyLabelsTest : public NpyTest {
protected:
  void expectLabelsRejected(const std::string &bytes, kiln_status_code_t code,
                            const std::string &part) {
    writeBytes(path("y.npy"), bytes);
    Result r = take(kiln_npy_read_i64(path("y.npy").c_str(), &array_));
    EXPECT_EQ(r.code, code) << kiln_status_code_name(r.code) << ": " << r.message;
    EXPECT_EQ(array_, nullptr);
    EXPECT_EQ(r.message.rfind(path("y.npy") + ": ", 0), 0u) << r.message;
    EXPECT_NE(r.message.find(part), std::string::npos)
        << "'" << part << "' not in: " << r.message;
  }
};

TEST_F(NpyLabelsTest, ReadsInt64WithShape) {
  writeBytes(path("y.npy"), npy(dict("<i8", "(2, 2)"), bytesOf<int64_t>({0, 3, -1, INT64_MAX})));
  KILN_ASSERT_OK(kiln_npy_read_i64(path("y.npy").c_str(), &array_));
  EXPECT_EQ(kiln_array_dtype(array_), KILN_DTYPE_I64);
  EXPECT_EQ(shape(), (std::vector<int64_t>{2, 2}));
  auto *data = static_cast<const int64_t *>(kiln_array_const_data(array_));
  EXPECT_EQ(std::vector<int64_t>(data, data + 4), (std::vector<int64_t>{0, 3, -1, INT64_MAX}));
}

TEST_F(NpyLabelsTest, RejectsFloatLabels) {
  expectLabelsRejected(npy(dict("<f4", "(1,)"), bytesOf<float>({1})), KILN_UNIMPLEMENTED,
                       "dtype '<f4' is not supported (Kiln reads integers as '<i8', int64)");
}

TEST_F(NpyLabelsTest, RejectsOtherIntegerWidths) {
  expectLabelsRejected(npy(dict("<i4", "(1,)"), bytesOf<int32_t>({1})), KILN_UNIMPLEMENTED,
                       "dtype '<i4' is not supported");
}

TEST_F(NpyLabelsTest, RejectsBigEndian) {
  expectLabelsRejected(npy(dict(">i8", "(1,)"), bytesOf<int64_t>({1})), KILN_UNIMPLEMENTED,
                       "big-endian; save with arr.astype('<i8')");
}

TEST_F(NpyLabelsTest, RejectsTruncatedAndTrailingData) {
  expectLabelsRejected(npy(dict("<i8", "(2,)"), bytesOf<int64_t>({1})), KILN_DATA_LOSS,
                       "needs 16 data bytes but the file has 8 (truncated)");
  expectLabelsRejected(npy(dict("<i8", "(1,)"), bytesOf<int64_t>({1, 2})), KILN_DATA_LOSS,
                       "(trailing bytes)");
}

TEST_F(NpyLabelsTest, RejectsMalformedHeader) {
  expectLabelsRejected(npy("{'descr': '<i8', 'shape': (1,), }", bytesOf<int64_t>({1})),
                       KILN_DATA_LOSS, "missing key 'fortran_order'");
}

TEST_F(NpyLabelsTest, RejectsHugeArrayBeforeReadingIt) {
  std::string header = npy(dict("<i8", "(12500000000,)"), "");
  writeSparse(path("y.npy"), header, off_t(header.size()) + 100000000000);
  Result r = take(kiln_npy_read_i64(path("y.npy").c_str(), &array_));
  EXPECT_EQ(r.code, KILN_DATA_LOSS);
  EXPECT_EQ(r.message, path("y.npy") + ": shape [12500000000] has 12500000000 elements, "
                                       "more than the 536870912 (4 GiB of int64) Kiln reads");
}

TEST_F(NpyLabelsTest, RejectsDirectoryWithoutReading) {
  Result r = take(kiln_npy_read_i64(dir_.c_str(), &array_));
  EXPECT_NE(r.code, KILN_OK);
  EXPECT_NE(r.message.find("not a regular file"), std::string::npos) << r.message;
}

} // namespace

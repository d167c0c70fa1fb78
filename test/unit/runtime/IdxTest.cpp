//===- IdxTest.cpp - IDX reader on Fashion-MNIST and on damaged files -----===//
#include "TestUtil.h"

#include "kiln/runtime/idx.h"

#include <numeric>
#include <zlib.h>

using namespace kiln::test;

namespace {

const std::string kDataDir = KILN_FASHION_MNIST_DIR;

std::string gzipped(const std::string &bytes) {
  // Level 9 with a gzip wrapper (windowBits 15 + 16), as the dataset ships.
  z_stream stream{};
  deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, bytes.size()) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef *>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string gunzipped(const std::string &path) {
  gzFile file = gzopen(path.c_str(), "rb");
  std::string out;
  char buffer[65536];
  int got;
  while (file && (got = gzread(file, buffer, sizeof buffer)) > 0)
    out.append(buffer, static_cast<size_t>(got));
  if (file)
    gzclose(file);
  return out;
}

// An IDX file of unsigned bytes with `dims` and `data`.
std::string idx(std::vector<uint32_t> dims, const std::string &data) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0})
      bytes += static_cast<char>(d >> shift);
  return bytes + data;
}

class IdxTest : public TempDirTest {
protected:
  void TearDown() override {
    kiln_array_free(array_);
    TempDirTest::TearDown();
  }
  void read(const std::string &file) {
    kiln_array_free(array_);
    array_ = nullptr;
    KILN_ASSERT_OK(kiln_idx_read(file.c_str(), &array_));
  }
  void expectRejected(const std::string &bytes, kiln_status_code_t code,
                      const std::string &part) {
    writeBytes(path("x.idx"), bytes);
    Result r = take(kiln_idx_read(path("x.idx").c_str(), &array_));
    EXPECT_EQ(r.code, code) << kiln_status_code_name(r.code) << ": " << r.message;
    EXPECT_EQ(array_, nullptr);
    EXPECT_EQ(r.message.rfind(path("x.idx") + ": ", 0), 0u) << r.message;
    EXPECT_NE(r.message.find(part), std::string::npos)
        << "'" << part << "' not in: " << r.message;
  }
  std::vector<int64_t> shape() const {
    const int64_t *s = kiln_array_shape(array_);
    return std::vector<int64_t>(s, s + kiln_array_rank(array_));
  }
  const uint8_t *data() const {
    return static_cast<const uint8_t *>(kiln_array_const_data(array_));
  }
  void requireDataset() {
    if (!std::filesystem::exists(kDataDir + "/t10k-labels-idx1-ubyte.gz"))
      GTEST_SKIP() << "Fashion-MNIST not installed in " << kDataDir;
  }
  kiln_array_t *array_ = nullptr;
};

TEST_F(IdxTest, ReadsFashionMnistTestLabelsGz) {
  requireDataset();
  read(kDataDir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(kiln_array_dtype(array_), KILN_DTYPE_U8);
  ASSERT_EQ(shape(), std::vector<int64_t>{10000});
  // The first labels, from Python: gzip.open(...).read()[8:14].
  EXPECT_EQ(std::vector<int>(data(), data() + 6), (std::vector<int>{9, 2, 1, 1, 6, 1}));
  EXPECT_EQ(*std::max_element(data(), data() + 10000), 9);
  // Fashion-MNIST's test set has exactly 1000 items of each of the 10 classes.
  EXPECT_EQ(std::count(data(), data() + 10000, 9), 1000);
}

TEST_F(IdxTest, ReadsFashionMnistTestImagesGz) {
  requireDataset();
  read(kDataDir + "/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(shape(), (std::vector<int64_t>{10000, 28, 28}));
  EXPECT_EQ(kiln_array_byte_size(array_), 7840000u);
  // Sum of the first image's pixels, from Python: sum(raw[16:16 + 784]).
  EXPECT_EQ(std::accumulate(data(), data() + 784, 0), 33456);
}

TEST_F(IdxTest, ReadsPlainFileSameAsGz) {
  requireDataset();
  writeBytes(path("labels"), gunzipped(kDataDir + "/t10k-labels-idx1-ubyte.gz"));
  read(path("labels"));
  ASSERT_EQ(shape(), std::vector<int64_t>{10000});
  std::vector<uint8_t> plain(data(), data() + 10000);
  read(kDataDir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(std::vector<uint8_t>(data(), data() + 10000), plain);
}

TEST_F(IdxTest, DetectsGzipByContentNotName) {
  std::string file = idx({3}, "\x01\x02\x03");
  writeBytes(path("gz-named-plain.gz"), file);
  read(path("gz-named-plain.gz"));
  EXPECT_EQ(std::vector<int>(data(), data() + 3), (std::vector<int>{1, 2, 3}));
  writeBytes(path("plain-named.idx"), gzipped(file));
  read(path("plain-named.idx"));
  EXPECT_EQ(std::vector<int>(data(), data() + 3), (std::vector<int>{1, 2, 3}));
}

TEST_F(IdxTest, ReadsEmptyDataSet) {
  writeBytes(path("empty"), idx({0, 28, 28}, ""));
  read(path("empty"));
  EXPECT_EQ(shape(), (std::vector<int64_t>{0, 28, 28}));
}

TEST_F(IdxTest, RejectsTruncatedPlainFile) {
  expectRejected(idx({2, 2, 2}, "1234567"), KILN_DATA_LOSS,
                 "truncated: dimensions [2, 2, 2] need 8 data bytes, the file has 7");
}

TEST_F(IdxTest, RejectsTruncatedHeader) {
  expectRejected(idx({2, 2, 2}, "").substr(0, 10), KILN_DATA_LOSS,
                 "truncated: dimension 1");
}

TEST_F(IdxTest, RejectsTruncatedGzFile) {
  // Noise does not compress, so half the stream decompresses to about half.
  std::string noise;
  for (uint32_t x = 1; noise.size() < 4000; x = x * 1103515245 + 12345)
    noise += static_cast<char>(x >> 24);
  std::string compressed = gzipped(idx({4000}, noise));
  expectRejected(compressed.substr(0, compressed.size() / 2), KILN_DATA_LOSS,
                 "truncated: data of [4000]: expected 4000 bytes, got");
}

TEST_F(IdxTest, RejectsGzWhoseHeaderClaimsMoreThanItHolds) {
  // Decompressed, the file says 2^29 bytes follow; they never come.
  expectRejected(gzipped(idx({1u << 29}, "ab")), KILN_DATA_LOSS,
                 "expected 536870912 bytes, got 2");
}

TEST_F(IdxTest, RejectsTruncatedRealGzFile) {
  requireDataset();
  std::string bytes = readBytes(kDataDir + "/t10k-images-idx3-ubyte.gz");
  expectRejected(bytes.substr(0, bytes.size() - 100), KILN_DATA_LOSS, "truncated");
}

TEST_F(IdxTest, RejectsGzWithBadChecksum) {
  std::string compressed = gzipped(idx({4}, "abcd"));
  compressed[compressed.size() - 8] ^= 1; // first byte of the CRC-32 trailer
  expectRejected(compressed, KILN_DATA_LOSS, "corrupt gzip stream");
}

TEST_F(IdxTest, RejectsBadMagic) {
  expectRejected(std::string("\x12\x34\x08\x01\0\0\0\0", 8), KILN_DATA_LOSS, "bad magic number 0x12340801");
}

TEST_F(IdxTest, RejectsNonByteTypeCode) {
  expectRejected(std::string("\0\0\x0d\x01\0\0\0\0", 8), KILN_UNIMPLEMENTED,
                 "type code 13");
}

TEST_F(IdxTest, RejectsZeroDimensions) {
  expectRejected(std::string("\0\0\x08\0", 4), KILN_DATA_LOSS, "0 dimensions");
}

TEST_F(IdxTest, RejectsTrailingBytes) {
  expectRejected(idx({2}, "abc"), KILN_DATA_LOSS, "trailing bytes");
}

TEST_F(IdxTest, RejectsTrailingBytesInsideGz) {
  expectRejected(gzipped(idx({2}, "abc")), KILN_DATA_LOSS, "trailing bytes");
}

TEST_F(IdxTest, RejectsDataAboveOneGiB) {
  // 65536^2 * 2 bytes = 8 GiB; refused before anything is allocated.
  expectRejected(idx({65536, 65536, 2}, ""), KILN_DATA_LOSS, "1 GiB");
}

// gzread takes a stream cut before its 8-byte trailer (CRC-32, then the
// length) for a normal end of file; the reader does not.
TEST_F(IdxTest, RejectsGzWithoutTrailer) {
  std::string compressed = gzipped(idx({4}, "abcd"));
  expectRejected(compressed.substr(0, compressed.size() - 8), KILN_DATA_LOSS,
                 "truncated: the gzip stream stops before its end");
}

TEST_F(IdxTest, RejectsGzWithoutLengthTrailer) {
  std::string compressed = gzipped(idx({4}, "abcd"));
  expectRejected(compressed.substr(0, compressed.size() - 4), KILN_DATA_LOSS,
                 "CRC-32 and length trailer are missing");
}

TEST_F(IdxTest, RejectsGzCutInsideItsLastBlock) {
  // Cut a little before the trailer: all the data may already have come out,
  // but the stream has no end.
  std::string compressed = gzipped(idx({4}, "abcd"));
  expectRejected(compressed.substr(0, compressed.size() - 10), KILN_DATA_LOSS, "truncated");
}

TEST_F(IdxTest, RejectsGzWithBadLength) {
  std::string compressed = gzipped(idx({4}, "abcd"));
  compressed[compressed.size() - 4] ^= 1; // first byte of ISIZE
  expectRejected(compressed, KILN_DATA_LOSS, "corrupt gzip stream");
}

TEST_F(IdxTest, BadChecksumIsZlibsDataError) {
  std::string compressed = gzipped(idx({4}, "abcd"));
  compressed[compressed.size() - 5] ^= 0x80; // last byte of the CRC-32
  expectRejected(compressed, KILN_DATA_LOSS, "incorrect data check");
}

TEST_F(IdxTest, ReadsConcatenatedGzipMembers) {
  // `gzip -c a b` (or cat a.gz b.gz) is one valid gzip file.
  std::string file = idx({6}, "abcdef");
  writeBytes(path("x.gz"), gzipped(file.substr(0, 9)) + gzipped(file.substr(9)));
  read(path("x.gz"));
  EXPECT_EQ(std::string(data(), data() + 6), "abcdef");
}

TEST_F(IdxTest, RejectsGarbageAfterGzStream) {
  expectRejected(gzipped(idx({4}, "abcd")) + "junk", KILN_DATA_LOSS,
                 "4 bytes after the end of the gzip stream that are not another gzip member");
}

TEST_F(IdxTest, GzipBombStopsAtTheHeadersSize) {
  // 64 MiB of zeros compress to 64 KiB; the header asks for 10 bytes, so
  // reading stops at the 11th, long before the end.
  std::string compressed = gzipped(idx({10}, std::string(64 << 20, '\0')));
  ASSERT_LT(compressed.size(), 1u << 20);
  expectRejected(compressed, KILN_DATA_LOSS, "trailing bytes after the 10 data bytes of [10]");
}

TEST_F(IdxTest, RejectsFifoWithoutBlocking) {
  readFifoWithoutWriter(path("fifo"), [&] {
    Result r = take(kiln_idx_read(path("fifo").c_str(), &array_));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, path("fifo") + ": cannot read: it is a FIFO, not a regular file");
  });
}

TEST_F(IdxTest, RejectsDevices) {
  for (const char *device : {"/dev/zero", "/dev/urandom"}) {
    Result r = take(kiln_idx_read(device, &array_));
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
    EXPECT_EQ(r.message, std::string(device) +
                             ": cannot read: it is a character device, not a regular file");
  }
}

TEST_F(IdxTest, RejectsHugeSparseFileBeforeReadingIt) {
  // A valid header for 10000 images, then 100 GB of zeros: refused from its
  // size, not after reading (and allocating) up to the 1 GiB limit.
  writeSparse(path("x.idx"), idx({10000, 28, 28}, ""), off_t(100) << 30);
  Result r = take(kiln_idx_read(path("x.idx").c_str(), &array_));
  EXPECT_EQ(r.code, KILN_DATA_LOSS);
  EXPECT_NE(r.message.find("trailing bytes after the 7840000 data bytes of [10000, 28, 28] "
                           "(the file has 107374182384)"),
            std::string::npos)
      << r.message;
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  Result r = take(kiln_idx_read(path("absent.gz").c_str(), &array_));
  EXPECT_EQ(r.code, KILN_NOT_FOUND);
  EXPECT_NE(r.message.find(path("absent.gz")), std::string::npos);
}

} // namespace

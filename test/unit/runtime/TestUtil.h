//===- TestUtil.h - Helpers for the runtime unit tests --------------------===//
#ifndef KILN_TEST_UNIT_RUNTIME_TESTUTIL_H
#define KILN_TEST_UNIT_RUNTIME_TESTUTIL_H

#include "kiln/runtime/status.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kiln::test {

// A status taken apart (and freed), so tests can compare code and message.
struct Result {
  kiln_status_code_t code;
  std::string message;
};
inline Result take(kiln_status_t status) {
  Result result{kiln_status_code(status), kiln_status_message(status)};
  kiln_status_free(status);
  return result;
}

#define KILN_EXPECT_OK(expr)                                                   \
  do {                                                                         \
    ::kiln::test::Result r_ = ::kiln::test::take(expr);                        \
    EXPECT_EQ(r_.code, KILN_OK) << r_.message;                                 \
  } while (0)
#define KILN_ASSERT_OK(expr)                                                   \
  do {                                                                         \
    ::kiln::test::Result r_ = ::kiln::test::take(expr);                        \
    ASSERT_EQ(r_.code, KILN_OK) << r_.message;                                 \
  } while (0)

inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}
inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
template <typename T> std::string bytesOf(const std::vector<T> &values) {
  return std::string(reinterpret_cast<const char *>(values.data()),
                     values.size() * sizeof(T));
}

// A sparse file of `size` bytes (zeros that take no disk), after `prefix`.
inline void writeSparse(const std::string &path, const std::string &prefix, off_t size) {
  writeBytes(path, prefix);
  ASSERT_EQ(::truncate(path.c_str(), size), 0) << path;
}

// Runs `read`, which opens the FIFO `fifo` (made here) that has no writer.
// A reader that opens it blocking would wait forever: after 10 s the test
// fails, and a writer comes and goes so that the read returns.
template <typename Read> void readFifoWithoutWriter(const std::string &fifo, Read read) {
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << fifo;
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  std::thread thread([&] {
    read();
    done.set_value();
  });
  if (finished.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "opening " << fifo << " blocked: it has no writer";
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0)
      ::close(fd);
  }
  thread.join();
}

// Each test gets a fresh directory under GoogleTest's temp dir, removed after.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "kiln-runtime-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }
  // The names of the files in the temp dir, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto &entry : std::filesystem::directory_iterator(dir_))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string dir_;
};

} // namespace kiln::test

#endif // KILN_TEST_UNIT_RUNTIME_TESTUTIL_H

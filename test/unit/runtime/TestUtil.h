//===- TestUtil.h - Helpers for the runtime unit tests --------------------===//
#ifndef KILN_TEST_UNIT_RUNTIME_TESTUTIL_H
#define KILN_TEST_UNIT_RUNTIME_TESTUTIL_H

#include "kiln/runtime/status.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
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

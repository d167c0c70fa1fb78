//===- OutputTest.cpp - Output paths: kinds, links, inputs ----------------===//
//
// The rules of kiln/runtime/output.h, through the writers (kiln_npy_write_f32
// stands for all of them: they share writeFileAtomically) and through
// kiln_output_resolve / kiln_output_write. Special files are made in the
// test's own directory: a FIFO always, a character device (the numbers of
// /dev/null) only where mknod is allowed (root).
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/npy.h"
#include "kiln/runtime/output.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

using namespace kiln::test;

namespace {

class OutputTest : public TempDirTest {
protected:
  void TearDown() override {
    kiln_output_release(&output_);
    TempDirTest::TearDown();
  }
  // A small NPY file's bytes, as the writer makes them into a regular file.
  std::string expectedNpy() {
    KILN_EXPECT_OK(write(path("expected.npy")));
    std::string bytes = readBytes(path("expected.npy"));
    std::remove(path("expected.npy").c_str());
    return bytes;
  }
  kiln_status_t write(const std::string &to) {
    return kiln_npy_write_f32(to.c_str(), data_, 2, shape_);
  }
  static mode_t typeOf(const std::string &path) {
    struct stat info;
    return ::lstat(path.c_str(), &info) == 0 ? info.st_mode & S_IFMT : 0;
  }
  Result resolve(const std::string &out, std::vector<const char *> inputs = {},
                 unsigned flags = 0) {
    kiln_output_release(&output_);
    return take(kiln_output_resolve(out.c_str(), flags, inputs.data(), inputs.size(), &output_));
  }
  static void expectMessage(const Result &r, const std::string &part) {
    EXPECT_NE(r.message.find(part), std::string::npos) << "'" << part << "' not in: " << r.message;
  }

  const float data_[6] = {1, 2, 3, 4, 5, 6};
  const int64_t shape_[2] = {2, 3};
  kiln_output_t output_ = {KILN_OUTPUT_FILE, nullptr, nullptr, -1};
};

TEST_F(OutputTest, WriterReplacesTheFileALinkPointsToAndKeepsTheLink) {
  std::string expected = expectedNpy();
  ASSERT_EQ(::mkdir(path("real").c_str(), 0777), 0);
  writeBytes(path("real/y.npy"), "old");
  ASSERT_EQ(::symlink("real/y.npy", path("link.npy").c_str()), 0);
  KILN_ASSERT_OK(write(path("link.npy")));
  EXPECT_EQ(typeOf(path("link.npy")), S_IFLNK);
  EXPECT_EQ(readBytes(path("real/y.npy")), expected);
  // The temporary file was made beside the file replaced, and is gone.
  EXPECT_EQ(listing(), (std::vector<std::string>{"link.npy", "real"}));
  EXPECT_EQ(std::filesystem::directory_iterator(path("real"))->path().filename(), "y.npy");
}

TEST_F(OutputTest, WriterRefusesALinkToNothing) {
  ASSERT_EQ(::symlink("missing/y.npy", path("link.npy").c_str()), 0);
  Result r = take(write(path("link.npy")));
  EXPECT_EQ(r.code, KILN_NOT_FOUND) << r.message;
  expectMessage(r, path("link.npy") + "' is a symbolic link to a missing file");
  EXPECT_EQ(typeOf(path("link.npy")), S_IFLNK);
  EXPECT_EQ(listing(), std::vector<std::string>{"link.npy"});
}

TEST_F(OutputTest, WriterWritesAFifoInPlace) {
  std::string expected = expectedNpy();
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0666), 0);
  // A reader opened first (non-blocking), so that the writer's open does not
  // wait; the file is smaller than a pipe's buffer, so nothing else does.
  int reader = ::open(path("fifo").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0) << std::strerror(errno);
  KILN_EXPECT_OK(write(path("fifo")));
  std::string got(4096, '\0');
  ssize_t n = ::read(reader, got.data(), got.size());
  ::close(reader);
  got.resize(n > 0 ? static_cast<size_t>(n) : 0);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(typeOf(path("fifo")), S_IFIFO);
  EXPECT_EQ(listing(), std::vector<std::string>{"fifo"});
}

TEST_F(OutputTest, WriterWritesACharacterDeviceInPlace) {
  // /dev/null's numbers (1, 3), in this test's directory.
  if (::mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "mknod of a character device needs root: " << std::strerror(errno);
  KILN_EXPECT_OK(write(path("null")));
  EXPECT_EQ(typeOf(path("null")), S_IFCHR);
  EXPECT_EQ(listing(), std::vector<std::string>{"null"});
}

TEST_F(OutputTest, WriterRefusesADirectory) {
  ASSERT_EQ(::mkdir(path("out.npy").c_str(), 0777), 0);
  Result r = take(write(path("out.npy")));
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT) << r.message;
  expectMessage(r, path("out.npy") + "' is a directory");
  EXPECT_EQ(typeOf(path("out.npy")), S_IFDIR);
  EXPECT_EQ(listing(), std::vector<std::string>{"out.npy"});
}

TEST_F(OutputTest, ResolveRefusesASocket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  std::string where = path("sock");
  ASSERT_LT(where.size(), sizeof address.sun_path);
  std::memcpy(address.sun_path, where.c_str(), where.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
  Result r = resolve(where);
  ::close(fd);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT) << r.message;
  expectMessage(r, "is a socket");
}

TEST_F(OutputTest, ResolveRefusesAMissingDirectory) {
  Result r = resolve(path("no-such-dir/y.npy"));
  EXPECT_EQ(r.code, KILN_NOT_FOUND) << r.message;
  expectMessage(r, "cannot resolve its directory");
  EXPECT_EQ(output_.name, nullptr);
}

TEST_F(OutputTest, ResolveGivesTheRealPathOfANewFile) {
  ASSERT_EQ(::mkdir(path("real").c_str(), 0777), 0);
  ASSERT_EQ(::symlink("real", path("link").c_str()), 0);
  KILN_ASSERT_OK(kiln_output_resolve(path("link/../link/new.npy").c_str(), 0, nullptr, 0,
                                     &output_));
  EXPECT_EQ(output_.kind, KILN_OUTPUT_FILE);
  char *real = ::realpath(path("real").c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(std::string(output_.path), std::string(real) + "/new.npy");
  std::free(real);
  EXPECT_EQ(std::string(output_.name), path("link/../link/new.npy"));
  EXPECT_EQ(listing(), (std::vector<std::string>{"link", "real"})); // nothing created
}

TEST_F(OutputTest, ResolveRefusesAnOutputThatIsAnInput) {
  ASSERT_EQ(::mkdir(path("sub").c_str(), 0777), 0);
  writeBytes(path("x.npy"), "input");
  ASSERT_EQ(::symlink("x.npy", path("link.npy").c_str()), 0);
  ASSERT_EQ(::link(path("x.npy").c_str(), path("hard.npy").c_str()), 0);
  std::string input = path("x.npy");
  for (std::string out : {input, path("link.npy"), path("sub/../x.npy"), path("hard.npy")}) {
    Result r = resolve(out, {"", nullptr, input.c_str()});
    EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT) << out << ": " << r.message;
    expectMessage(r, "'" + out + "' is the same file as the input '" + input + "'");
  }
  EXPECT_EQ(readBytes(input), "input");
  // Another file beside it, an input that does not exist, are fine.
  KILN_EXPECT_OK(kiln_output_resolve(path("y.npy").c_str(), 0, std::vector<const char *>{
      input.c_str(), "/no/such/input"}.data(), 2, &output_));
}

TEST_F(OutputTest, DevStdoutIsTheDescriptorNotTheFileBehindIt) {
  KILN_ASSERT_OK(kiln_output_resolve("/dev/stdout", 0, nullptr, 0, &output_));
  EXPECT_EQ(output_.kind, KILN_OUTPUT_DESCRIPTOR);
  EXPECT_EQ(output_.fd, 1);
  EXPECT_EQ(output_.path, nullptr);
  EXPECT_EQ(resolve("/dev/stderr").code, KILN_OK);
  EXPECT_EQ(output_.fd, 2);
  Result r = resolve("/dev/stdout", {}, KILN_OUTPUT_REGULAR_ONLY);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  expectMessage(r, "'/dev/stdout' is descriptor 1; this output must be a regular file");
}

TEST_F(OutputTest, DescriptorIsWrittenAtItsOffsetAndLeftOpen) {
  writeBytes(path("log"), "abc");
  int fd = ::open(path("log").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  std::string name = "/dev/fd/" + std::to_string(fd);
  KILN_ASSERT_OK(kiln_output_resolve(name.c_str(), 0, nullptr, 0, &output_));
  EXPECT_EQ(output_.fd, fd);
  KILN_EXPECT_OK(kiln_output_write(&output_, "def", 3));
  EXPECT_EQ(::write(fd, "!", 1), 1); // still open
  ::close(fd);
  EXPECT_EQ(readBytes(path("log")), "abcdef!");
}

TEST_F(OutputTest, DescriptorRedirectedToAnInputIsRefused) {
  writeBytes(path("x.npy"), "input");
  int fd = ::open(path("x.npy").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  std::string input = path("x.npy"), name = "/proc/self/fd/" + std::to_string(fd);
  Result r = resolve(name, {input.c_str()});
  ::close(fd);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT) << r.message;
  expectMessage(r, "is the same file as the input");
}

TEST_F(OutputTest, RegularOnlyRefusesStreams) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0666), 0);
  Result r = resolve(path("fifo"), {}, KILN_OUTPUT_REGULAR_ONLY);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  expectMessage(r, "fifo' is a FIFO; this output must be a regular file");
  KILN_EXPECT_OK(kiln_output_resolve(path("fifo").c_str(), 0, nullptr, 0, &output_));
  EXPECT_EQ(output_.kind, KILN_OUTPUT_IN_PLACE);
  Result dev = resolve("/dev/null", {}, KILN_OUTPUT_REGULAR_ONLY);
  expectMessage(dev, "'/dev/null' is a character device; this output must be a regular file");
}

} // namespace

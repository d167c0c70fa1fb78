//===- FuzzSupport.h - what the runtime readers' fuzz targets share -----*- C++ -*-===//
//
// The safetensors, NPY and IDX fuzzers each hand an input to a reader as a
// file and check its messages; these are the pieces they have in common.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_FUZZ_FUZZSUPPORT_H
#define KILN_TEST_FUZZ_FUZZSUPPORT_H

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace kiln::fuzz {

/// Aborts (libFuzzer records the input) with `fuzzer: what`.
[[noreturn]] inline void abortWith(const char *fuzzer, const char *what) {
  std::fprintf(stderr, "%s: %s\n", fuzzer, what);
  std::abort();
}

/// The input as a file: a memfd named `name`, opened through /proc (no
/// disk traffic).
struct MemFile {
  int fd = -1;
  std::string path;
  MemFile(const char *name, const uint8_t *data, size_t size) {
    fd = memfd_create(name, 0);
    if (fd < 0)
      abortWith(name, "memfd_create failed");
    for (size_t done = 0; done < size;) {
      ssize_t n = write(fd, data + done, size - done);
      if (n <= 0)
        abortWith(name, "write to memfd failed");
      done += static_cast<size_t>(n);
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  MemFile(const MemFile &) = delete;
  MemFile &operator=(const MemFile &) = delete;
  ~MemFile() { close(fd); }
};

/// Whether `text` holds a control character a terminal would act on (C0,
/// DEL, or a C1 control as UTF-8's C2 80-9F): runtime messages escape them.
inline bool hasControlCharacter(const char *text) {
  for (const unsigned char *p = reinterpret_cast<const unsigned char *>(text); *p; ++p)
    if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
      return true;
  return false;
}

} // namespace kiln::fuzz

#endif // KILN_TEST_FUZZ_FUZZSUPPORT_H

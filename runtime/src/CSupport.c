/*===- CSupport.c - Internal helpers of the runtime's C part -------------===*/
#include "CSupport.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *kiln_format_shape(const int64_t *shape, size_t rank, char *buffer) {
  size_t used = 0;
  buffer[used++] = '[';
  for (size_t i = 0; i < rank && i < KILN_MAX_RANK; ++i)
    used += (size_t)snprintf(buffer + used, KILN_SHAPE_TEXT_SIZE - used,
                             "%s%" PRId64, i ? ", " : "", shape[i]);
  snprintf(buffer + used, KILN_SHAPE_TEXT_SIZE - used, "]");
  return buffer;
}

void *kiln_aligned_alloc(size_t size) {
  /* aligned_alloc wants a multiple of the alignment; round up (at least one
   * block, so that empty arrays still have a valid, non-null pointer). */
  size_t rounded = size / KILN_ALIGNMENT * KILN_ALIGNMENT;
  if (rounded < size || size == 0)
    rounded += KILN_ALIGNMENT;
  if (rounded < size) /* wrapped around: no such allocation is possible */
    return NULL;
  return aligned_alloc(KILN_ALIGNMENT, rounded);
}

kiln_status_code_t kiln_status_code_for_errno(int err) {
  return err == ENOENT || err == ENOTDIR ? KILN_NOT_FOUND : KILN_IO_ERROR;
}

const char *kiln_errno_text(int err, char *buffer, size_t size) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  /* The GNU strerror_r returns the message, which need not be in `buffer`. */
  return strerror_r(err, buffer, size);
#else
  if (strerror_r(err, buffer, size) != 0)
    snprintf(buffer, size, "error %d", err);
  return buffer;
#endif
}

void kiln_input_file_close(kiln_input_file_t *file) {
  if (file->fd >= 0)
    close(file->fd);
  file->fd = -1;
}

const char *kiln_file_kind(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

kiln_status_t kiln_input_file_open(kiln_input_file_t *file, const char *path) {
  char text[256];
  file->path = path;
  file->size = 0;
  /* Non-blocking, so that opening a FIFO without a writer returns at once
   * (a blocking open waits for a writer forever); the type is checked before
   * anything is read, since /dev/zero or /dev/urandom never end and a FIFO
   * may never speak. Regular files ignore O_NONBLOCK; it is cleared all the
   * same, so that reads behave as on any descriptor. */
  file->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (file->fd < 0) {
    int err = errno;
    return kiln_status_make(kiln_status_code_for_errno(err), "%s: cannot open: %s",
                            path, kiln_errno_text(err, text, sizeof text));
  }
  struct stat info;
  if (fstat(file->fd, &info) != 0) {
    int err = errno;
    kiln_input_file_close(file);
    return kiln_status_make(KILN_IO_ERROR, "%s: cannot stat: %s", path,
                            kiln_errno_text(err, text, sizeof text));
  }
  if (!S_ISREG(info.st_mode)) {
    kiln_input_file_close(file);
    return kiln_status_make(KILN_INVALID_ARGUMENT,
                            "%s: cannot read: it is %s, not a regular file", path,
                            kiln_file_kind(info.st_mode));
  }
  int flags = fcntl(file->fd, F_GETFL);
  if (flags < 0 || fcntl(file->fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    int err = errno;
    kiln_input_file_close(file);
    return kiln_status_make(KILN_IO_ERROR, "%s: cannot open: %s", path,
                            kiln_errno_text(err, text, sizeof text));
  }
  file->size = (uint64_t)info.st_size;
  return NULL;
}

kiln_status_t kiln_input_file_read_at(const kiln_input_file_t *file,
                                      uint64_t offset, void *dst, size_t n) {
  unsigned char *out = dst;
  while (n > 0) {
    ssize_t got = pread(file->fd, out, n, (off_t)offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int err = errno;
      char text[256];
      return kiln_status_make(KILN_IO_ERROR, "%s: read failed: %s", file->path,
                              kiln_errno_text(err, text, sizeof text));
    }
    if (got == 0)
      return kiln_status_make(KILN_IO_ERROR, "%s: file shrank while being read",
                              file->path);
    out += got;
    offset += (uint64_t)got;
    n -= (size_t)got;
  }
  return NULL;
}

/* Appends `n` bytes of `piece` to `out` (of `size` bytes) at `*written` if
 * they fit whole with room for the NUL, so that an escape is never cut in
 * half; once one does not fit, nothing more is written. Counts them in
 * `*used` either way. */
static void putPiece(const void *piece, size_t n, char *out, size_t size,
                     size_t *written, size_t *used) {
  if (out && *written == *used && *used + n < size) {
    memcpy(out + *written, piece, n);
    *written += n;
  }
  *used += n;
}

size_t kiln_escape_controls(const char *text, char *out, size_t size) {
  size_t used = 0, written = 0;
  char escape[8];
  int continuation = 0; /* bytes still expected in a UTF-8 sequence */
  for (const unsigned char *p = (const unsigned char *)text; *p; ++p) {
    unsigned char byte = *p;
    if (continuation > 0 && (byte & 0xC0) == 0x80) {
      --continuation;
      putPiece(p, 1, out, size, &written, &used);
      continue;
    }
    continuation = 0;
    if (byte == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
      /* U+0080-U+009F, the C1 controls (CSI is U+009B) */
      snprintf(escape, sizeof escape, "\\u00%02x", p[1]);
      putPiece(escape, 6, out, size, &written, &used);
      ++p;
      continue;
    }
    if (byte < 0x20 || byte == 0x7F || (byte >= 0x80 && byte < 0xC0) ||
        (byte == 0xC2 && (p[1] & 0xC0) != 0x80)) {
      /* C0 controls (newline and tab too: a message is one line), DEL, and
       * a continuation byte without its lead, which a terminal that is not
       * in UTF-8 mode may take for a C1 control (and 0xC2 without one, as
       * kilnc's TerminalSafeStream does). */
      snprintf(escape, sizeof escape, "\\x%02x", byte);
      putPiece(escape, 4, out, size, &written, &used);
      continue;
    }
    if (byte >= 0xC0)
      continuation = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : 1;
    putPiece(p, 1, out, size, &written, &used);
  }
  if (out && size > 0)
    out[written] = '\0';
  return used;
}

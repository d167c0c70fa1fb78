/*===- Status.c - kiln_status_t -------------------------------------------===*/
#include "CSupport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct kiln_status_s {
  kiln_status_code_t code;
  char message[]; /* NUL-terminated */
};

/* Returned when a status cannot be allocated, so reporting out-of-memory
 * never needs memory. kiln_status_free recognises and keeps it. */
static struct kiln_status_s gOutOfMemory = {KILN_OUT_OF_MEMORY};

kiln_status_t kiln_status_out_of_memory(void) { return &gOutOfMemory; }

/* vprintf into a new malloc'ed string of `prefix` bytes plus the text, the
 * text starting at offset `prefix`; NULL if memory runs out. A format that
 * vsnprintf refuses (a message above INT_MAX bytes) gives an empty text. */
static char *formatAfter(size_t prefix, const char *format, va_list args) {
  va_list again;
  va_copy(again, args);
  int length = vsnprintf(NULL, 0, format, args);
  size_t size = length < 0 ? 1 : (size_t)length + 1;
  char *buffer = malloc(prefix + size);
  if (buffer) {
    buffer[prefix] = '\0';
    if (length >= 0)
      vsnprintf(buffer + prefix, size, format, again);
  }
  va_end(again);
  return buffer;
}

kiln_status_t kiln_status_make(kiln_status_code_t code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  char *text = formatAfter(0, format, args);
  va_end(args);
  if (!text)
    return &gOutOfMemory;
  /* Escaped here, once for every message: paths, tensor names, dtypes and
   * header text come from files and users, and callers print messages. */
  size_t length = kiln_escape_controls(text, NULL, 0);
  struct kiln_status_s *status = malloc(sizeof(struct kiln_status_s) + length + 1);
  if (status) {
    status->code = code;
    kiln_escape_controls(text, status->message, length + 1);
  }
  free(text);
  return status ? status : &gOutOfMemory;
}

char *kiln_format(const char *format, ...) {
  va_list args;
  va_start(args, format);
  char *text = formatAfter(0, format, args);
  va_end(args);
  return text;
}

kiln_status_code_t kiln_status_code(kiln_status_t status) {
  return status ? status->code : KILN_OK;
}

const char *kiln_status_message(kiln_status_t status) {
  if (status == &gOutOfMemory)
    return "out of memory";
  return status ? status->message : "";
}

const char *kiln_status_code_name(kiln_status_code_t code) {
  switch (code) {
  case KILN_OK: return "OK";
  case KILN_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case KILN_NOT_FOUND: return "NOT_FOUND";
  case KILN_ALREADY_EXISTS: return "ALREADY_EXISTS";
  case KILN_IO_ERROR: return "IO_ERROR";
  case KILN_DATA_LOSS: return "DATA_LOSS";
  case KILN_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
  case KILN_OUT_OF_RANGE: return "OUT_OF_RANGE";
  case KILN_UNIMPLEMENTED: return "UNIMPLEMENTED";
  case KILN_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void kiln_status_free(kiln_status_t status) {
  if (status != &gOutOfMemory)
    free(status);
}

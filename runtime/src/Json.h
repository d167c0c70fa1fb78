/*===- Json.h - A strict, streaming JSON parser ---------------------------===*
 *
 * RFC 8259 JSON, parsed by recursive descent and reported event by event to
 * a handler (like a SAX parser), so that a caller checking a schema can stop
 * at the first value it does not expect and never builds a tree a hostile
 * input could inflate. What it accepts and rejects follows nlohmann_json,
 * which Kiln used before: strings must be valid UTF-8 (no overlong forms, no
 * encoded surrogates, nothing above U+10FFFF) with control characters
 * escaped, \u escapes must pair surrogates, numbers follow the RFC grammar
 * (no leading zeros, '+', '.5' or '1.'), a number too large for a double is
 * an error, one leading UTF-8 byte order mark is skipped, and nothing but
 * whitespace may follow the value. Duplicate keys are the handler's to
 * detect (it sees every key). Not installed.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_RUNTIME_SRC_JSON_H
#define KILN_RUNTIME_SRC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Objects and arrays may nest at most this deep. The parser recurses once
 * per level, so the limit bounds its stack use on inputs like "[[[[...". */
#define KILN_JSON_MAX_DEPTH 128

typedef enum kiln_json_number_kind_e {
  KILN_JSON_UNSIGNED, /* an integer in [0, 2^64) */
  KILN_JSON_NEGATIVE, /* an integer in [-2^63, 0], written with '-' */
  KILN_JSON_FLOAT     /* anything else that is finite as a double */
} kiln_json_number_kind_t;

typedef struct kiln_json_number_t {
  kiln_json_number_kind_t kind;
  uint64_t unsigned_value; /* KILN_JSON_UNSIGNED */
  int64_t negative_value;  /* KILN_JSON_NEGATIVE */
  const char *text;        /* as written in the input (not NUL-terminated) */
  size_t length;
} kiln_json_number_t;

/* Each callback returns false to stop parsing (the handler keeps its own
 * reason). Strings and keys arrive decoded, as `length` bytes of UTF-8 that
 * may contain NUL (from \u0000), followed by a NUL; they are valid only
 * during the call. */
typedef struct kiln_json_handler_t {
  bool (*start_object)(void *context);
  bool (*end_object)(void *context);
  bool (*start_array)(void *context);
  bool (*end_array)(void *context);
  bool (*key)(void *context, const char *text, size_t length);
  bool (*string)(void *context, const char *text, size_t length);
  bool (*number)(void *context, const kiln_json_number_t *number);
  bool (*boolean)(void *context, bool value);
  bool (*null)(void *context);
} kiln_json_handler_t;

typedef enum kiln_json_result_e {
  KILN_JSON_OK,
  KILN_JSON_STOPPED,      /* a callback returned false */
  KILN_JSON_INVALID,      /* not JSON; *out_error says why and where */
  KILN_JSON_OUT_OF_MEMORY
} kiln_json_result_t;

/* Parses the `size` bytes at `text` as one JSON value. On KILN_JSON_INVALID,
 * *out_error is a malloc'ed message ("unexpected end of input at byte 7")
 * that the caller frees; otherwise it is NULL. */
kiln_json_result_t kiln_json_parse(const char *text, size_t size,
                                   const kiln_json_handler_t *handler,
                                   void *context, char **out_error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_SRC_JSON_H */

/*===- Json.c - A strict, streaming JSON parser ---------------------------===*
 *
 * One function per grammar rule of RFC 8259, each starting with its rule.
 * Every rule returns false once parsing is over (a callback stopped it, the
 * input is invalid, or memory ran out); `result` says which.
 *
 *===----------------------------------------------------------------------===*/
#include "Json.h"

#include "CSupport.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Parser {
  const unsigned char *begin, *p, *end;
  const kiln_json_handler_t *handler;
  void *context;
  char *string; /* the string being decoded, NUL-terminated */
  size_t length, capacity;
  kiln_json_result_t result;
  char *error;
} Parser;

static bool fail(Parser *P, const unsigned char *at, const char *message) {
  P->result = KILN_JSON_INVALID;
  P->error = kiln_format("%s at byte %zu", message, (size_t)(at - P->begin));
  if (!P->error)
    P->result = KILN_JSON_OUT_OF_MEMORY;
  return false;
}

static bool stopped(Parser *P) {
  P->result = KILN_JSON_STOPPED;
  return false;
}

static bool outOfMemory(Parser *P) {
  P->result = KILN_JSON_OUT_OF_MEMORY;
  return false;
}

/* ws := (' ' | '\t' | '\n' | '\r')* */
static void skipWhitespace(Parser *P) {
  while (P->p < P->end &&
         (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
    ++P->p;
}

static bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Appends `n` bytes to the string being decoded (keeping room for a NUL). */
static bool append(Parser *P, const void *bytes, size_t n) {
  if (P->capacity - P->length <= n) {
    size_t capacity = P->capacity ? P->capacity : 64;
    while (capacity - P->length <= n)
      if (__builtin_mul_overflow(capacity, 2, &capacity))
        return outOfMemory(P);
    char *grown = realloc(P->string, capacity);
    if (!grown)
      return outOfMemory(P);
    P->string = grown;
    P->capacity = capacity;
  }
  memcpy(P->string + P->length, bytes, n);
  P->length += n;
  P->string[P->length] = '\0';
  return true;
}

/* The code point as 1 to 4 bytes of UTF-8. */
static bool appendCodePoint(Parser *P, uint32_t c) {
  unsigned char bytes[4];
  size_t n;
  if (c < 0x80) {
    bytes[0] = (unsigned char)c;
    n = 1;
  } else if (c < 0x800) {
    bytes[0] = (unsigned char)(0xc0 | c >> 6);
    bytes[1] = (unsigned char)(0x80 | (c & 0x3f));
    n = 2;
  } else if (c < 0x10000) {
    bytes[0] = (unsigned char)(0xe0 | c >> 12);
    bytes[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    bytes[2] = (unsigned char)(0x80 | (c & 0x3f));
    n = 3;
  } else {
    bytes[0] = (unsigned char)(0xf0 | c >> 18);
    bytes[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
    bytes[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    bytes[3] = (unsigned char)(0x80 | (c & 0x3f));
    n = 4;
  }
  return append(P, bytes, n);
}

/* hex4 := 4 * [0-9a-fA-F], after "\u" at P->p */
static bool parseHex4(Parser *P, uint32_t *out) {
  if (P->end - P->p < 4)
    return fail(P, P->end, "unexpected end of input in a \\u escape");
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i, ++P->p) {
    unsigned char c = *P->p;
    uint32_t digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return fail(P, P->p, "a \\u escape needs 4 hexadecimal digits");
    value = value << 4 | digit;
  }
  *out = value;
  return true;
}

/* unicode-escape := 'u' hex4 | 'u' high-surrogate '\' 'u' low-surrogate,
 * after the backslash. A surrogate only makes sense as half of a pair; alone
 * it encodes no character, so it is an error (as in nlohmann and Python). */
static bool parseUnicodeEscape(Parser *P) {
  const unsigned char *start = P->p - 1;
  ++P->p; /* 'u' */
  uint32_t c;
  if (!parseHex4(P, &c))
    return false;
  if (c >= 0xdc00 && c <= 0xdfff)
    return fail(P, start, "a low surrogate \\uDC00-\\uDFFF must follow a high one");
  if (c >= 0xd800 && c <= 0xdbff) {
    if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u')
      return fail(P, P->p, "a high surrogate \\uD800-\\uDBFF must be followed "
                           "by a \\u escape of a low surrogate");
    P->p += 2;
    uint32_t low;
    if (!parseHex4(P, &low))
      return false;
    if (low < 0xdc00 || low > 0xdfff)
      return fail(P, P->p - 6, "a high surrogate \\uD800-\\uDBFF must be followed "
                               "by a low surrogate \\uDC00-\\uDFFF");
    c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
  }
  return appendCodePoint(P, c);
}

/* escape := '\' ('"' | '\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | unicode-escape) */
static bool parseEscape(Parser *P) {
  const unsigned char *start = P->p++;
  if (P->p == P->end)
    return fail(P, P->p, "unexpected end of input in an escape");
  char c;
  switch (*P->p) {
  case '"': c = '"'; break;
  case '\\': c = '\\'; break;
  case '/': c = '/'; break;
  case 'b': c = '\b'; break;
  case 'f': c = '\f'; break;
  case 'n': c = '\n'; break;
  case 'r': c = '\r'; break;
  case 't': c = '\t'; break;
  case 'u': return parseUnicodeEscape(P);
  default:
    return fail(P, start, "invalid escape (allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t "
                          "\\u)");
  }
  ++P->p;
  return append(P, &c, 1);
}

/* The length of the well-formed UTF-8 sequence at `s` (which starts with a
 * byte >= 0x80), or 0. The ranges are those of RFC 3629's table: no overlong
 * forms (C0, C1, E0 80-9F, F0 80-8F), no surrogates (ED A0-BF), nothing
 * above U+10FFFF (F4 90-BF, F5-FF). */
static size_t utf8Length(const unsigned char *s, const unsigned char *end) {
  unsigned char c = s[0];
  size_t n;
  unsigned char low = 0x80, high = 0xbf; /* range of the second byte */
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      low = 0xa0;
    else if (c == 0xed)
      high = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      low = 0x90;
    else if (c == 0xf4)
      high = 0x8f;
  } else
    return 0;
  if ((size_t)(end - s) < n || s[1] < low || s[1] > high)
    return 0;
  for (size_t i = 2; i < n; ++i)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

/* string := '"' (unescaped | escape)* '"', decoded into P->string;
 * unescaped := U+0020-U+10FFFF except '"' and '\', as UTF-8 */
static bool parseString(Parser *P) {
  P->length = 0;
  if (!append(P, "", 0))
    return false;
  ++P->p; /* '"' */
  for (;;) {
    const unsigned char *run = P->p;
    while (P->p < P->end && *P->p >= 0x20 && *P->p < 0x80 && *P->p != '"' &&
           *P->p != '\\')
      ++P->p;
    if (P->p > run && !append(P, run, (size_t)(P->p - run)))
      return false;
    if (P->p == P->end)
      return fail(P, P->p, "unexpected end of input in a string");
    unsigned char c = *P->p;
    if (c == '"') {
      ++P->p;
      return true;
    }
    if (c == '\\') {
      if (!parseEscape(P))
        return false;
    } else if (c < 0x20) {
      return fail(P, P->p, "control characters U+0000-U+001F in a string must "
                           "be escaped");
    } else {
      size_t n = utf8Length(P->p, P->end);
      if (n == 0)
        return fail(P, P->p, "invalid UTF-8 in a string");
      if (!append(P, P->p, n))
        return false;
      P->p += n;
    }
  }
}

/* Whether the number `text` overflows a double. strtod reads the decimal
 * point of the current locale, so '.' is swapped for it, as nlohmann does. */
static bool overflowsDouble(Parser *P, const unsigned char *text, size_t n,
                            bool *out) {
  char *copy = malloc(n + 1);
  if (!copy)
    return outOfMemory(P);
  memcpy(copy, text, n);
  copy[n] = '\0';
  char point = localeconv()->decimal_point[0];
  char *dot = memchr(copy, '.', n);
  if (dot && point)
    *dot = point;
  double value = strtod(copy, NULL);
  free(copy);
  *out = isinf(value);
  return true;
}

/* number := '-'? ('0' | [1-9] [0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)?
 * An integer is reported as such when it fits in 64 bits (unsigned, or
 * signed when negative), otherwise as a float, as nlohmann does. */
static bool parseNumber(Parser *P) {
  const unsigned char *start = P->p;
  kiln_json_number_t number = {KILN_JSON_UNSIGNED, 0, 0, (const char *)start, 0};
  bool negative = *P->p == '-';
  if (negative)
    ++P->p;
  if (P->p == P->end || !isDigit(*P->p))
    return fail(P, P->p, "invalid number: expected a digit");
  uint64_t magnitude = 0;
  bool fits = true;
  if (*P->p == '0')
    ++P->p;
  else
    for (; P->p < P->end && isDigit(*P->p); ++P->p)
      fits = fits && !__builtin_mul_overflow(magnitude, 10, &magnitude) &&
             !__builtin_add_overflow(magnitude, (uint64_t)(*P->p - '0'), &magnitude);
  bool isFloat = false;
  if (P->p < P->end && *P->p == '.') {
    ++P->p;
    if (P->p == P->end || !isDigit(*P->p))
      return fail(P, P->p, "invalid number: expected a digit after '.'");
    while (P->p < P->end && isDigit(*P->p))
      ++P->p;
    isFloat = true;
  }
  if (P->p < P->end && (*P->p == 'e' || *P->p == 'E')) {
    ++P->p;
    if (P->p < P->end && (*P->p == '+' || *P->p == '-'))
      ++P->p;
    if (P->p == P->end || !isDigit(*P->p))
      return fail(P, P->p, "invalid number: expected a digit in the exponent");
    while (P->p < P->end && isDigit(*P->p))
      ++P->p;
    isFloat = true;
  }
  number.length = (size_t)(P->p - start);
  if (negative && magnitude > (uint64_t)INT64_MAX + 1)
    fits = false;
  if (isFloat || !fits) {
    bool overflows;
    if (!overflowsDouble(P, start, number.length, &overflows))
      return false;
    if (overflows) {
      P->result = KILN_JSON_INVALID;
      P->error = kiln_format("number overflow parsing '%.*s%s' at byte %zu",
                             number.length > 40 ? 40 : (int)number.length,
                             number.text, number.length > 40 ? "..." : "",
                             (size_t)(start - P->begin));
      if (!P->error)
        P->result = KILN_JSON_OUT_OF_MEMORY;
      return false;
    }
    number.kind = KILN_JSON_FLOAT;
  } else if (negative) {
    number.kind = KILN_JSON_NEGATIVE;
    /* -2^63 has no positive counterpart, so negate in unsigned arithmetic. */
    number.negative_value = (int64_t)(0 - magnitude);
  } else {
    number.unsigned_value = magnitude;
  }
  return P->handler->number(P->context, &number) || stopped(P);
}

/* literal := "true" | "false" | "null" */
static bool parseLiteral(Parser *P) {
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; ++i) {
    size_t n = strlen(words[i]);
    if ((size_t)(P->end - P->p) >= n && memcmp(P->p, words[i], n) == 0) {
      P->p += n;
      bool going = i == 2 ? P->handler->null(P->context)
                          : P->handler->boolean(P->context, i == 0);
      return going || stopped(P);
    }
  }
  return fail(P, P->p, "invalid literal");
}

static bool parseValue(Parser *P, int depth);
_Static_assert(KILN_JSON_MAX_DEPTH == 128, "the message in parseValue names the limit");

/* object := '{' ws (string ws ':' value (',' ws string ws ':' value)*)? '}'
 * The key goes to the handler before the ':' is read, as in nlohmann. */
static bool parseObject(Parser *P, int depth) {
  ++P->p;
  if (!P->handler->start_object(P->context))
    return stopped(P);
  skipWhitespace(P);
  if (P->p < P->end && *P->p == '}') {
    ++P->p;
    return P->handler->end_object(P->context) || stopped(P);
  }
  for (;;) {
    skipWhitespace(P);
    if (P->p == P->end)
      return fail(P, P->p, "unexpected end of input; expected a string key");
    if (*P->p != '"')
      return fail(P, P->p, "expected a string key");
    if (!parseString(P))
      return false;
    if (!P->handler->key(P->context, P->string, P->length))
      return stopped(P);
    skipWhitespace(P);
    if (P->p == P->end || *P->p != ':')
      return fail(P, P->p, P->p == P->end ? "unexpected end of input; expected ':'"
                                          : "expected ':' after a key");
    ++P->p;
    if (!parseValue(P, depth + 1))
      return false;
    skipWhitespace(P);
    if (P->p < P->end && *P->p == ',') {
      ++P->p;
      continue;
    }
    if (P->p < P->end && *P->p == '}') {
      ++P->p;
      return P->handler->end_object(P->context) || stopped(P);
    }
    return fail(P, P->p, P->p == P->end ? "unexpected end of input; expected ',' or '}'"
                                        : "expected ',' or '}' after an object member");
  }
}

/* array := '[' ws (value (',' value)*)? ']' */
static bool parseArray(Parser *P, int depth) {
  ++P->p;
  if (!P->handler->start_array(P->context))
    return stopped(P);
  skipWhitespace(P);
  if (P->p < P->end && *P->p == ']') {
    ++P->p;
    return P->handler->end_array(P->context) || stopped(P);
  }
  for (;;) {
    if (!parseValue(P, depth + 1))
      return false;
    skipWhitespace(P);
    if (P->p < P->end && *P->p == ',') {
      ++P->p;
      continue;
    }
    if (P->p < P->end && *P->p == ']') {
      ++P->p;
      return P->handler->end_array(P->context) || stopped(P);
    }
    return fail(P, P->p, P->p == P->end ? "unexpected end of input; expected ',' or ']'"
                                        : "expected ',' or ']' after an array element");
  }
}

/* value := ws (object | array | string | number | literal) ws
 * `depth` counts the objects and arrays around the value. */
static bool parseValue(Parser *P, int depth) {
  skipWhitespace(P);
  if (P->p == P->end)
    return fail(P, P->p, "unexpected end of input; expected a value");
  switch (*P->p) {
  case '{':
  case '[':
    if (depth >= KILN_JSON_MAX_DEPTH)
      return fail(P, P->p, "objects and arrays nest deeper than the limit of "
                           "128 levels");
    return *P->p == '{' ? parseObject(P, depth) : parseArray(P, depth);
  case '"':
    if (!parseString(P))
      return false;
    return P->handler->string(P->context, P->string, P->length) || stopped(P);
  case '-':
  case '0': case '1': case '2': case '3': case '4':
  case '5': case '6': case '7': case '8': case '9':
    return parseNumber(P);
  default:
    return parseLiteral(P);
  }
}

/* text := bom? value, where bom is UTF-8's byte order mark EF BB BF */
kiln_json_result_t kiln_json_parse(const char *text, size_t size,
                                   const kiln_json_handler_t *handler,
                                   void *context, char **out_error) {
  Parser P = {0};
  P.begin = P.p = (const unsigned char *)text;
  P.end = P.begin + size;
  P.handler = handler;
  P.context = context;
  P.result = KILN_JSON_OK;
  if (size >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    P.p += 3;
  if (parseValue(&P, 0)) {
    skipWhitespace(&P);
    if (P.p != P.end)
      fail(&P, P.p, "unexpected characters after the value");
  }
  free(P.string);
  *out_error = P.error;
  return P.result;
}

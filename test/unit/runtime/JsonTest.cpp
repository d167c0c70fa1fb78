//===- JsonTest.cpp - The header's JSON parser (runtime/src/Json.h) -------===//
//
// The parser alone, with a handler that records every event, for what the
// safetensors schema never lets through to it: deep nesting, every kind of
// value, and the grammar's corners. SafetensorsHostileTest covers the same
// parser behind kiln_safetensors_open.
//
//===----------------------------------------------------------------------===//
#include "Json.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

struct Recorder {
  std::string events;
  std::string stopAtKey; // a key whose callback returns false
};

Recorder &recorder(void *context) { return *static_cast<Recorder *>(context); }
bool add(void *context, const std::string &event) {
  Recorder &r = recorder(context);
  r.events += (r.events.empty() ? "" : " ") + event;
  return true;
}

const kiln_json_handler_t kRecording = {
    [](void *c) { return add(c, "{"); },
    [](void *c) { return add(c, "}"); },
    [](void *c) { return add(c, "["); },
    [](void *c) { return add(c, "]"); },
    [](void *c, const char *text, size_t length) {
      std::string key(text, length);
      return add(c, "k:" + key) && key != recorder(c).stopAtKey;
    },
    [](void *c, const char *text, size_t length) {
      return add(c, "s:" + std::string(text, length));
    },
    [](void *c, const kiln_json_number_t *n) {
      std::string text(n->text, n->length);
      switch (n->kind) {
      case KILN_JSON_UNSIGNED: return add(c, "u:" + std::to_string(n->unsigned_value));
      case KILN_JSON_NEGATIVE: return add(c, "i:" + std::to_string(n->negative_value));
      case KILN_JSON_FLOAT: return add(c, "f:" + text);
      }
      return false;
    },
    [](void *c, bool value) { return add(c, value ? "true" : "false"); },
    [](void *c) { return add(c, "null"); },
};

struct Parsed {
  kiln_json_result_t result;
  std::string events;
  std::string error;
};

Parsed parse(const std::string &text, const std::string &stopAtKey = "") {
  Recorder r{"", stopAtKey};
  char *error = nullptr;
  kiln_json_result_t result =
      kiln_json_parse(text.data(), text.size(), &kRecording, &r, &error);
  Parsed parsed{result, r.events, error ? error : ""};
  std::free(error);
  return parsed;
}

// The events of `text`, which must parse.
std::string events(const std::string &text) {
  Parsed p = parse(text);
  EXPECT_EQ(p.result, KILN_JSON_OK) << text << ": " << p.error;
  return p.events;
}

// The error for `text`, which must be invalid.
std::string error(const std::string &text) {
  Parsed p = parse(text);
  EXPECT_EQ(p.result, KILN_JSON_INVALID) << testing::PrintToString(text);
  return p.error;
}

TEST(JsonTest, EveryKindOfValue) {
  EXPECT_EQ(events(R"({"a":[1,-2,1.5,"x",true,false,null,{},[]]})"),
            "{ k:a [ u:1 i:-2 f:1.5 s:x true false null { } [ ] ] }");
}

TEST(JsonTest, ScalarsAtTheTop) {
  EXPECT_EQ(events(" 7 "), "u:7");
  EXPECT_EQ(events(R"("s")"), "s:s");
  EXPECT_EQ(events("null"), "null");
}

TEST(JsonTest, IntegersAtThe64BitBoundaries) {
  EXPECT_EQ(events("18446744073709551615"), "u:18446744073709551615");
  EXPECT_EQ(events("-9223372036854775808"), "i:-9223372036854775808");
  // One beyond: reported as floats, as nlohmann does.
  EXPECT_EQ(events("18446744073709551616"), "f:18446744073709551616");
  EXPECT_EQ(events("-9223372036854775809"), "f:-9223372036854775809");
}

TEST(JsonTest, NegativeZeroIsANegativeInteger) {
  EXPECT_EQ(events("-0"), "i:0");
}

TEST(JsonTest, FloatsKeepTheirText) {
  EXPECT_EQ(events("[0.5,1e3,1E-3,-2.5e+10,1e-400]"),
            "[ f:0.5 f:1e3 f:1E-3 f:-2.5e+10 f:1e-400 ]");
}

TEST(JsonTest, NumberTooLargeForADoubleIsAnError) {
  EXPECT_NE(error("1e400").find("number overflow parsing '1e400'"), std::string::npos);
  EXPECT_NE(error("-1e400").find("number overflow"), std::string::npos);
  EXPECT_NE(error(std::string(400, '9')).find("number overflow"), std::string::npos);
}

TEST(JsonTest, MalformedNumbers) {
  for (const char *text : {"01", "-01", "+1", ".5", "1.", "1.e3", "1e", "1e+", "-", "--1",
                           "0x10", "NaN", "Infinity", "-Infinity", "1_000"})
    error(text);
}

TEST(JsonTest, MalformedLiteralsAndStructure) {
  for (const char *text :
       {"", " ", "tru", "nul", "True", "{", "[", "[1", "[1,]", "{\"a\":1,}", "{\"a\"}",
        "{\"a\" 1}", "{a:1}", "{'a':1}", "[1 2]", "{} {}", "{}x", "/* c */ {}", "{}//",
        "\"a", "[\"a\",]"})
    error(text);
}

TEST(JsonTest, ErrorsSayWhere) {
  EXPECT_NE(error("[1, x]").find("at byte 4"), std::string::npos) << error("[1, x]");
  EXPECT_NE(error("{\"a\":1").find("end of input"), std::string::npos);
}

TEST(JsonTest, EveryEscape) {
  EXPECT_EQ(events(R"("\"\\\/\b\f\n\r\t")"), "s:\"\\/\b\f\n\r\t");
  EXPECT_EQ(events(R"("\u0041\u00e9\u20AC")"), "s:A\xc3\xa9\xe2\x82\xac");
}

TEST(JsonTest, EscapedNulIsKept) {
  Parsed p = parse(R"("a\u0000b")");
  ASSERT_EQ(p.result, KILN_JSON_OK);
  EXPECT_EQ(p.events, std::string("s:a\0b", 5));
}

TEST(JsonTest, SurrogatePairsBecomeOneCodePoint) {
  EXPECT_EQ(events(R"("\ud83d\ude00")"), "s:\xf0\x9f\x98\x80");     // U+1F600
  EXPECT_EQ(events(R"("\uDBFF\uDFFF")"), "s:\xf4\x8f\xbf\xbf");     // U+10FFFF
}

TEST(JsonTest, UnpairedSurrogatesAreErrors) {
  for (const char *text : {R"("\ud800")", R"("\ud800x")", R"("\ud800\n")",
                           R"("\ud800\u0041")", R"("\ud800\ud800")", R"("\udc00")",
                           R"("\ud800\u12")"})
    error(text);
  EXPECT_NE(error(R"("\udc00")").find("low surrogate"), std::string::npos);
  EXPECT_NE(error(R"("\ud800\u0041")").find("high surrogate"), std::string::npos);
}

TEST(JsonTest, BadEscapes) {
  for (const char *text : {R"("\x41")", R"("\U0041")", R"("\u004")", R"("\u00G1")",
                           R"("\)", "\"\\\x01\""})
    error(text);
}

TEST(JsonTest, RawUtf8IsCheckedLikeRfc3629) {
  EXPECT_EQ(events("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                   "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\x7f\""),
            "s:\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
            "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\x7f");
  for (const char *bad : {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41",
                          "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xe1\x80",
                          "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                          "\xff", "\xfe"}) {
    SCOPED_TRACE(testing::PrintToString(std::string(bad)));
    EXPECT_NE(error("\"" + std::string(bad) + "\"").find("UTF-8"), std::string::npos);
  }
}

TEST(JsonTest, ControlCharactersMustBeEscaped) {
  for (char c : {'\0', '\t', '\n', '\x1f'})
    EXPECT_NE(error(std::string("\"") + c + "\"").find("control character"),
              std::string::npos);
}

TEST(JsonTest, NestingUpToTheLimit) {
  int depth = KILN_JSON_MAX_DEPTH;
  EXPECT_EQ(parse(std::string(depth, '[') + std::string(depth, ']')).result, KILN_JSON_OK);
  std::string nested;
  for (int i = 0; i < depth; ++i)
    nested += "{\"a\":";
  EXPECT_EQ(parse(nested + "1" + std::string(depth, '}')).result, KILN_JSON_OK);
}

TEST(JsonTest, NestingBeyondTheLimitIsAnError) {
  int depth = KILN_JSON_MAX_DEPTH + 1;
  EXPECT_NE(error(std::string(depth, '[') + std::string(depth, ']')).find("nest deeper"),
            std::string::npos);
  // Far beyond: stops at the limit instead of recursing (and overflowing).
  EXPECT_NE(error(std::string(10000000, '[')).find("nest deeper"), std::string::npos);
}

TEST(JsonTest, ByteOrderMarkOnlyAtTheStart) {
  EXPECT_EQ(events("\xef\xbb\xbf{}"), "{ }");
  error("\xef\xbb{}");
  error(" \xef\xbb\xbf{}");
  error("\xef\xbb\xbf\xef\xbb\xbf{}");
}

TEST(JsonTest, DuplicateKeysReachTheHandler) {
  // Detecting them is the handler's job; the parser must not drop either.
  EXPECT_EQ(events(R"({"a":1,"a":2})"), "{ k:a u:1 k:a u:2 }");
}

TEST(JsonTest, HandlerStopsParsing) {
  // The syntax error after the key is never reached.
  Parsed p = parse(R"({"a":1,"stop":2,,,)", "stop");
  EXPECT_EQ(p.result, KILN_JSON_STOPPED);
  EXPECT_EQ(p.events, "{ k:a u:1 k:stop");
  EXPECT_EQ(p.error, "");
}

TEST(JsonTest, KeyIsReportedBeforeTheColonIsRead) {
  // As in nlohmann, so that schema errors about a key win over later syntax.
  Parsed p = parse(R"({"stop")", "stop");
  EXPECT_EQ(p.result, KILN_JSON_STOPPED);
}

} // namespace

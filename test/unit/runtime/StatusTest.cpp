//===- StatusTest.cpp - kiln_status_t -------------------------------------===//
#include "TestUtil.h"

#include "kiln/runtime/safetensors.h"

#include "CSupport.h"

namespace {

std::string escaped(const std::string &text, size_t size = 4096) {
  std::string out(size, '\0');
  kiln_escape_controls(text.c_str(), out.data(), size);
  return out.c_str();
}

TEST(StatusTest, NullIsOk) {
  EXPECT_EQ(kiln_status_code(nullptr), KILN_OK);
  EXPECT_STREQ(kiln_status_message(nullptr), "");
  kiln_status_free(nullptr);
}

TEST(StatusTest, CodeNamesAreStable) {
  EXPECT_STREQ(kiln_status_code_name(KILN_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(kiln_status_code_name(KILN_OUT_OF_MEMORY), "OUT_OF_MEMORY");
}

TEST(StatusTest, NullArgumentsAreReportedNotCrashed) {
  kiln_status_t status = kiln_safetensors_open(nullptr, nullptr);
  EXPECT_EQ(kiln_status_code(status), KILN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_status_message(status)).find("kiln_safetensors_open"),
            std::string::npos);
  kiln_status_free(status);
}

TEST(StatusTest, EscapesControlCharacters) {
  // C0 (newline and tab too: a message is one line), DEL, C1 in UTF-8 (CSI
  // is U+009B) and bytes a non-UTF-8 terminal takes for C1 controls.
  EXPECT_EQ(escaped("a\x1b[2Jb\n\tc\x7f"), "a\\x1b[2Jb\\x0a\\x09c\\x7f");
  EXPECT_EQ(escaped("\xc2\x9b" "31m \x9b \xc2!"), "\\u009b31m \\x9b \\xc2!");
  // UTF-8 text, U+00A0 and up included, passes.
  EXPECT_EQ(escaped("caf\xc3\xa9 \xc2\xa7 \xe2\x86\x92"), "caf\xc3\xa9 \xc2\xa7 \xe2\x86\x92");
}

TEST(StatusTest, EscapingTwiceChangesNothing) {
  std::string once = escaped("x\x1b\xc2\x9b\x9b\xc2\xc2\x9b\xe0\xc2\x80\xf0\x9f\x98\x80\x01");
  EXPECT_EQ(escaped(once), once);
}

TEST(StatusTest, EscapingCutsShortAtAWholeEscape) {
  // 6 bytes hold 5 characters and the NUL: "ab", and "\x1b" would take 4.
  EXPECT_EQ(escaped("ab\x1b\x1b" "cd", 6), "ab");
  EXPECT_EQ(escaped("ab\x1b\x1b" "cd", 7), "ab\\x1b");
  EXPECT_EQ(kiln_escape_controls("ab\x1b\x1b" "cd", nullptr, 0), 12u);
}

TEST(StatusTest, MessagesHoldNoControlCharacters) {
  kiln_status_t status = kiln_status_make(KILN_DATA_LOSS, "%s: tensor '%s'", "/tmp/a\nb",
                                          "w\x1b[31m");
  EXPECT_STREQ(kiln_status_message(status), "/tmp/a\\x0ab: tensor 'w\\x1b[31m'");
  kiln_status_free(status);
}

kiln_status_t failsTwice(int *calls) {
  ++*calls;
  KILN_RETURN_IF_ERROR(kiln_safetensors_open(nullptr, nullptr));
  ++*calls; // not reached
  return nullptr;
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  int calls = 0;
  kiln_status_t status = failsTwice(&calls);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(kiln_status_code(status), KILN_INVALID_ARGUMENT);
  kiln_status_free(status);
}

} // namespace

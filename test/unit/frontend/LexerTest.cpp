//===- LexerTest.cpp - tokens, locations and lexical errors ---------------===//
#include "FrontendTestUtil.h"

#include <cstdint>

namespace kiln::test {
namespace {

using LexerTest = FrontendTest;

std::vector<TokenKind> kinds(const std::vector<Token> &tokens) {
  std::vector<TokenKind> out;
  for (const Token &token : tokens)
    out.push_back(token.kind);
  return out;
}

//===----------------------------------------------------------------------===//
// Token kinds
//===----------------------------------------------------------------------===//

TEST_F(LexerTest, IdentifiersKeepTheirText) {
  std::vector<Token> tokens = lexAll("foo _bar Baz9 a_b_c");
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_EQ(tokens[0].text, "foo");
  EXPECT_EQ(tokens[1].text, "_bar");
  EXPECT_EQ(tokens[2].text, "Baz9");
  EXPECT_EQ(tokens[3].text, "a_b_c");
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(tokens[i].kind, TokenKind::Identifier) << i;
  EXPECT_TRUE(errors().empty());
}

TEST_F(LexerTest, KeywordsAreRecognized) {
  std::vector<Token> tokens =
      lexAll("model input forward return train sequential true false");
  EXPECT_EQ(kinds(tokens),
            (std::vector<TokenKind>{
                TokenKind::KwModel, TokenKind::KwInput, TokenKind::KwForward,
                TokenKind::KwReturn, TokenKind::KwTrain,
                TokenKind::KwSequential, TokenKind::KwTrue, TokenKind::KwFalse,
                TokenKind::Eof}));
}

TEST_F(LexerTest, KeywordPrefixesAndOtherCasesAreIdentifiers) {
  std::vector<Token> tokens = lexAll("models Model TRUE forward_ inputs");
  EXPECT_EQ(kinds(tokens),
            (std::vector<TokenKind>{TokenKind::Identifier, TokenKind::Identifier,
                                    TokenKind::Identifier, TokenKind::Identifier,
                                    TokenKind::Identifier, TokenKind::Eof}));
}

TEST_F(LexerTest, IntegersCarryTheirValue) {
  std::vector<Token> tokens = lexAll("0 42 007");
  ASSERT_EQ(tokens.size(), 4u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(tokens[i].kind, TokenKind::Integer) << i;
  EXPECT_EQ(tokens[0].intValue, 0);
  EXPECT_EQ(tokens[1].intValue, 42);
  EXPECT_EQ(tokens[2].intValue, 7);
}

TEST_F(LexerTest, FloatWithFraction) {
  std::vector<Token> tokens = lexAll("3.25");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 3.25);
}

TEST_F(LexerTest, FloatWithNegativeExponent) {
  std::vector<Token> tokens = lexAll("1e-3");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_EQ(tokens[0].text, "1e-3");
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 1e-3);
}

TEST_F(LexerTest, FloatWithoutIntegerPart) {
  std::vector<Token> tokens = lexAll(".5");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 0.5);
}

TEST_F(LexerTest, FloatWithoutFractionDigits) {
  // "1." as in Python; the following ')' is a token of its own.
  std::vector<Token> tokens = lexAll("1.)");
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_EQ(tokens[0].text, "1.");
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 1.0);
  EXPECT_EQ(tokens[1].kind, TokenKind::RParen);
}

TEST_F(LexerTest, FloatWithUpperCaseSignedExponent) {
  std::vector<Token> tokens = lexAll("2.5E+3");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 2500.0);
}

TEST_F(LexerTest, IntegerWithExponentIsFloat) {
  std::vector<Token> tokens = lexAll("3e2");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 300.0);
}

// Regression test: the grammar in Lexer.cpp says
// `float ::= ... | [0-9]+ '.'? exponent`, and Python reads "1.e5" as 100000.0,
// but the lexer stops before a '.' followed by a letter, so "1.e5" becomes
// the integer 1, an "unexpected character '.'" error and the identifier e5.
TEST_F(LexerTest, FloatWithDotBeforeExponent) {
  std::vector<Token> tokens = lexAll("1.e5");
  EXPECT_TRUE(errors().empty()) << ::testing::PrintToString(errors());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Float);
  EXPECT_DOUBLE_EQ(tokens[0].floatValue, 1e5);
}

TEST_F(LexerTest, StringEscapesAreDecoded) {
  std::vector<Token> tokens = lexAll(R"("a\"b\\c")");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::String);
  EXPECT_EQ(tokens[0].stringValue, "a\"b\\c");
  EXPECT_EQ(tokens[0].text, R"("a\"b\\c")");
  EXPECT_TRUE(errors().empty());
}

TEST_F(LexerTest, EmptyString) {
  std::vector<Token> tokens = lexAll(R"("")");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::String);
  EXPECT_EQ(tokens[0].stringValue, "");
}

TEST_F(LexerTest, EveryPunctuation) {
  std::vector<Token> tokens = lexAll("{}()[],:=+-*/");
  EXPECT_EQ(kinds(tokens),
            (std::vector<TokenKind>{
                TokenKind::LBrace, TokenKind::RBrace, TokenKind::LParen,
                TokenKind::RParen, TokenKind::LBracket, TokenKind::RBracket,
                TokenKind::Comma, TokenKind::Colon, TokenKind::Equal,
                TokenKind::Plus, TokenKind::Minus, TokenKind::Star,
                TokenKind::Slash, TokenKind::Eof}));
  for (size_t i = 0; i + 1 < tokens.size(); ++i)
    EXPECT_EQ(tokens[i].loc.column, i + 1) << i;
}

TEST_F(LexerTest, MinusIsNotPartOfTheNumber) {
  // '-1' is folded by the parser, so the lexer gives two tokens.
  std::vector<Token> tokens = lexAll("-1");
  EXPECT_EQ(kinds(tokens), (std::vector<TokenKind>{TokenKind::Minus,
                                                   TokenKind::Integer,
                                                   TokenKind::Eof}));
}

TEST_F(LexerTest, RepeatedNextAtEndGivesEof) {
  source = "x";
  Lexer lexer(source, diags);
  EXPECT_EQ(lexer.next().kind, TokenKind::Identifier);
  EXPECT_EQ(lexer.next().kind, TokenKind::Eof);
  EXPECT_EQ(lexer.next().kind, TokenKind::Eof);
}

//===----------------------------------------------------------------------===//
// Locations
//===----------------------------------------------------------------------===//

TEST_F(LexerTest, LinesAndColumnsAcrossNewlines) {
  std::vector<Token> tokens = lexAll("a\n  bb\n\nc d");
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_EQ(tokens[0].loc.line, 1u);
  EXPECT_EQ(tokens[0].loc.column, 1u);
  EXPECT_EQ(tokens[1].loc.line, 2u);
  EXPECT_EQ(tokens[1].loc.column, 3u);
  EXPECT_EQ(tokens[2].loc.line, 4u);
  EXPECT_EQ(tokens[2].loc.column, 1u);
  EXPECT_EQ(tokens[3].loc.line, 4u);
  EXPECT_EQ(tokens[3].loc.column, 3u);
}

TEST_F(LexerTest, TabIsOneByteColumn) {
  // Columns are byte columns, as in MLIR's FileLineColLoc.
  std::vector<Token> tokens = lexAll("\t\tx\ty");
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].loc.column, 3u);
  EXPECT_EQ(tokens[1].loc.column, 5u);
}

TEST_F(LexerTest, CommentsAreSkipped) {
  std::vector<Token> tokens = lexAll("a # b c\n  # whole line\n   d # end");
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].text, "a");
  EXPECT_EQ(tokens[1].text, "d");
  EXPECT_EQ(tokens[1].loc.line, 3u);
  EXPECT_EQ(tokens[1].loc.column, 4u);
  EXPECT_EQ(tokens[2].kind, TokenKind::Eof);
}

TEST_F(LexerTest, CarriageReturnIsWhitespace) {
  std::vector<Token> tokens = lexAll("a\r\nb\r\n");
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[1].text, "b");
  EXPECT_EQ(tokens[1].loc.line, 2u);
  EXPECT_EQ(tokens[1].loc.column, 1u);
  EXPECT_TRUE(errors().empty());
}

TEST_F(LexerTest, AtLineStartMarksTheFirstTokenOfEachLine) {
  std::vector<Token> tokens = lexAll("a b\n  c # x\n\n# only a comment\nd e");
  ASSERT_EQ(tokens.size(), 6u);
  EXPECT_TRUE(tokens[0].atLineStart);  // a: first in the file
  EXPECT_FALSE(tokens[1].atLineStart); // b
  EXPECT_TRUE(tokens[2].atLineStart);  // c: indented, still first
  EXPECT_TRUE(tokens[3].atLineStart);  // d: after blank and comment lines
  EXPECT_FALSE(tokens[4].atLineStart); // e
}

TEST_F(LexerTest, CommentsMayHoldInvalidUtf8AndNul) {
  std::string text = "# \xff\xfe\xc3\x28 caf\xc3\xa9 ";
  text.push_back('\0');
  text += "\x01\x7f\nx";
  std::vector<Token> tokens = lexAll(text);
  EXPECT_TRUE(errors().empty()) << ::testing::PrintToString(errors());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].text, "x");
  EXPECT_EQ(tokens[0].loc.line, 2u);
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST_F(LexerTest, LargestIntegerIsAccepted) {
  std::vector<Token> tokens = lexAll("9223372036854775807");
  EXPECT_TRUE(errors().empty());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Integer);
  EXPECT_EQ(tokens[0].intValue, INT64_MAX);
}

TEST_F(LexerTest, IntegerPastInt64IsTooLarge) {
  std::vector<Token> tokens = lexAll("x = 9223372036854775808");
  EXPECT_ONE_ERROR(
      "integer '9223372036854775808' is too large (the limit is 2^63 - 1)", 1,
      5);
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[2].kind, TokenKind::Error);
}

TEST_F(LexerTest, HugeIntegerIsQuotedTruncated) {
  // A hostile 100-digit literal is quoted by its first 64 digits.
  lexAll(std::string(100, '9'));
  EXPECT_ONE_ERROR("integer '" + std::string(64, '9') +
                       "...' is too large (the limit is 2^63 - 1)",
                   1, 1);
}

TEST_F(LexerTest, FloatPastDoubleIsOutOfRange) {
  std::vector<Token> tokens = lexAll("  1e999");
  EXPECT_ONE_ERROR("number '1e999' is out of range", 1, 3);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Error);
}

TEST_F(LexerTest, NumberGluedToLettersIsOneInvalidNumber) {
  std::vector<Token> tokens = lexAll("a 12abc");
  EXPECT_ONE_ERROR("invalid number '12abc'", 1, 3);
  EXPECT_EQ(kinds(tokens), (std::vector<TokenKind>{TokenKind::Identifier,
                                                   TokenKind::Error,
                                                   TokenKind::Eof}));
}

TEST_F(LexerTest, NulByteIsAnError) {
  std::string text = "a ";
  text.push_back('\0');
  text += " b";
  std::vector<Token> tokens = lexAll(text);
  EXPECT_ONE_ERROR("unexpected control character (byte 0x00)", 1, 3);
  EXPECT_EQ(kinds(tokens), (std::vector<TokenKind>{TokenKind::Identifier,
                                                   TokenKind::Error,
                                                   TokenKind::Identifier,
                                                   TokenKind::Eof}));
}

TEST_F(LexerTest, NonAsciiByteIsAnError) {
  std::vector<Token> tokens = lexAll("x\n  \xc3\xa9 y");
  EXPECT_ONE_ERROR("unexpected non-ASCII byte 0xC3 (Kiln source is ASCII "
                   "outside comments)",
                   2, 3);
  EXPECT_EQ(kinds(tokens), (std::vector<TokenKind>{TokenKind::Identifier,
                                                   TokenKind::Error,
                                                   TokenKind::Identifier,
                                                   TokenKind::Eof}));
}

TEST_F(LexerTest, UnexpectedPrintableCharacter) {
  lexAll("a @ b");
  EXPECT_ONE_ERROR("unexpected character '@'", 1, 3);
}

TEST_F(LexerTest, RunOfBadBytesGivesOneError) {
  std::vector<Token> tokens = lexAll("\xff\xfe\x01@$\x80\x80 x");
  EXPECT_ONE_ERROR("unexpected non-ASCII byte 0xFF (Kiln source is ASCII "
                   "outside comments)",
                   1, 1);
  EXPECT_EQ(kinds(tokens), (std::vector<TokenKind>{TokenKind::Error,
                                                   TokenKind::Identifier,
                                                   TokenKind::Eof}));
}

TEST_F(LexerTest, UnterminatedStringAtEndOfFile) {
  std::vector<Token> tokens = lexAll("x = \"abc");
  EXPECT_ONE_ERROR("unterminated string", 1, 5);
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[2].kind, TokenKind::Error);
}

TEST_F(LexerTest, UnterminatedStringStopsAtTheNewline) {
  std::vector<Token> tokens = lexAll("\"abc\nnext");
  EXPECT_ONE_ERROR("unterminated string", 1, 1);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[1].text, "next");
  EXPECT_EQ(tokens[1].loc.line, 2u);
}

TEST_F(LexerTest, ControlCharacterInStringIsReportedAtTheByte) {
  lexAll("x = \"a\tb\"");
  std::vector<RecordedDiag> errs = errors();
  ASSERT_GE(errs.size(), 1u);
  EXPECT_EQ(errs[0].message, "control character in string (byte 0x09)");
  EXPECT_EQ(errs[0].line, 1u);
  EXPECT_EQ(errs[0].column, 7u);
}

// Regression test: after the control character the lexer
// resumes inside the string, so the closing quote opens a new string and a
// second, spurious "unterminated string" error is reported at column 9.
TEST_F(LexerTest, ControlCharacterInStringGivesOneError) {
  lexAll("x = \"a\tb\"");
  EXPECT_ONE_ERROR("control character in string (byte 0x09)", 1, 7);
}

TEST_F(LexerTest, IdentifierAtTheLengthLimitIsAccepted) {
  std::vector<Token> tokens =
      lexAll(std::string(Lexer::kMaxIdentifierLength, 'a'));
  EXPECT_TRUE(errors().empty());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].kind, TokenKind::Identifier);
}

TEST_F(LexerTest, IdentifierPastTheLengthLimitIsTooLong) {
  std::vector<Token> tokens =
      lexAll("x " + std::string(Lexer::kMaxIdentifierLength + 1, 'a'));
  EXPECT_ONE_ERROR("identifier is too long (257 characters; the limit is 256)",
                   1, 3);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[1].kind, TokenKind::Error);
}

TEST_F(LexerTest, StopsAtEofAfterTheErrorLimit) {
  // One bad byte per line: each is its own error until the limit.
  std::string text;
  for (unsigned i = 0; i < FrontendDiagnostics::kMaxErrors + 10; ++i)
    text += "@ x\n";
  std::vector<Token> tokens = lexAll(text);
  EXPECT_EQ(errors().size(), FrontendDiagnostics::kMaxErrors);
  EXPECT_EQ(diags.errorCount(), FrontendDiagnostics::kMaxErrors);
  // kMaxErrors pairs of (Error, x) would be 2 * kMaxErrors; the last error
  // ends the stream, so its 'x' is never read.
  ASSERT_EQ(tokens.size(), 2 * FrontendDiagnostics::kMaxErrors);
  EXPECT_EQ(tokens[tokens.size() - 2].kind, TokenKind::Error);
  EXPECT_EQ(tokens.back().kind, TokenKind::Eof);
}

} // namespace
} // namespace kiln::test

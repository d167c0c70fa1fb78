//===- Lexer.h - tokens of the Kiln DSL -------------------------*- C++ -*-===//
#ifndef KILN_FRONTEND_LEXER_H
#define KILN_FRONTEND_LEXER_H

#include "kiln/Frontend/Diagnostics.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace kiln {

enum class TokenKind {
  Eof,
  Error, // the lexer has reported it; the parser skips it
  Identifier,
  Integer,
  Float,
  String,
  // Keywords.
  KwModel,
  KwInput,
  KwForward,
  KwReturn,
  KwTrain,
  KwSequential,
  KwTrue,
  KwFalse,
  // Punctuation.
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Equal,
  Plus,
  Minus,
  Star,
  Slash,
};

/// How a token kind reads in a diagnostic: "'{'", "identifier".
llvm::StringRef describe(TokenKind kind);

struct Token {
  TokenKind kind = TokenKind::Eof;
  llvm::StringRef text; // points into the source buffer
  SourceLoc loc;
  bool atLineStart = false; // first token on its line: a recovery point
  int64_t intValue = 0;
  double floatValue = 0;
  std::string stringValue; // a String's contents, quotes removed

  bool is(TokenKind k) const { return kind == k; }
};

/// Splits a source buffer into tokens, reporting bad bytes and literals.
class Lexer {
public:
  /// Identifiers longer than this are an error (a hostile 1 MB identifier
  /// would otherwise flow into every message that quotes it).
  static constexpr size_t kMaxIdentifierLength = 256;

  Lexer(llvm::StringRef buffer, FrontendDiagnostics &diags)
      : buffer(buffer), diags(diags) {}

  Token next();

private:
  char peek(size_t ahead = 0) const {
    return pos + ahead < buffer.size() ? buffer[pos + ahead] : '\0';
  }
  bool atEnd() const { return pos >= buffer.size(); }
  bool isExponentAt(size_t ahead) const;
  void advance();
  void skipSpaceAndComments();
  Token make(TokenKind kind, size_t start, SourceLoc loc);
  Token lexIdentifier(size_t start, SourceLoc loc);
  Token lexNumber(size_t start, SourceLoc loc);
  Token lexString(size_t start, SourceLoc loc);
  Token lexBadByte(size_t start, SourceLoc loc);

  llvm::StringRef buffer;
  FrontendDiagnostics &diags;
  size_t pos = 0;
  unsigned line = 1;
  unsigned column = 1;
  bool sawNewline = true;
};

} // namespace kiln

#endif // KILN_FRONTEND_LEXER_H

//===- Lexer.cpp - tokens of the Kiln DSL ---------------------------------===//
#include "kiln/Frontend/Lexer.h"

#include "llvm/ADT/StringSwitch.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace kiln {

llvm::StringRef describe(TokenKind kind) {
  switch (kind) {
  case TokenKind::Eof: return "end of file";
  case TokenKind::Error: return "invalid token";
  case TokenKind::Identifier: return "identifier";
  case TokenKind::Integer: return "integer";
  case TokenKind::Float: return "number";
  case TokenKind::String: return "string";
  case TokenKind::KwModel: return "'model'";
  case TokenKind::KwInput: return "'input'";
  case TokenKind::KwForward: return "'forward'";
  case TokenKind::KwReturn: return "'return'";
  case TokenKind::KwTrain: return "'train'";
  case TokenKind::KwSequential: return "'sequential'";
  case TokenKind::KwTrue: return "'true'";
  case TokenKind::KwFalse: return "'false'";
  case TokenKind::LBrace: return "'{'";
  case TokenKind::RBrace: return "'}'";
  case TokenKind::LParen: return "'('";
  case TokenKind::RParen: return "')'";
  case TokenKind::LBracket: return "'['";
  case TokenKind::RBracket: return "']'";
  case TokenKind::Comma: return "','";
  case TokenKind::Colon: return "':'";
  case TokenKind::Equal: return "'='";
  case TokenKind::Plus: return "'+'";
  case TokenKind::Minus: return "'-'";
  case TokenKind::Star: return "'*'";
  case TokenKind::Slash: return "'/'";
  }
  return "token";
}

/// "0xC3": how a diagnostic names a byte.
static std::string hexByte(unsigned char byte) {
  static const char digits[] = "0123456789ABCDEF";
  return std::string("0x") + digits[byte >> 4] + digits[byte & 15];
}

static bool isIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool isDigit(char c) { return c >= '0' && c <= '9'; }
static bool isIdentChar(char c) { return isIdentStart(c) || isDigit(c); }

void Lexer::advance() {
  if (buffer[pos] == '\n') {
    ++line;
    column = 1;
    sawNewline = true;
  } else {
    ++column;
  }
  ++pos;
}

// Whitespace (space, tab, CR, LF) and `#` comments to the end of the line.
// Comments may hold any bytes, UTF-8 or not: they are never interpreted.
void Lexer::skipSpaceAndComments() {
  while (!atEnd()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      advance();
    } else if (c == '#') {
      while (!atEnd() && peek() != '\n')
        advance();
    } else {
      return;
    }
  }
}

Token Lexer::make(TokenKind kind, size_t start, SourceLoc loc) {
  Token token;
  token.kind = kind;
  token.text = buffer.slice(start, pos);
  token.loc = loc;
  return token;
}

Token Lexer::next() {
  skipSpaceAndComments();
  SourceLoc loc{line, column};
  bool lineStart = sawNewline;
  sawNewline = false;
  size_t start = pos;
  Token token;
  // Past the error limit the rest of the file is not read: recovery would
  // otherwise keep lexing (and reporting) a binary file to its end.
  if (atEnd() || diags.tooManyErrors()) {
    token = make(TokenKind::Eof, start, loc);
  } else {
    char c = peek();
    if (isIdentStart(c)) {
      token = lexIdentifier(start, loc);
    } else if (isDigit(c) || (c == '.' && isDigit(peek(1)))) {
      token = lexNumber(start, loc);
    } else if (c == '"') {
      token = lexString(start, loc);
    } else {
      TokenKind kind = TokenKind::Error;
      switch (c) {
      case '{': kind = TokenKind::LBrace; break;
      case '}': kind = TokenKind::RBrace; break;
      case '(': kind = TokenKind::LParen; break;
      case ')': kind = TokenKind::RParen; break;
      case '[': kind = TokenKind::LBracket; break;
      case ']': kind = TokenKind::RBracket; break;
      case ',': kind = TokenKind::Comma; break;
      case ':': kind = TokenKind::Colon; break;
      case '=': kind = TokenKind::Equal; break;
      case '+': kind = TokenKind::Plus; break;
      case '-': kind = TokenKind::Minus; break;
      case '*': kind = TokenKind::Star; break;
      case '/': kind = TokenKind::Slash; break;
      default: break;
      }
      if (kind == TokenKind::Error) {
        token = lexBadByte(start, loc);
      } else {
        advance();
        token = make(kind, start, loc);
      }
    }
  }
  token.atLineStart = lineStart;
  return token;
}

// identifier ::= [A-Za-z_][A-Za-z0-9_]*
Token Lexer::lexIdentifier(size_t start, SourceLoc loc) {
  while (!atEnd() && isIdentChar(peek()))
    advance();
  Token token = make(TokenKind::Identifier, start, loc);
  if (token.text.size() > kMaxIdentifierLength) {
    diags.error(loc) << "identifier is too long (" << token.text.size()
                     << " characters; the limit is " << kMaxIdentifierLength
                     << ")";
    token.kind = TokenKind::Error;
    return token;
  }
  token.kind = llvm::StringSwitch<TokenKind>(token.text)
                   .Case("model", TokenKind::KwModel)
                   .Case("input", TokenKind::KwInput)
                   .Case("forward", TokenKind::KwForward)
                   .Case("return", TokenKind::KwReturn)
                   .Case("train", TokenKind::KwTrain)
                   .Case("sequential", TokenKind::KwSequential)
                   .Case("true", TokenKind::KwTrue)
                   .Case("false", TokenKind::KwFalse)
                   .Default(TokenKind::Identifier);
  return token;
}

/// Whether an exponent ([eE][+-]?[0-9]) starts `ahead` bytes from here.
bool Lexer::isExponentAt(size_t ahead) const {
  char sign = peek(ahead + 1);
  return (peek(ahead) == 'e' || peek(ahead) == 'E') &&
         (isDigit(sign) || ((sign == '+' || sign == '-') && isDigit(peek(ahead + 2))));
}

// integer ::= [0-9]+
// float   ::= [0-9]* '.' [0-9]+ exponent? | [0-9]+ '.'? exponent
// exponent ::= [eE] [+-]? [0-9]+
Token Lexer::lexNumber(size_t start, SourceLoc loc) {
  bool isFloat = false;
  while (isDigit(peek()))
    advance();
  if (peek() == '.' && isDigit(peek(1))) {
    isFloat = true;
    advance();
    while (isDigit(peek()))
      advance();
  } else if (peek() == '.' && (!isIdentStart(peek(1)) || isExponentAt(1))) {
    isFloat = true; // "1." and "1.e5" as in Python
    advance();
  }
  if (isExponentAt(0)) {
    isFloat = true;
    advance();
    if (peek() == '+' || peek() == '-')
      advance();
    while (isDigit(peek()))
      advance();
  }
  // A number glued to letters ("12abc") is one bad token, not two.
  if (isIdentChar(peek())) {
    while (!atEnd() && isIdentChar(peek()))
      advance();
    Token token = make(TokenKind::Error, start, loc);
    diags.error(loc) << "invalid number '" << token.text.take_front(64) << "'";
    return token;
  }
  Token token = make(isFloat ? TokenKind::Float : TokenKind::Integer, start, loc);
  if (isFloat) {
    std::string text = token.text.str();
    errno = 0;
    token.floatValue = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE && std::isinf(token.floatValue)) {
      diags.error(loc) << "number '" << token.text.take_front(64)
                       << "' is out of range";
      token.kind = TokenKind::Error;
    }
    return token;
  }
  // Checked accumulation: literals past 2^63 - 1 are errors, not wraparound.
  uint64_t value = 0;
  for (char digit : token.text) {
    unsigned d = digit - '0';
    if (value > (uint64_t(INT64_MAX) - d) / 10) {
      diags.error(loc) << "integer '" << token.text.take_front(64)
                       << (token.text.size() > 64 ? "..." : "")
                       << "' is too large (the limit is 2^63 - 1)";
      token.kind = TokenKind::Error;
      return token;
    }
    value = value * 10 + d;
  }
  token.intValue = static_cast<int64_t>(value);
  return token;
}

// string ::= '"' ( [^"\\\n] | '\\' ["\\] )* '"'
Token Lexer::lexString(size_t start, SourceLoc loc) {
  advance(); // opening quote
  std::string value;
  while (true) {
    if (atEnd() || peek() == '\n') {
      Token token = make(TokenKind::Error, start, loc);
      diags.error(loc) << "unterminated string";
      return token;
    }
    char c = peek();
    if (c == '"') {
      advance();
      break;
    }
    if (c == '\\' && (peek(1) == '"' || peek(1) == '\\')) {
      advance();
      c = peek();
    } else if (static_cast<unsigned char>(c) < 0x20) {
      diags.error(SourceLoc{line, column})
          << "control character in string (byte "
          << hexByte(static_cast<unsigned char>(c)) << ")";
      // Skip the rest of the string, so its closing quote does not open
      // another one.
      while (!atEnd() && peek() != '\n' && peek() != '"')
        advance();
      if (!atEnd() && peek() == '"')
        advance();
      return make(TokenKind::Error, start, loc);
    }
    value.push_back(c);
    advance();
  }
  Token token = make(TokenKind::String, start, loc);
  token.stringValue = std::move(value);
  return token;
}

// Anything else: one error per run of bad bytes, so a binary file gives a
// few diagnostics rather than one per byte.
Token Lexer::lexBadByte(size_t start, SourceLoc loc) {
  unsigned char byte = static_cast<unsigned char>(peek());
  advance();
  while (!atEnd()) {
    char c = peek();
    if (isIdentChar(c) || c == ' ' || c == '\n' || c == '\t' || c == '#' ||
        c == '{' || c == '}' || c == '(' || c == ')' || c == '"')
      break;
    advance();
  }
  Token token = make(TokenKind::Error, start, loc);
  auto diag = diags.error(loc);
  if (byte >= 0x80)
    diag << "unexpected non-ASCII byte " << hexByte(byte)
         << " (Kiln source is ASCII outside comments)";
  else if (byte < 0x20 || byte == 0x7f)
    diag << "unexpected control character (byte " << hexByte(byte) << ")";
  else
    diag << "unexpected character '" << static_cast<char>(byte) << "'";
  return token;
}

} // namespace kiln

//===- Parser.h - recursive-descent parser of the Kiln DSL ------*- C++ -*-===//
#ifndef KILN_FRONTEND_PARSER_H
#define KILN_FRONTEND_PARSER_H

#include "kiln/Frontend/AST.h"
#include "kiln/Frontend/Lexer.h"

#include <deque>

namespace kiln {

/// Parses one model. Reports every independent syntax error it can recover
/// from (it resynchronizes at the next line at the same brace depth) and
/// returns null if there was any.
class Parser {
public:
  /// Deeper nesting (blocks, parentheses, '+' chains) than this is an
  /// error rather than a stack overflow: 100 000 nested parentheses must give
  /// a diagnostic. Later stages recurse over expressions as deep as this.
  static constexpr unsigned kMaxNesting = 128;

  Parser(llvm::StringRef buffer, FrontendDiagnostics &diags)
      : lexer(buffer, diags), diags(diags) {}

  std::unique_ptr<ast::Model> parseModel();

private:
  // Token stream with one token of lookahead.
  const Token &cur();
  const Token &lookahead();
  Token take();
  bool consumeIf(TokenKind kind);
  bool expect(TokenKind kind, llvm::StringRef context);
  void errorAtCurrent(const llvm::Twine &message);

  // Recovery: skip to the start of the next item at this brace depth.
  void synchronize(size_t itemStart);
  bool stopped() const { return fatal || diags.tooManyErrors(); }
  bool enterNesting(SourceLoc loc);

  void parseMember(ast::Model &model);
  bool parseInput(ast::Model &model);
  bool parseLayerDecl(ast::Model &model);
  bool parseConstructor(ast::LayerDecl &layer, llvm::StringRef context);
  bool parseSequentialBody(ast::LayerDecl &layer);
  bool parseForward(ast::Model &model);
  bool parseStmt(std::vector<ast::Stmt> &stmts);
  ast::ExprPtr parseExpr();
  ast::ExprPtr parseCallExpr();
  bool parseTrain(ast::Model &model);
  bool parseSetting(std::vector<ast::Setting> &settings);
  bool parseArgList(std::vector<ast::Arg> &args, TokenKind close);
  ast::TermPtr parseTerm();
  ast::TermPtr parseUnary();
  ast::TermPtr parsePrimary();

  template <typename BodyFn>
  bool parseBlock(llvm::StringRef what, BodyFn parseItem);

  Lexer lexer;
  FrontendDiagnostics &diags;
  std::deque<Token> tokens;
  unsigned nesting = 0;
  size_t taken = 0; // tokens consumed: recovery must make progress
  bool fatal = false;
  SourceLoc lastBlockEnd; // the '}' that closed the last block
};

/// Convenience: parse a whole buffer.
std::unique_ptr<ast::Model> parseModel(llvm::StringRef buffer,
                                       FrontendDiagnostics &diags);

} // namespace kiln

#endif // KILN_FRONTEND_PARSER_H

//===- Parser.cpp - recursive-descent parser of the Kiln DSL --------------===//
//
// The grammar is in docs/dsl.md; each parse function starts with its rule.
// Newlines are whitespace to the grammar; they matter only to error recovery,
// which resumes at the first token of a line at the same brace depth.
//
//===----------------------------------------------------------------------===//
#include "kiln/Frontend/Parser.h"

#include "llvm/Support/MathExtras.h"

#include <cmath>

namespace kiln {

using namespace ast;

//===----------------------------------------------------------------------===//
// Token stream
//===----------------------------------------------------------------------===//

const Token &Parser::cur() {
  if (tokens.empty())
    tokens.push_back(lexer.next());
  return tokens.front();
}

const Token &Parser::lookahead() {
  cur();
  if (tokens.size() < 2)
    tokens.push_back(tokens.back().is(TokenKind::Eof) ? tokens.back()
                                                      : lexer.next());
  return tokens[1];
}

Token Parser::take() {
  Token token = cur();
  if (!token.is(TokenKind::Eof)) {
    tokens.pop_front();
    ++taken;
  }
  return token;
}

bool Parser::consumeIf(TokenKind kind) {
  if (!cur().is(kind))
    return false;
  take();
  return true;
}

void Parser::errorAtCurrent(const llvm::Twine &message) {
  // The lexer has already reported a bad token; one error per mistake.
  if (cur().is(TokenKind::Error))
    return;
  auto diag = diags.error(cur().loc);
  diag << message << ", found ";
  if (cur().is(TokenKind::Eof))
    diag << "end of file";
  else
    diag << "'" << cur().text.take_front(40) << "'";
}

bool Parser::expect(TokenKind kind, llvm::StringRef context) {
  if (consumeIf(kind))
    return true;
  errorAtCurrent("expected " + describe(kind) + " " + context);
  return false;
}

void Parser::synchronize(size_t itemStart) {
  int depth = 0;
  while (!cur().is(TokenKind::Eof)) {
    if (depth == 0 && cur().is(TokenKind::RBrace))
      return;
    if (depth == 0 && cur().atLineStart && taken > itemStart)
      return;
    TokenKind kind = cur().kind;
    if (kind == TokenKind::LBrace)
      ++depth;
    else if (kind == TokenKind::RBrace && depth > 0)
      --depth;
    take();
  }
}

bool Parser::enterNesting(SourceLoc loc) {
  if (nesting < kMaxNesting) {
    ++nesting;
    return true;
  }
  diags.error(loc) << "nesting is too deep (the limit is " << kMaxNesting
                   << " levels of blocks, parentheses and '+')";
  fatal = true;
  return false;
}

namespace {
/// Leaves one nesting level when it goes out of scope.
struct NestingScope {
  unsigned &nesting;
  bool entered;
  ~NestingScope() {
    if (entered)
      --nesting;
  }
};
} // namespace

#define ENTER_NESTING(loc, failValue)                                          \
  NestingScope nestingScope{nesting, enterNesting(loc)};                       \
  if (!nestingScope.entered)                                                   \
    return failValue;

// '{' item* '}'
template <typename BodyFn>
bool Parser::parseBlock(llvm::StringRef what, BodyFn parseItem) {
  SourceLoc open = cur().loc;
  if (!expect(TokenKind::LBrace, ("to open " + what).str()))
    return false;
  ENTER_NESTING(open, false);
  while (!stopped() && !cur().is(TokenKind::RBrace)) {
    if (cur().is(TokenKind::Eof)) {
      diags.error(cur().loc) << "expected '}' to close " << what
                             << " opened at line " << open.line;
      return false;
    }
    size_t start = taken;
    if (!parseItem() && !stopped())
      synchronize(start);
  }
  if (stopped())
    return false;
  lastBlockEnd = take().loc; // '}'
  return true;
}

//===----------------------------------------------------------------------===//
// Model
//===----------------------------------------------------------------------===//

// file ::= 'model' identifier '{' member* '}' EOF
std::unique_ptr<Model> Parser::parseModel() {
  auto model = std::make_unique<Model>();
  model->loc = cur().loc;
  if (cur().is(TokenKind::Eof)) {
    diags.error(cur().loc) << "expected 'model', found an empty file";
    return nullptr;
  }
  if (!expect(TokenKind::KwModel, "at the start of the file"))
    return nullptr;
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent("expected the model's name after 'model'");
    return nullptr;
  }
  model->name = take().text.str();
  parseBlock("the model", [&] {
    parseMember(*model);
    return true;
  });
  if (!stopped() && !cur().is(TokenKind::Eof))
    errorAtCurrent("expected end of file after the model");
  if (diags.tooManyErrors())
    mlir::emitError(diags.location(cur().loc))
        << "too many errors, stopping here";
  if (diags.errorCount() > 0)
    return nullptr;
  return model;
}

// member ::= input-decl | layer-decl | forward | train
void Parser::parseMember(Model &model) {
  size_t start = taken;
  bool ok = false;
  switch (cur().kind) {
  case TokenKind::KwInput: ok = parseInput(model); break;
  case TokenKind::KwForward: ok = parseForward(model); break;
  case TokenKind::KwTrain: ok = parseTrain(model); break;
  case TokenKind::Identifier: ok = parseLayerDecl(model); break;
  default:
    errorAtCurrent("expected 'input', a layer declaration ('name = layer(...)'),"
                   " 'forward' or 'train'");
  }
  if (!ok && !stopped())
    synchronize(start);
}

// input-decl ::= 'input' identifier ':' identifier '[' dim (',' dim)* ']'
// dim ::= integer | identifier
bool Parser::parseInput(Model &model) {
  InputDecl input;
  input.loc = take().loc;
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent("expected the input's name after 'input'");
    return false;
  }
  input.name = take().text.str();
  if (!expect(TokenKind::Colon, "after the input's name"))
    return false;
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent("expected an element type such as 'f32'");
    return false;
  }
  input.dtypeLoc = cur().loc;
  input.dtype = take().text.str();
  if (!expect(TokenKind::LBracket, "to start the input's shape"))
    return false;
  do {
    input.dimLocs.push_back(cur().loc);
    if (cur().is(TokenKind::Integer)) {
      input.dims.push_back(cur().intValue);
      input.dimNames.push_back("");
    } else if (cur().is(TokenKind::Identifier)) {
      input.dims.push_back(-1);
      input.dimNames.push_back(cur().text.str());
    } else {
      errorAtCurrent("expected a dimension (an integer or a name such as N)");
      return false;
    }
    take();
  } while (consumeIf(TokenKind::Comma));
  if (!expect(TokenKind::RBracket, "to close the input's shape"))
    return false;
  if (model.input) {
    diags.error(input.loc) << "a model has one input; '" << model.input->name
                           << "' is declared at line " << model.input->loc.line;
    return true;
  }
  model.input = std::move(input);
  return true;
}

// layer-decl ::= identifier '=' constructor
bool Parser::parseLayerDecl(Model &model) {
  LayerDecl layer;
  layer.loc = cur().loc;
  layer.name = take().text.str();
  if (!expect(TokenKind::Equal, "after the layer's name"))
    return false;
  if (!parseConstructor(layer, "after '='"))
    return false;
  model.layers.push_back(std::move(layer));
  return true;
}

// constructor ::= 'sequential' '{' (constructor ','?)* '}'
//               | identifier ('(' arg-list ')')?
bool Parser::parseConstructor(LayerDecl &layer, llvm::StringRef context) {
  layer.kindLoc = cur().loc;
  if (cur().is(TokenKind::KwSequential)) {
    take();
    layer.kind = "sequential";
    return parseSequentialBody(layer);
  }
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent(("expected a layer such as 'linear(784, 128)' " + context).str());
    return false;
  }
  layer.kind = take().text.str();
  if (consumeIf(TokenKind::LParen))
    return parseArgList(layer.args, TokenKind::RParen);
  return true;
}

bool Parser::parseSequentialBody(LayerDecl &layer) {
  return parseBlock("the sequential block", [&] {
    LayerDecl member;
    member.loc = cur().loc;
    member.name = std::to_string(layer.members.size());
    if (!parseConstructor(member, "in the sequential block"))
      return false;
    consumeIf(TokenKind::Comma);
    layer.members.push_back(std::move(member));
    return true;
  });
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

// forward ::= 'forward' '{' stmt* '}'
bool Parser::parseForward(Model &model) {
  SourceLoc loc = take().loc;
  // A second section is reported, then parsed (for its own errors) and dropped.
  std::vector<Stmt> ignored;
  bool duplicate = model.hasForward;
  if (duplicate)
    diags.error(loc) << "duplicate 'forward' section (the first is at line "
                     << model.forwardLoc.line << ")";
  std::vector<Stmt> &stmts = duplicate ? ignored : model.forward;
  if (!duplicate) {
    model.hasForward = true;
    model.forwardLoc = loc;
  }
  bool ok = parseBlock("the forward section", [&] { return parseStmt(stmts); });
  if (!duplicate)
    model.forwardEndLoc = lastBlockEnd;
  return ok;
}

// stmt ::= identifier '=' expr | 'return' expr
bool Parser::parseStmt(std::vector<Stmt> &stmts) {
  Stmt stmt;
  stmt.loc = cur().loc;
  if (consumeIf(TokenKind::KwReturn)) {
    stmt.value = parseExpr();
  } else if (cur().is(TokenKind::Identifier) &&
             lookahead().is(TokenKind::Equal)) {
    stmt.name = take().text.str();
    take(); // '='
    stmt.value = parseExpr();
  } else {
    errorAtCurrent("expected 'name = expression' or 'return expression'");
    return false;
  }
  if (!stmt.value)
    return false;
  stmts.push_back(std::move(stmt));
  return true;
}

// expr ::= call-expr ('+' call-expr)*
//
// Each '+' deepens the (left-leaning) tree by one, and later stages walk it
// recursively, so '+' terms count against the nesting limit like
// parentheses: 100 000 of them must give a diagnostic, not a stack overflow.
ExprPtr Parser::parseExpr() {
  ExprPtr lhs = parseCallExpr();
  unsigned levels = 0;
  while (lhs && cur().is(TokenKind::Plus)) {
    if (!enterNesting(cur().loc)) {
      lhs = nullptr;
      break;
    }
    ++levels;
    auto add = std::make_unique<Expr>();
    add->kind = Expr::Kind::Add;
    add->loc = take().loc;
    ExprPtr rhs = parseCallExpr();
    if (!rhs) {
      lhs = nullptr;
      break;
    }
    add->operands.push_back(std::move(lhs));
    add->operands.push_back(std::move(rhs));
    lhs = std::move(add);
  }
  nesting -= levels;
  return lhs;
}

// call-expr ::= identifier '(' (call-arg (',' call-arg)*)? ')'
//             | identifier | '(' expr ')'
// call-arg  ::= expr | identifier '=' term
ExprPtr Parser::parseCallExpr() {
  SourceLoc loc = cur().loc;
  if (consumeIf(TokenKind::LParen)) {
    ENTER_NESTING(loc, nullptr);
    ExprPtr inner = parseExpr();
    if (!inner || !expect(TokenKind::RParen, "to close the parenthesis"))
      return nullptr;
    return inner;
  }
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent("expected a value or a call such as 'fc1(x)'");
    return nullptr;
  }
  auto expr = std::make_unique<Expr>();
  expr->loc = loc;
  expr->name = take().text.str();
  if (!consumeIf(TokenKind::LParen)) {
    expr->kind = Expr::Kind::Name;
    return expr;
  }
  expr->kind = Expr::Kind::Call;
  ENTER_NESTING(loc, nullptr);
  if (consumeIf(TokenKind::RParen))
    return expr;
  do {
    if (cur().is(TokenKind::Identifier) && lookahead().is(TokenKind::Equal)) {
      Arg arg;
      arg.loc = cur().loc;
      arg.name = take().text.str();
      take(); // '='
      arg.value = parseTerm();
      if (!arg.value)
        return nullptr;
      expr->kwargs.push_back(std::move(arg));
      continue;
    }
    if (!expr->kwargs.empty()) {
      errorAtCurrent("expected 'name=value': positional arguments come first");
      return nullptr;
    }
    ExprPtr operand = parseExpr();
    if (!operand)
      return nullptr;
    expr->operands.push_back(std::move(operand));
  } while (consumeIf(TokenKind::Comma));
  if (!expect(TokenKind::RParen, ("to close the call to '" + expr->name + "'").c_str()))
    return nullptr;
  return expr;
}

//===----------------------------------------------------------------------===//
// Train
//===----------------------------------------------------------------------===//

// train ::= 'train' '{' setting* '}'
bool Parser::parseTrain(Model &model) {
  SourceLoc loc = take().loc;
  std::vector<Setting> ignored;
  bool duplicate = model.hasTrain;
  if (duplicate)
    diags.error(loc) << "duplicate 'train' section (the first is at line "
                     << model.trainLoc.line << ")";
  std::vector<Setting> &settings = duplicate ? ignored : model.train;
  if (!duplicate) {
    model.hasTrain = true;
    model.trainLoc = loc;
  }
  return parseBlock("the train section", [&] { return parseSetting(settings); });
}

// setting ::= identifier '=' term | identifier '(' arg-list ')'
bool Parser::parseSetting(std::vector<Setting> &settings) {
  if (!cur().is(TokenKind::Identifier)) {
    errorAtCurrent("expected a setting such as 'epochs = 10'");
    return false;
  }
  Setting setting;
  setting.loc = cur().loc;
  setting.key = cur().text.str();
  if (lookahead().is(TokenKind::LParen)) {
    setting.value = parsePrimary(); // a call term: early_stopping(...)
  } else {
    take();
    if (!expect(TokenKind::Equal, ("after '" + setting.key + "'").c_str()))
      return false;
    setting.value = parseTerm();
  }
  if (!setting.value)
    return false;
  settings.push_back(std::move(setting));
  return true;
}

//===----------------------------------------------------------------------===//
// Terms: constant arguments
//===----------------------------------------------------------------------===//

// arg-list ::= (arg (',' arg)* ','?)? close
// arg      ::= (identifier '=')? term
bool Parser::parseArgList(std::vector<Arg> &args, TokenKind close) {
  while (!cur().is(close)) {
    Arg arg;
    arg.loc = cur().loc;
    if (cur().is(TokenKind::Identifier) && lookahead().is(TokenKind::Equal)) {
      arg.name = take().text.str();
      take(); // '='
    } else if (!args.empty() && !args.back().name.empty()) {
      errorAtCurrent("expected 'name=value': positional arguments come first");
      return false;
    }
    arg.value = parseTerm();
    if (!arg.value)
      return false;
    args.push_back(std::move(arg));
    if (!consumeIf(TokenKind::Comma))
      break;
  }
  return expect(close, "to close the argument list");
}

static TermPtr makeNumber(SourceLoc loc, double value) {
  auto term = std::make_unique<Term>();
  term->kind = Term::Kind::Float;
  term->loc = loc;
  term->floatValue = value;
  return term;
}

// term ::= unary (('*' | '/') unary)*    (folded: numbers only)
TermPtr Parser::parseTerm() {
  TermPtr lhs = parseUnary();
  while (lhs && (cur().is(TokenKind::Star) || cur().is(TokenKind::Slash))) {
    Token op = take();
    TermPtr rhs = parseUnary();
    if (!rhs)
      return nullptr;
    if (!lhs->isNumber() || !rhs->isNumber()) {
      diags.error(op.loc) << "'" << op.text << "' needs numbers on both sides";
      return nullptr;
    }
    if (op.is(TokenKind::Slash)) {
      if (rhs->asDouble() == 0) {
        diags.error(op.loc) << "division by zero";
        return nullptr;
      }
      // As in Python, '/' is true division: 1/255 is a float.
      lhs = makeNumber(lhs->loc, lhs->asDouble() / rhs->asDouble());
    } else if (lhs->kind == Term::Kind::Int && rhs->kind == Term::Kind::Int) {
      int64_t product;
      if (llvm::MulOverflow(lhs->intValue, rhs->intValue, product)) {
        diags.error(op.loc) << "integer product overflows 64 bits";
        return nullptr;
      }
      lhs->intValue = product;
    } else {
      lhs = makeNumber(lhs->loc, lhs->asDouble() * rhs->asDouble());
    }
    if (lhs->kind == Term::Kind::Float && !std::isfinite(lhs->floatValue)) {
      diags.error(op.loc) << "the result of '" << op.text << "' is out of range";
      return nullptr;
    }
  }
  return lhs;
}

// unary ::= '-'* primary
TermPtr Parser::parseUnary() {
  SourceLoc loc = cur().loc;
  bool negate = false;
  while (consumeIf(TokenKind::Minus))
    negate = !negate;
  TermPtr term = parsePrimary();
  if (!term || !negate)
    return term;
  if (!term->isNumber()) {
    diags.error(loc) << "'-' needs a number";
    return nullptr;
  }
  term->loc = loc;
  if (term->kind == Term::Kind::Int) {
    if (term->intValue == INT64_MIN) {
      diags.error(loc) << "integer negation overflows 64 bits";
      return nullptr;
    }
    term->intValue = -term->intValue;
  }
  else
    term->floatValue = -term->floatValue;
  return term;
}

// primary ::= integer | float | string | 'true' | 'false'
//           | identifier ('(' arg-list ')')?
//           | '(' term (',' term)* ','? ')' | '[' (term (',' term)* ','?)? ']'
TermPtr Parser::parsePrimary() {
  auto term = std::make_unique<Term>();
  term->loc = cur().loc;
  switch (cur().kind) {
  case TokenKind::Integer:
    term->kind = Term::Kind::Int;
    term->intValue = take().intValue;
    return term;
  case TokenKind::Float:
    term->kind = Term::Kind::Float;
    term->floatValue = take().floatValue;
    return term;
  case TokenKind::String:
    term->kind = Term::Kind::String;
    term->text = take().stringValue;
    return term;
  case TokenKind::KwTrue:
  case TokenKind::KwFalse:
    term->kind = Term::Kind::Bool;
    term->boolValue = take().is(TokenKind::KwTrue);
    return term;
  case TokenKind::Identifier: {
    term->text = take().text.str();
    term->kind = Term::Kind::Name;
    if (consumeIf(TokenKind::LParen)) {
      ENTER_NESTING(term->loc, nullptr);
      term->kind = Term::Kind::Call;
      if (!parseArgList(term->args, TokenKind::RParen))
        return nullptr;
    }
    return term;
  }
  case TokenKind::LParen:
  case TokenKind::LBracket: {
    bool tuple = take().is(TokenKind::LParen);
    TokenKind close = tuple ? TokenKind::RParen : TokenKind::RBracket;
    ENTER_NESTING(term->loc, nullptr);
    term->kind = tuple ? Term::Kind::Tuple : Term::Kind::List;
    bool sawComma = false;
    while (!cur().is(close)) {
      TermPtr element = parseTerm();
      if (!element)
        return nullptr;
      term->elements.push_back(std::move(element));
      if (!consumeIf(TokenKind::Comma))
        break;
      sawComma = true;
    }
    if (!expect(close, tuple ? "to close the tuple" : "to close the list"))
      return nullptr;
    // '(5)' is just 5; '(5,)' and '(3, 5)' are tuples, as in Python.
    if (tuple && term->elements.size() == 1 && !sawComma)
      return std::move(term->elements.front());
    if (tuple && term->elements.empty()) {
      diags.error(term->loc) << "empty tuple";
      return nullptr;
    }
    return term;
  }
  default:
    errorAtCurrent("expected a value (a number, true/false, a name, a tuple or "
                   "a list)");
    return nullptr;
  }
}

std::unique_ptr<Model> parseModel(llvm::StringRef buffer,
                                  FrontendDiagnostics &diags) {
  Parser parser(buffer, diags);
  return parser.parseModel();
}

} // namespace kiln

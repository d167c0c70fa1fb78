//===- AST.cpp - printing the syntax tree ---------------------------------===//
#include "kiln/Frontend/AST.h"

#include "kiln/Dialect/NN/IR/ShapeInference.h"

#include "llvm/ADT/STLExtras.h"

namespace kiln::ast {

const LayerDecl *Model::findLayer(llvm::StringRef name) const {
  for (const LayerDecl &layer : layers)
    if (layer.name == name)
      return &layer;
  return nullptr;
}

static void printArgs(const std::vector<Arg> &args, llvm::raw_ostream &os) {
  llvm::interleaveComma(args, os, [&](const Arg &arg) {
    if (!arg.name.empty())
      os << arg.name << "=";
    printTerm(*arg.value, os);
  });
}

void printTerm(const Term &term, llvm::raw_ostream &os) {
  switch (term.kind) {
  case Term::Kind::Int: os << term.intValue; break;
  case Term::Kind::Float: {
    // "4.0", not "4": a float must not read like the integer it is not.
    std::string text = nn::formatNumber(term.floatValue);
    if (text.find_first_of(".eEn") == std::string::npos)
      text += ".0";
    os << text;
    break;
  }
  case Term::Kind::Bool: os << (term.boolValue ? "true" : "false"); break;
  case Term::Kind::String: os << '"' << term.text << '"'; break;
  case Term::Kind::Name: os << term.text; break;
  case Term::Kind::Tuple:
  case Term::Kind::List: {
    bool tuple = term.kind == Term::Kind::Tuple;
    os << (tuple ? '(' : '[');
    llvm::interleaveComma(term.elements, os,
                          [&](const TermPtr &e) { printTerm(*e, os); });
    if (tuple && term.elements.size() == 1)
      os << ','; // (5,) as in Python: (5) is just 5
    os << (tuple ? ')' : ']');
    break;
  }
  case Term::Kind::Call:
    os << term.text << '(';
    printArgs(term.args, os);
    os << ')';
    break;
  }
}

void printExpr(const Expr &expr, llvm::raw_ostream &os) {
  switch (expr.kind) {
  case Expr::Kind::Name: os << expr.name; break;
  case Expr::Kind::Add:
    os << '(';
    printExpr(*expr.operands[0], os);
    os << " + ";
    printExpr(*expr.operands[1], os);
    os << ')';
    break;
  case Expr::Kind::Call:
    os << expr.name << '(';
    llvm::interleaveComma(expr.operands, os,
                          [&](const ExprPtr &e) { printExpr(*e, os); });
    if (!expr.operands.empty() && !expr.kwargs.empty())
      os << ", ";
    printArgs(expr.kwargs, os);
    os << ')';
    break;
  }
}

static void printLoc(SourceLoc loc, llvm::raw_ostream &os) {
  os << " @" << loc.line << ':' << loc.column << '\n';
}

static void dumpLayer(const LayerDecl &layer, unsigned indent,
                      llvm::raw_ostream &os) {
  os.indent(indent) << "Layer " << layer.name << " = " << layer.kind;
  if (layer.kind == "sequential") {
    printLoc(layer.loc, os);
    for (const LayerDecl &member : layer.members)
      dumpLayer(member, indent + 2, os);
    return;
  }
  if (!layer.args.empty()) {
    os << '(';
    printArgs(layer.args, os);
    os << ')';
  }
  printLoc(layer.loc, os);
}

void dump(const Model &model, llvm::raw_ostream &os) {
  os << "Model " << model.name;
  printLoc(model.loc, os);
  if (model.input) {
    const InputDecl &input = *model.input;
    os << "  Input " << input.name << ": " << input.dtype << '[';
    for (size_t i = 0; i < input.dims.size(); ++i) {
      if (i)
        os << ", ";
      if (input.dims[i] < 0)
        os << input.dimNames[i];
      else
        os << input.dims[i];
    }
    os << ']';
    printLoc(input.loc, os);
  }
  for (const LayerDecl &layer : model.layers)
    dumpLayer(layer, 2, os);
  if (model.hasForward) {
    os << "  Forward";
    printLoc(model.forwardLoc, os);
    for (const Stmt &stmt : model.forward) {
      if (stmt.isReturn())
        os << "    Return ";
      else
        os << "    Let " << stmt.name << " = ";
      printExpr(*stmt.value, os);
      printLoc(stmt.loc, os);
    }
  }
  if (model.hasTrain) {
    os << "  Train";
    printLoc(model.trainLoc, os);
    for (const Setting &setting : model.train) {
      os << "    " << setting.key << " = ";
      printTerm(*setting.value, os);
      printLoc(setting.loc, os);
    }
  }
}

} // namespace kiln::ast

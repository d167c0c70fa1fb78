//===- AST.h - the syntax tree of a Kiln model ------------------*- C++ -*-===//
//
// Every node keeps the location of its first token, so every later error (in
// Sema, in the importer, in a pass) can point into the user's source.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_AST_H
#define KILN_FRONTEND_AST_H

#include "kiln/Frontend/Diagnostics.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::ast {

struct Term;
using TermPtr = std::unique_ptr<Term>;

/// An argument of a constructor or setting: positional (empty name) or
/// `name = value`.
struct Arg {
  std::string name;
  SourceLoc loc;
  TermPtr value;
};

/// A constant: the arguments of layer constructors and training settings.
/// `1/255` and `-1` are folded by the parser into one number.
struct Term {
  enum class Kind { Int, Float, Bool, String, Name, Tuple, List, Call };
  Kind kind;
  SourceLoc loc;
  int64_t intValue = 0;
  double floatValue = 0;
  bool boolValue = false;
  std::string text;               // String, Name, Call (the callee)
  std::vector<TermPtr> elements;  // Tuple, List
  std::vector<Arg> args;          // Call

  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  double asDouble() const {
    return kind == Kind::Int ? static_cast<double>(intValue) : floatValue;
  }
};

/// A value Sema resolved for a constructor parameter (defaults included).
struct AttrValue {
  enum class Kind { Int, IntPair, Float, FloatPair, Bool, Name } kind = Kind::Int;
  int64_t ints[2] = {0, 0};
  double floats[2] = {0, 0};
  bool boolValue = false;
  // `None` where the parameter takes it (BatchNorm's momentum=None, the
  // cumulative average): no number at all, so it cannot be mistaken for one.
  bool isNone = false;
  std::string name;
  SourceLoc loc; // of the argument, or of the constructor for a default
};

/// std::map rather than llvm::StringMap: its move is noexcept, so vectors
/// of declarations move rather than copy when they grow.
using AttrMap = std::map<std::string, AttrValue>;

/// `name = kind(args)`, or one member of a `sequential { ... }` block, whose
/// name is its index as in nn.Sequential.
struct LayerDecl {
  std::string name;
  SourceLoc loc;
  std::string kind;   // "linear", "batchnorm1d", "sequential", ...
  SourceLoc kindLoc;
  std::vector<Arg> args;
  std::vector<LayerDecl> members; // sequential only
  SourceLoc endLoc;               // sequential: its closing brace

  // Filled by Sema.
  AttrMap attrs;
  bool used = false;

  const AttrValue &attr(const std::string &key) const { return attrs.at(key); }
  int64_t intAttr(const std::string &key) const { return attr(key).ints[0]; }
  double floatAttr(const std::string &key) const { return attr(key).floats[0]; }
  bool boolAttr(const std::string &key) const { return attr(key).boolValue; }
};

/// An expression of the forward section.
struct Expr {
  enum class Kind { Name, Call, Add };
  Kind kind;
  SourceLoc loc;
  std::string name;                         // Name: the value; Call: the callee
  std::vector<std::unique_ptr<Expr>> operands; // Call: inputs; Add: lhs, rhs
  std::vector<Arg> kwargs;                  // Call: keyword arguments
};
using ExprPtr = std::unique_ptr<Expr>;

/// `name = expr` or `return expr`.
struct Stmt {
  SourceLoc loc;
  std::string name; // empty for return
  ExprPtr value;
  bool isReturn() const { return name.empty(); }
};

/// `key = term` or `key(args)` in the train section.
struct Setting {
  std::string key;
  SourceLoc loc;
  TermPtr value;
};

/// A call-style setting after Sema: `adam(lr=1e-3)`, `scale(1/255)`.
struct ResolvedCall {
  std::string name;
  SourceLoc loc;
  AttrMap args;
};

/// The train section after Sema, defaults filled in.
struct TrainConfig {
  std::string loss = "cross_entropy";
  ResolvedCall optimizer;
  int64_t batchSize = 64;
  int64_t epochs = 10;
  double validation = 0;
  llvm::Optional<ResolvedCall> earlyStopping;
  std::string data = "fashion_mnist";
  std::vector<ResolvedCall> transforms;
  int64_t seed = 0;
};

struct InputDecl {
  std::string name;
  SourceLoc loc;
  std::string dtype;
  SourceLoc dtypeLoc;
  std::vector<int64_t> dims;      // -1 for a symbolic (batch) dimension
  std::vector<std::string> dimNames;
  std::vector<SourceLoc> dimLocs;
};

struct Model {
  std::string name;
  SourceLoc loc;
  llvm::Optional<InputDecl> input;
  std::vector<LayerDecl> layers;
  bool hasForward = false;
  SourceLoc forwardLoc, forwardEndLoc;
  std::vector<Stmt> forward;
  bool hasTrain = false;
  SourceLoc trainLoc;
  std::vector<Setting> train;
  TrainConfig trainConfig; // filled by Sema when hasTrain

  const LayerDecl *findLayer(llvm::StringRef name) const;
};

/// Prints the tree, one node per line, for `kilnc emit --emit=ast`.
void dump(const Model &model, llvm::raw_ostream &os);
void printTerm(const Term &term, llvm::raw_ostream &os);
void printExpr(const Expr &expr, llvm::raw_ostream &os);

} // namespace kiln::ast

#endif // KILN_FRONTEND_AST_H

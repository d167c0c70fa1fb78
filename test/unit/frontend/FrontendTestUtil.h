//===- FrontendTestUtil.h - a fixture recording frontend diagnostics ------===//
//
// Frontend errors go through MLIR's diagnostic engine; the fixture installs a
// handler that records each one (severity, message, line, column) so a test
// can check exactly what the user would see.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_FRONTEND_FRONTENDTESTUTIL_H
#define KILN_TEST_UNIT_FRONTEND_FRONTENDTESTUTIL_H

#include "kiln/Frontend/Diagnostics.h"
#include "kiln/Frontend/Lexer.h"
#include "kiln/Frontend/Parser.h"
#include "kiln/Frontend/Sema.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace kiln::test {

struct RecordedDiag {
  mlir::DiagnosticSeverity severity;
  std::string message;
  unsigned line = 0;
  unsigned column = 0;

  bool isError() const { return severity == mlir::DiagnosticSeverity::Error; }
};

inline std::ostream &operator<<(std::ostream &os, const RecordedDiag &diag) {
  return os << diag.line << ':' << diag.column << ": "
            << (diag.isError() ? "error" : "other") << ": " << diag.message;
}

/// Owns an MLIRContext, a recording handler and the FrontendDiagnostics of
/// "test.kiln", plus the source text (tokens point into it).
class FrontendTest : public ::testing::Test {
protected:
  FrontendTest()
      : handler(&context,
                [this](mlir::Diagnostic &diag) {
                  RecordedDiag recorded{diag.getSeverity(), diag.str()};
                  if (auto loc = diag.getLocation().dyn_cast<mlir::FileLineColLoc>()) {
                    recorded.line = loc.getLine();
                    recorded.column = loc.getColumn();
                  }
                  recorded_.push_back(std::move(recorded));
                  return mlir::success();
                }),
        diags(&context, "test.kiln") {}

  /// Every token of `text` up to and including the first Eof (bounded, so a
  /// lexer that never ends fails the test rather than hanging it).
  std::vector<Token> lexAll(std::string text) {
    source = std::move(text);
    Lexer lexer(source, diags);
    std::vector<Token> tokens;
    for (size_t i = 0; i <= source.size() + 1; ++i) {
      tokens.push_back(lexer.next());
      if (tokens.back().is(TokenKind::Eof))
        return tokens;
    }
    ADD_FAILURE() << "the lexer did not reach Eof";
    return tokens;
  }

  std::unique_ptr<ast::Model> parse(std::string text) {
    source = std::move(text);
    return parseModel(source, diags);
  }

  /// Parses and, if that succeeded, runs Sema; null if either failed.
  std::unique_ptr<ast::Model> check(std::string text) {
    std::unique_ptr<ast::Model> model = parse(std::move(text));
    if (!model || mlir::failed(checkModel(*model, diags)))
      return nullptr;
    return model;
  }

  std::vector<RecordedDiag> errors() const {
    std::vector<RecordedDiag> out;
    for (const RecordedDiag &diag : recorded_)
      if (diag.isError())
        out.push_back(diag);
    return out;
  }
  const std::vector<RecordedDiag> &recorded() const { return recorded_; }

  mlir::MLIRContext context;
  std::vector<RecordedDiag> recorded_;
  mlir::ScopedDiagnosticHandler handler;
  FrontendDiagnostics diags;
  std::string source;
};

/// Asserts that exactly one error was reported, with this message and place.
#define EXPECT_ONE_ERROR(message_, line_, column_)                              \
  do {                                                                         \
    std::vector<::kiln::test::RecordedDiag> errs = errors();                   \
    ASSERT_EQ(errs.size(), 1u) << ::testing::PrintToString(errs);              \
    EXPECT_EQ(errs[0].message, message_);                                       \
    EXPECT_EQ(errs[0].line, static_cast<unsigned>(line_));                     \
    EXPECT_EQ(errs[0].column, static_cast<unsigned>(column_));                 \
  } while (false)

} // namespace kiln::test

#endif // KILN_TEST_UNIT_FRONTEND_FRONTENDTESTUTIL_H

//===- TerminalSafeStream.h - diagnostics that cannot drive a terminal -*- C++ -*-===//
//
// Diagnostics quote what users' files contain: source lines, tensor names,
// dtype strings, paths. An escape sequence in one of them (ESC [ ... from a
// hostile .kiln line or a safetensors key) would reach the terminal raw and
// could rewrite what the user sees. This stream forwards text to another
// one with every control character escaped: C0 controls other than newline
// and tab, DEL, and the C1 controls (U+0080-U+009F, and stray bytes
// 0x80-0x9F that are not part of a UTF-8 sequence), as \xHH.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_TERMINALSAFESTREAM_H
#define KILN_DRIVER_TERMINALSAFESTREAM_H

#include "llvm/Support/raw_ostream.h"

namespace kiln {

class TerminalSafeStream : public llvm::raw_ostream {
public:
  explicit TerminalSafeStream(llvm::raw_ostream &out) : out(out) { SetUnbuffered(); }
  ~TerminalSafeStream() override;

private:
  void write_impl(const char *data, size_t size) override;
  uint64_t current_pos() const override { return position; }

  llvm::raw_ostream &out;
  uint64_t position = 0;
  /// The bytes of a UTF-8 sequence still expected, and whether it is the
  /// two-byte form of a C1 control (lead byte 0xC2, then 0x80-0x9F).
  int continuation = 0;
  bool afterC2 = false;
};

/// Escapes control characters in `text` (as TerminalSafeStream does).
std::string escapeControlCharacters(llvm::StringRef text);

} // namespace kiln

#endif // KILN_DRIVER_TERMINALSAFESTREAM_H

//===- TerminalSafeStream.cpp - diagnostics that cannot drive a terminal --===//
#include "kiln/Driver/TerminalSafeStream.h"

#include "llvm/Support/Format.h"

namespace kiln {

namespace {

void writeEscaped(llvm::raw_ostream &out, unsigned char byte) {
  out << llvm::format("\\x%02x", byte);
}

} // namespace

TerminalSafeStream::~TerminalSafeStream() {
  flush();
  if (afterC2)
    writeEscaped(out, 0xC2);
  out.flush();
}

void TerminalSafeStream::write_impl(const char *data, size_t size) {
  position += size;
  for (size_t i = 0; i < size; ++i) {
    auto byte = static_cast<unsigned char>(data[i]);
    if (continuation > 0 && (byte & 0xC0) == 0x80) {
      // U+0080-U+009F: 0xC2 then 0x80-0x9F.
      if (afterC2 && byte <= 0x9F) {
        out << "\\u00" << llvm::format("%02x", byte);
      } else {
        if (afterC2)
          out << static_cast<char>(0xC2);
        out << static_cast<char>(byte);
      }
      afterC2 = false;
      --continuation;
      continue;
    }
    if (afterC2) { // a lead byte without its continuation
      writeEscaped(out, 0xC2);
      afterC2 = false;
    }
    continuation = 0;
    if ((byte < 0x20 && byte != '\n' && byte != '\t') || byte == 0x7F ||
        (byte >= 0x80 && byte < 0xC0)) {
      writeEscaped(out, byte);
      continue;
    }
    if (byte >= 0xC0) {
      continuation = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : 1;
      if (byte == 0xC2) {
        afterC2 = true; // held until the next byte says what it starts
        continue;
      }
    }
    out << static_cast<char>(byte);
  }
  out.flush();
}

std::string escapeControlCharacters(llvm::StringRef text) {
  std::string result;
  llvm::raw_string_ostream sink(result);
  {
    TerminalSafeStream safe(sink);
    safe << text;
  }
  return sink.str();
}

} // namespace kiln

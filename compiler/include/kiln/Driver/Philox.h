//===- Philox.h - Philox4x32-10, a counter-based generator ------*- C++ -*-===//
//
// Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2,
// 3" (SC 2011), as Random123 defines it: ten rounds of
//   (c0, c1, c2, c3) <- (hi(M1·c2) ^ c1 ^ k0, lo(M1·c2), hi(M0·c0) ^ c3 ^ k1, lo(M0·c0))
// with the key (k0, k1) bumped by the Weyl constants (W0, W1) between
// rounds. Each output is a function of (counter, key) alone, so a stream
// drawn from it is the same whatever order, thread or vector lane computes
// its elements. nn.dropout_mask uses the same function (built in Halide in
// TrainLowering.cpp); this one is the runtime's (kiln/runtime/
// initial_state.h, which training programs draw their initial state from),
// for the compiler and the tests' references. Random123's known answers
// are checked in test/unit/codegen/DropoutTest.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_PHILOX_H
#define KILN_DRIVER_PHILOX_H

#include "kiln/runtime/initial_state.h"

#include <array>
#include <cstdint>

namespace kiln {

inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter,
                                             std::array<uint32_t, 2> key) {
  std::array<uint32_t, 4> out;
  kiln_philox4x32_10(counter.data(), key.data(), out.data());
  return out;
}

/// A 32-bit word's top 24 bits as a float in [0, 1): u = (w >> 8) · 2^-24,
/// every value exact in f32.
inline double unitInterval(uint32_t word) { return static_cast<double>(word >> 8) * 0x1.0p-24; }

} // namespace kiln

#endif // KILN_DRIVER_PHILOX_H

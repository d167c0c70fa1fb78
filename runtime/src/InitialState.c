/*===- InitialState.c - PyTorch's default initialisation, from a seed ----===*/
#include "kiln/runtime/initial_state.h"

void kiln_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  const uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += w0;
      k1 += w1;
    }
    uint64_t p0 = (uint64_t)m0 * c[0];
    uint64_t p1 = (uint64_t)m1 * c[2];
    uint32_t next[4] = {(uint32_t)(p1 >> 32) ^ c[1] ^ k0, (uint32_t)p1,
                        (uint32_t)(p0 >> 32) ^ c[3] ^ k1, (uint32_t)p0};
    for (int i = 0; i < 4; ++i)
      c[i] = next[i];
  }
  for (int i = 0; i < 4; ++i)
    out[i] = c[i];
}

uint64_t kiln_initial_stream(const char *key) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64: offset basis, prime */
  for (const unsigned char *byte = (const unsigned char *)key; *byte; ++byte) {
    h ^= *byte;
    h *= 0x100000001b3ull;
  }
  return h;
}

float kiln_initial_uniform(uint64_t seed, uint64_t stream, uint64_t k, double bound) {
  const uint32_t counter[4] = {(uint32_t)k, (uint32_t)(k >> 32),
                               (uint32_t)stream | 0x80000000u, (uint32_t)(stream >> 32)};
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t out[4];
  kiln_philox4x32_10(counter, key, out);
  /* The top 24 bits as u in [0, 1): every value exact in f32. */
  double u = (double)(out[0] >> 8) * (1.0 / 16777216.0);
  return (float)(bound * (2.0 * u - 1.0));
}

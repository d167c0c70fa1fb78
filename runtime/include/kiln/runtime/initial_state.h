/* Kiln runtime: PyTorch's default initialisation, drawn from a seed.
 *
 * What a training run starts from without a checkpoint: each Linear and
 * Conv2d weight and bias U(-b, b) with b = 1/sqrt(fan_in) (torch.nn 1.13's
 * reset_parameters, kaiming_uniform_ with a = sqrt(5)), BatchNorm's weight
 * 1, bias 0, running mean 0, running variance 1; optimizer state and the
 * step count 0. The compiler decides each tensor's rule; this is the one
 * implementation of the stream both the compiler (`kilnc train`) and
 * training programs (`kilnc build --mode=train`) draw from, so a seed gives
 * the same bits everywhere. Element k (row-major) of the tensor under
 * state_dict key K is
 *   h = FNV-1a-64(the bytes of K)
 *   w = philox4x32_10(counter = (k mod 2^32, k >> 32, (h mod 2^32) | 2^31, h >> 32),
 *                     key = (seed mod 2^32, seed >> 32))[0]
 *   u = (w >> 8) * 2^-24 in [0, 1)
 *   value = f32(b * (2u - 1)), the double product rounded to nearest.
 * Bit 31 of the third counter word keeps these counters apart from
 * dropout's, whose third word is a dropout layer's index. PyTorch's own
 * stream (MT19937) is not reproduced: the same seed gives other weights
 * than torch.manual_seed, from the same distributions.
 *
 * Philox4x32-10: Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
 * as easy as 1, 2, 3" (SC 2011), as Random123 defines it (known answers
 * in test/unit/codegen/DropoutTest.cpp).
 *
 * Thread safety: pure functions.
 */
#ifndef KILN_RUNTIME_INITIAL_STATE_H
#define KILN_RUNTIME_INITIAL_STATE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a state tensor starts. */
typedef enum kiln_initial_kind_t {
  KILN_INITIAL_NONE = 0,    /* no default: the state must be loaded */
  KILN_INITIAL_UNIFORM = 1, /* U(-bound, bound) from the stream above */
  KILN_INITIAL_FILL = 2,    /* every element `value` */
  KILN_INITIAL_ZERO = 3     /* optimizer state and the step count */
} kiln_initial_kind_t;

/* Philox4x32-10 of `counter` under `key`, into `out`. */
void kiln_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* h of the stream above: FNV-1a-64 of `key`'s bytes. */
uint64_t kiln_initial_stream(const char *key);

/* Element `k` of a uniform tensor of `bound` in stream `stream`. */
float kiln_initial_uniform(uint64_t seed, uint64_t stream, uint64_t k, double bound);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_INITIAL_STATE_H */

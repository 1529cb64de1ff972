// Philox4x32-10 (Salmon et al., 2011), the counter-based random numbers of
// stochastic rounding: a pure function of (seed, step, element index), so
// the CPU core and the CUDA kernels draw the same word for every element.
#ifndef KERAS_INT_CC_CORE_PHILOX_H_
#define KERAS_INT_CC_CORE_PHILOX_H_

#include <cstdint>

#include "cc/core/host_device.h"

namespace keras_int {

// Four 32-bit random words for a 128-bit counter and a 64-bit key.
KI_HOST_DEVICE void Philox4x32(const uint32_t counter[4], uint64_t key, uint32_t out[4]) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// The random word stochastic rounding uses for element `index` at `step`:
// word index % 4 of Philox(counter = (index / 4, step), key = seed).
KI_HOST_DEVICE uint32_t StochasticWord(uint64_t seed, uint64_t step, uint64_t index) {
  const uint64_t block = index / 4;
  const uint32_t counter[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                               static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)};
  uint32_t out[4];
  Philox4x32(counter, seed, out);
  return out[index % 4];
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_PHILOX_H_

// The byte split of the DFP16 products (docs/algorithms.md 16), shared by
// the CPU GEMM (gemm16.h) and its CUDA twin (cc/gpu/gemm16.cu.cc):
// v = 256 * HighByte(v) + LowByteCentred(v) + 128, both bytes in [-128, 127].
#ifndef KERAS_INT_CC_CORE_GEMM16_ELEMENT_H_
#define KERAS_INT_CC_CORE_GEMM16_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"

namespace keras_int {

KI_HOST_DEVICE int8_t HighByte(int16_t v) { return static_cast<int8_t>(v >> 8); }
KI_HOST_DEVICE int8_t LowByteCentred(int16_t v) { return static_cast<int8_t>((v & 255) - 128); }

// One result of a depth part kc from the byte products of its row i and
// column j: high = row 2i of [HH, HL, sum Ah] and low = row 2i + 1 of [LH,
// LL, sum Al] (the planes' sums in column 2N), ones = the row [sum Bh, sum
// Bl]: 65536 HH + 256 (HL + LH) + LL + 128 (sum a + sum b) - 16384 kc, with
// sum v = 256 sum h + sum l + 128 kc.
KI_HOST_DEVICE int64_t CombineBytePlanes(const int32_t* high, const int32_t* low, const int32_t* ones, int64_t N,
                                         int64_t j, int64_t kc) {
  const int64_t a_term = 128 * (256 * int64_t{high[2 * N]} + low[2 * N]) + 16384 * kc;
  const int64_t b_term = 128 * (256 * int64_t{ones[j]} + ones[N + j]);
  return int64_t{high[j]} * 65536 + (int64_t{high[N + j]} + low[j]) * 256 + low[N + j] + a_term + b_term;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GEMM16_ELEMENT_H_

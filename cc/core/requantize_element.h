// requantize_channels (docs/algorithms.md section 8) on one element: int64
// values whose exponent may differ per element (per channel, per row) to
// int8 (or int16: layer norm's dx) mantissas with one exponent. Shared by the normalizations and the
// softmax gradient, on the CPU and in the CUDA kernels.
#ifndef KERAS_INT_CC_CORE_REQUANTIZE_ELEMENT_H_
#define KERAS_INT_CC_CORE_REQUANTIZE_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/rounding.h"

namespace keras_int {

// ValuePosition of a zero: below every non-zero value's, so it never wins.
constexpr int kNoValuePosition = -(1 << 20);

// bit_length(|v|) + exponent, the position that requantize_channels
// maximises; the result exponent is the largest position minus bits - 1.
KI_HOST_DEVICE int ValuePosition(int64_t v, int exponent) {
  return v == 0 ? kNoValuePosition : BitLength64(Magnitude64(v)) + exponent;
}

// One element: v at exponent e_c to a mantissa at exponent e, clipped to
// +-limit (127 for int8, 32767 for int16).
KI_HOST_DEVICE int32_t RequantizeValue(int64_t v, int e_c, int e, Rounding rounding, uint32_t random,
                                       int64_t limit = 127) {
  if (v == 0) return 0;  // a zero row's exponent may be anything: no shift by it
  const int s = e - e_c;
  if (s <= 0) return static_cast<int32_t>(v * (int64_t{1} << -s));  // below the limit: exact
  return static_cast<int32_t>(Clip64(RoundShift64(v, s, rounding, random), limit));
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_REQUANTIZE_ELEMENT_H_

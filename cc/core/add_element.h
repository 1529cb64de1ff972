// Per-element arithmetic of the residual add and the bias (add.h), shared
// by the CPU core and the CUDA kernels (cc/gpu).
#ifndef KERAS_INT_CC_CORE_ADD_ELEMENT_H_
#define KERAS_INT_CC_CORE_ADD_ELEMENT_H_

#include <climits>
#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/rounding.h"

namespace keras_int {

// One element of the aligned add: a moved left by `left` bits (exact), b
// rounded right by `right` bits (0 unless the exponents differ by more than
// the largest exact alignment).
KI_HOST_DEVICE int32_t AlignedAddElement(int8_t a, int8_t b, int left, int right) {
  return a * (int32_t{1} << left) + RoundShift(b, right, Rounding::kNearest, 0);
}

// The same for int16 operands into int64 (left <= kMaxAlignShift16).
KI_HOST_DEVICE int64_t AlignedAddElement64(int16_t a, int16_t b, int left, int right) {
  return a * (int64_t{1} << left) + RoundShift64(b, right, Rounding::kNearest, 0);
}

// bias * 2**shift (shift < 0: rounded to nearest), exactly, in int64.
KI_HOST_DEVICE int64_t AlignedBias(int32_t bias, int shift) {
  return shift >= 0 ? int64_t{bias} * (int64_t{1} << shift)
                    : RoundShift64(bias, -shift, Rounding::kNearest, 0);
}

// acc + aligned bias into *sum; false (and *sum untouched) where the sum
// leaves the accumulator's type: int32, or int64 for the DFP16 products.
KI_HOST_DEVICE bool AddWithinRange(int32_t acc, int64_t aligned, int32_t* sum) {
  const int64_t wide = acc + aligned;  // |aligned| <= 2**62: exact
  if (wide > INT32_MAX || wide < INT32_MIN) return false;
  *sum = static_cast<int32_t>(wide);
  return true;
}
KI_HOST_DEVICE bool AddWithinRange(int64_t acc, int64_t aligned, int64_t* sum) {
  const int64_t wrapped = static_cast<int64_t>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(aligned));
  if (((acc ^ wrapped) & (aligned ^ wrapped)) < 0) return false;  // both addends' sign differs from the sum's
  *sum = wrapped;
  return true;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ADD_ELEMENT_H_

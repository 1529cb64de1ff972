// Residual add of two DFP tensors with different exponents (ours, spec
// section 3): the operand with the larger exponent is shifted left onto the
// smaller one, exactly, so the sum is rounded only once, by requantize.
#ifndef KERAS_INT_CC_CORE_ADD_H_
#define KERAS_INT_CC_CORE_ADD_H_

#include <cstdint>

#include "cc/core/limits.h"
#include "cc/core/status.h"

namespace keras_int {

// How AlignedAdd lines up two exponents: the operand with the larger
// exponent (a after `swap`) moves left by `left`, the other right by `right`.
struct AddAlignment {
  bool swap;
  int left, right, exponent;
};
// Whether AlignExponents needs to know that the operand with the larger
// exponent is all zero: only when the exponents are too far apart to align
// exactly.
// `max_shift`: the largest exact alignment (kMaxAlignShift for int8,
// kMaxAlignShift16 for int16 operands).
inline bool AlignmentNeedsZeroTest(int ea, int eb, int max_shift = kMaxAlignShift) {
  return (ea > eb ? ea - eb : eb - ea) > max_shift;
}
// `larger_is_zero`: the operand with the larger exponent is all zero (read
// only where AlignmentNeedsZeroTest).
inline AddAlignment AlignExponents(int ea, int eb, bool larger_is_zero, int max_shift = kMaxAlignShift) {
  const bool swap = ea < eb;
  const int hi = swap ? eb : ea, lo = swap ? ea : eb;
  // An all-zero tensor's exponent carries no information (quantize gives it
  // 0): x + 0 is x, exactly, at x's exponent.
  if (hi - lo > max_shift && larger_is_zero) return AddAlignment{swap, 0, 0, lo};
  // Beyond kMaxAlignShift, the smaller operand is first rounded towards the
  // larger one's scale (its bits then lie below 2**-23 of the larger one's
  // unit, far below the rounding of the sum, which has at least the larger
  // operand's bit width).
  const int left = hi - lo < max_shift ? hi - lo : max_shift;
  return AddAlignment{swap, left, hi - lo - left, hi - left};
}

// acc = a * 2**ea + b * 2**eb expressed at *acc_exponent.
void AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                int* acc_exponent);
// The same for int16 operands (DFP16) into int64, exact up to kMaxAlignShift16.
void AlignedAdd(const int16_t* a, int ea, const int16_t* b, int eb, int64_t n, int64_t* acc,
                int* acc_exponent);

// acc[r, c] += bias[c] * 2**shift (shift < 0: rounded to nearest), exactly;
// a sum outside int32 is an error.
Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift);
// The same on the int64 accumulators of the DFP16 products (a sum outside int64 is an error).
Status AddBias(int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ADD_H_

// Residual add of two DFP tensors with different exponents (ours, spec
// section 3): the operand with the larger exponent is shifted left onto the
// smaller one, exactly, so the sum is rounded only once, by requantize.
#ifndef KERAS_INT_CC_CORE_ADD_H_
#define KERAS_INT_CC_CORE_ADD_H_

#include <cstdint>

namespace keras_int {

// Largest exact alignment: 8-bit mantissas shifted by 23 stay below 2**30.
constexpr int kMaxAlignShift = 23;

// acc = a * 2**ea + b * 2**eb expressed at *acc_exponent.
void AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                int* acc_exponent);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ADD_H_

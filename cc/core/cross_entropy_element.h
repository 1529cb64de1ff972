// One row of NITI's integer softmax cross-entropy gradient (spec section 4),
// shared by the CPU core (cross_entropy.cc) and the CUDA kernel
// (cc/gpu/training.cu.cc).
#ifndef KERAS_INT_CC_CORE_CROSS_ENTROPY_ELEMENT_H_
#define KERAS_INT_CC_CORE_CROSS_ENTROPY_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/integer_exp.h"
#include "cc/core/limits.h"
#include "cc/core/rounding.h"

namespace keras_int {

// err[i] ~= round((softmax(q * 2**e) - onehot(label))[i] * 2**(bits - 1)) of
// one row, T = int8_t or int16_t for q and err (`first_index` = the row's
// first element in the tensor, for the random words of stochastic
// rounding). Recomputes the numerators instead of storing them, so a GPU
// thread needs no scratch.
template <typename T>
KI_HOST_DEVICE void CrossEntropyGradRow(const T* q, int64_t classes, int exponent, int64_t label, Rounding rounding,
                                        RoundingSeed seed, uint64_t first_index, T* err) {
  constexpr int kBits = 8 * sizeof(T);
  const int64_t s_max = IntegerExpRowMax(q, classes, exponent);
  int64_t sum = 0;
  for (int64_t i = 0; i < classes; ++i) sum += IntegerExpNumerator(q[i], exponent, s_max, kBits);
  // Softmax * 2**(bits + 3) by integer division (numerators below 2**42:
  // the shifted ones below 2**61), then minus the one-hot row, then rounded
  // by 4 bits to the error's scale 2**(bits - 1).
  constexpr int kFractionBits = kBits + 3;
  constexpr int kShift = kFractionBits + CrossEntropyErrorExponent(kBits);
  int64_t total = 0;
  for (int64_t i = 0; i < classes; ++i) {
    total += (IntegerExpNumerator(q[i], exponent, s_max, kBits) << kFractionBits) / sum;
  }
  for (int64_t i = 0; i < classes; ++i) {
    int64_t p = (IntegerExpNumerator(q[i], exponent, s_max, kBits) << kFractionBits) / sum;
    if (i == label) p -= total;
    const int64_t v = RoundShift64(p, kShift, rounding, RandomWordFor(rounding, seed, first_index + i));
    err[i] = static_cast<T>(Clip64(v, (int64_t{1} << (kBits - 1)) - 1));
  }
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_CROSS_ENTROPY_ELEMENT_H_

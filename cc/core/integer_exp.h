// The integer exponential of int8 (or int16, DFP16) DFP values q * 2**e, as the unnormalised
// numerators of a softmax over a row (spec section 4): base 2 with an
// integer log2(e) for ordinary exponents, a second-order Taylor form for
// small values. Shared by the cross-entropy gradient (cross_entropy_element.h)
// and any other integer softmax, on the CPU and in the CUDA kernels.
#ifndef KERAS_INT_CC_CORE_INTEGER_EXP_H_
#define KERAS_INT_CC_CORE_INTEGER_EXP_H_

#include <climits>
#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/rounding.h"

namespace keras_int {

// log2(e) ~= 47274 / 2**15: multiplying by it turns e**x into 2**(x log2 e).
constexpr int64_t kLog2E = 47274;
constexpr int kLog2EShift = 15;
// Exponents at or below this (|q * 2**e| < 1 for int8 q) take the
// second-order Taylor form instead of the base-2 exponent; for `bits`-bit
// mantissas the bound is 1 - bits (ExpTaylorMaxExponent).
constexpr int kExpTaylorMaxExponent = -7;
KI_HOST_DEVICE constexpr int ExpTaylorMaxExponent(int bits) { return 1 - bits; }
// Exponents below this are first rounded to it (the values are then below
// 2**-13, where a softmax is uniform to within int8 precision).
constexpr int kExpMinExponent = -20;
// The base-2 form moves a row's largest exponent to this many bits.
constexpr int kExpRowMaxBits = 10;

// Base-2 exponent s = q * log2(e) * 2**e of one value as an integer (shifts
// on the magnitude), for exponent > kExpTaylorMaxExponent.
KI_HOST_DEVICE int64_t IntegerExpBase2Exponent(int32_t q, int exponent) {
  const int shift = exponent - kLog2EShift;
  const int64_t v = q * kLog2E;  // |q| < 2**15: below 2**31
  // A left shift beyond 32 changes nothing: differences already exceed 10.
  return shift >= 0 ? v * (int64_t{1} << (shift < 32 ? shift : 32))
                    : RoundShift64(v, -shift, Rounding::kTruncate, 0);
}

// The s_max that IntegerExpNumerator needs: the row maximum of
// IntegerExpBase2Exponent (0 for the Taylor form, which does not read it).
template <typename T>
KI_HOST_DEVICE int64_t IntegerExpRowMax(const T* q, int64_t n, int exponent) {
  const int taylor_max = ExpTaylorMaxExponent(8 * sizeof(T));
  int64_t s_max = INT64_MIN;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = exponent <= taylor_max ? 0 : IntegerExpBase2Exponent(q[i], exponent);
    s_max = s > s_max ? s : s_max;
  }
  return s_max;
}

// Unnormalised softmax numerator of one value. For exponent >
// kExpTaylorMaxExponent, s_max is the row maximum of IntegerExpBase2Exponent:
// the exponent is moved so that the row maximum is kExpRowMaxBits and p =
// 2**s - 1. For small values (exponent <= kExpTaylorMaxExponent), the
// second-order Taylor form of e**x scaled by 2**(1 - 2e),
// 2**(1-2e) + q 2**(1-e) + q**2 (always positive); s_max is unused.
// Either way a numerator is below 2**42 (for int16 q the Taylor form runs
// at exponents in [-20, -15]: below 2**41 + 2**36 + 2**30). `bits` is q's
// width (8 or 16).
KI_HOST_DEVICE int64_t IntegerExpNumerator(int32_t q, int exponent, int64_t s_max, int bits = 8) {
  if (exponent <= ExpTaylorMaxExponent(bits)) {
    const int e = exponent > kExpMinExponent ? exponent : kExpMinExponent;
    const int64_t v = RoundShift(q, e - exponent, Rounding::kNearest, 0);
    return (int64_t{1} << (1 - 2 * e)) + v * (int64_t{1} << (1 - e)) + v * v;
  }
  const int64_t s = IntegerExpBase2Exponent(q, exponent) - (s_max - kExpRowMaxBits);
  return (int64_t{1} << (s > 0 ? s : 0)) - 1;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_INTEGER_EXP_H_

// Per-value arithmetic of the integer GELU (docs/algorithms.md section 11):
// I-BERT's second-order polynomial for erf in 16-bit fixed point, its
// derivative, shared by the CPU core (gelu.cc) and the CUDA kernels. A
// tensor's values are int8 mantissas at one exponent, so both functions
// are evaluated once per mantissa (256 entries) and looked up.
#ifndef KERAS_INT_CC_CORE_GELU_ELEMENT_H_
#define KERAS_INT_CC_CORE_GELU_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/rounding.h"

namespace keras_int {

// Fixed point of |x|, erf and the curvature: 16 fraction bits.
constexpr int kGeluFractionBits = 16;
// round(2**16 * 1.769 * sqrt(2)): |x| beyond this is in the flat part (erf = +-1).
constexpr int64_t kGeluClip = 163954;
// round(2**16 * 0.2888 / 2): erf(x / sqrt(2)) ~= 1 - 0.1444 * (min(|x|, clip) - clip)**2.
constexpr int64_t kGeluCurvature = 9463;
// The forward value is at exponent e - 17, the derivative at -17.
constexpr int kGeluValueShift = kGeluFractionBits + 1;

// |x| = |q| * 2**e with 16 fraction bits: exact left shifts, nearest right
// shifts; anything beyond the clip is returned as clip + 1.
KI_HOST_DEVICE int64_t GeluMagnitude(int32_t q, int exponent) {
  const int64_t mag = q < 0 ? -int64_t{q} : q;
  const int shift = exponent + kGeluFractionBits;
  int64_t x;
  if (shift >= 0) {
    x = shift > 20 ? (mag == 0 ? 0 : kGeluClip + 1) : mag << shift;  // 128 << 20 > clip
  } else {
    x = -shift >= 64 ? 0 : RoundShift64(mag, -shift, Rounding::kNearest, 0);
  }
  return x > kGeluClip ? kGeluClip + 1 : x;
}

// d = min(|x|, clip) - clip (<= 0, 16 fraction bits).
KI_HOST_DEVICE int64_t GeluDistance(int64_t magnitude) {
  return (magnitude < kGeluClip ? magnitude : kGeluClip) - kGeluClip;
}

// |erf(x / sqrt(2))| ~= 1 - curvature * d**2 (16 fraction bits).
KI_HOST_DEVICE int64_t GeluErfMagnitude(int64_t magnitude) {
  const int64_t d = GeluDistance(magnitude);
  return (int64_t{1} << kGeluFractionBits) - RoundShift64(kGeluCurvature * d * d, 32, Rounding::kNearest, 0);
}

// GELU(x) ~= x * (1 + erf) / 2: q * (2**16 + sign(q) * |erf|) at exponent
// e - 17 (|value| < 2**24).
KI_HOST_DEVICE int32_t GeluValue(int32_t q, int exponent) {
  if (q == 0) return 0;
  const int64_t erf = GeluErfMagnitude(GeluMagnitude(q, exponent));
  return static_cast<int32_t>(q * ((int64_t{1} << kGeluFractionBits) + (q > 0 ? erf : -erf)));
}

// The derivative of the polynomial form, (1 + erf) / 2 - 0.1444 * x * d * 2,
// at exponent -17: 2**16 + sign(q) |erf| - round_shift(curvature * x * d, 31)
// with x signed (16 fraction bits); |value| < 2**18. At q = 0 it is 1/2.
KI_HOST_DEVICE int32_t GeluDerivative(int32_t q, int exponent) {
  const int64_t magnitude = GeluMagnitude(q, exponent);
  const int64_t erf = q == 0 ? 0 : GeluErfMagnitude(magnitude);
  const int64_t d = GeluDistance(magnitude);
  const int64_t x = q < 0 ? -magnitude : magnitude;  // d = 0 wherever magnitude was capped
  return static_cast<int32_t>((int64_t{1} << kGeluFractionBits) + (q < 0 ? -erf : erf) -
                              RoundShift64(kGeluCurvature * x * d, 31, Rounding::kNearest, 0));
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GELU_ELEMENT_H_

// One float32 carrier element: its bit pattern, the exact power-of-two
// scalings and roundings of the float <-> DFP conversions (spec section 1),
// and the pattern order that ReLU and max pooling compare. Shared by the CPU
// core and the CUDA kernels (cc/gpu).
#ifndef KERAS_INT_CC_CORE_CARRIER_ELEMENT_H_
#define KERAS_INT_CC_CORE_CARRIER_ELEMENT_H_

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cc/core/host_device.h"

namespace keras_int {

KI_HOST_DEVICE uint32_t FloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}

KI_HOST_DEVICE float FloatFromBits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

// A float's bit pattern as an int32 that orders like the value: positive
// patterns as they are, negative ones as minus their magnitude (so -0.0 and
// +0.0 are equal). For finite floats.
KI_HOST_DEVICE int32_t CarrierOrderKey(int32_t bits) {
  const int32_t sign = bits >> 31;  // 0 or -1 (arithmetic shift)
  return ((bits & 0x7FFFFFFF) ^ sign) - sign;  // sign-magnitude to two's complement, branch-free
}

// The pattern of a float with -0.0 replaced by +0.0.
KI_HOST_DEVICE int32_t CanonicalZero(int32_t bits) {
  return bits == INT32_MIN ? 0 : bits;
}

// 2**e as a float, exactly, for e in the normal range [-126, 127].
KI_HOST_DEVICE float PowerOfTwo(int e) { return FloatFromBits(static_cast<uint32_t>(e + 127) << 23); }

// Round half away from zero of |v| < 2**23, exactly: the fraction v - trunc(v)
// is exact in float, unlike v + 0.5.
KI_HOST_DEVICE int32_t RoundHalfAway(float v) {
  const int32_t t = static_cast<int32_t>(v);
  const float fraction = v - static_cast<float>(t);
  return t + (fraction >= 0.5f) - (fraction <= -0.5f);
}

// The quantized mantissa of x given factor = 2**-e, clipped to [-limit, limit].
KI_HOST_DEVICE int32_t QuantizeElement(float x, float factor, int32_t limit) {
  const int32_t v = RoundHalfAway(x * factor);
  return v > limit ? limit : (v < -limit ? -limit : v);
}

// Subnormal inputs count as zero (TensorFlow's CPU threads flush them, other
// threads and GPUs may not): a magnitude's bit pattern below this one is
// treated as 0 wherever the result could otherwise depend on the flush mode.
constexpr uint32_t kSmallestNormalBits = 0x00800000u;

// Is x * 2**k a whole number? A multiply by a normal power of two is exactly
// ldexp (both round a subnormal result the same way); k outside the normal
// range [-126, 127] (tiny inputs) takes two such steps. A subnormal x counts
// as zero (whole).
KI_HOST_DEVICE bool IsWholeAfterScaling(float x, int k) {
  if ((FloatBits(x) & 0x7FFFFFFFu) < kSmallestNormalBits) return true;
  float v = x;
  if (k > 127) v *= PowerOfTwo(127), k -= 127;   // k <= 155 for any float max
  if (k < -126) v *= PowerOfTwo(-126), k += 126;
  v *= PowerOfTwo(k);
  return v == truncf(v);
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_CARRIER_ELEMENT_H_

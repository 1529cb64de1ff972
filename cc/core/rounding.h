// The four rounding modes of requantize (spec section 2) on one element:
// bit lengths, magnitudes and rounded right shifts, shared by the CPU core
// and the CUDA kernels (cc/gpu).
#ifndef KERAS_INT_CC_CORE_ROUNDING_H_
#define KERAS_INT_CC_CORE_ROUNDING_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/host_device.h"
#include "cc/core/philox.h"

namespace keras_int {

enum class Rounding { kNearest, kPseudoStochastic, kStochastic, kTruncate };

// Calls fn(std::integral_constant<Rounding, mode>()) with the run-time
// `rounding`, so that a loop over elements has its mode fixed at compile
// time (host code).
template <typename Fn>
inline void WithRounding(Rounding rounding, Fn fn) {
  switch (rounding) {
    case Rounding::kNearest:
      return fn(std::integral_constant<Rounding, Rounding::kNearest>());
    case Rounding::kPseudoStochastic:
      return fn(std::integral_constant<Rounding, Rounding::kPseudoStochastic>());
    case Rounding::kStochastic:
      return fn(std::integral_constant<Rounding, Rounding::kStochastic>());
    case Rounding::kTruncate:
      return fn(std::integral_constant<Rounding, Rounding::kTruncate>());
  }
}

// Seed of stochastic rounding: a key and a step (counter offset).
struct RoundingSeed {
  uint64_t key = 0;
  uint64_t step = 0;
};

// Number of bits of v (0 for v == 0), from the leading-zero count.
KI_HOST_DEVICE int BitLength(uint32_t v) {
#if defined(__CUDA_ARCH__)
  return 32 - __clz(static_cast<int>(v));
#else
  return v == 0 ? 0 : 32 - __builtin_clz(v);
#endif
}

KI_HOST_DEVICE int BitLength64(uint64_t v) {
#if defined(__CUDA_ARCH__)
  return 64 - __clzll(static_cast<long long>(v));
#else
  return v == 0 ? 0 : 64 - __builtin_clzll(v);
#endif
}

// |v| without overflow for INT32_MIN / INT64_MIN.
KI_HOST_DEVICE uint32_t Magnitude(int32_t v) {
  return v < 0 ? 0u - static_cast<uint32_t>(v) : static_cast<uint32_t>(v);
}

KI_HOST_DEVICE uint64_t Magnitude64(int64_t v) {
  return v < 0 ? static_cast<uint64_t>(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
}

// The largest magnitude of a `bits`-bit mantissa (8: 127, 16: 32767),
// the clip limit of requantize.
KI_HOST_DEVICE int64_t MantissaLimit(int bits) { return (int64_t{1} << (bits - 1)) - 1; }

KI_HOST_DEVICE int64_t Clip64(int64_t v, int64_t limit) {
  return v > limit ? limit : (v < -limit ? -limit : v);
}

// The random word of element `index`, or 0 for the modes that read none.
KI_HOST_DEVICE uint32_t RandomWordFor(Rounding rounding, RoundingSeed seed, uint64_t index) {
  return rounding == Rounding::kStochastic ? StochasticWord(seed.key, seed.step, index) : 0u;
}

// Shifts a magnitude (< 2**63) right by s bits with the given rounding (s <= 0: no
// shift; s >= 64 gives 0). `random` is only read for kStochastic.
KI_HOST_DEVICE uint64_t RoundShiftMagnitude(uint64_t mag, int s, Rounding rounding,
                                            uint32_t random) {
  if (s <= 0) return mag;
  if (s >= 64) return 0;
  const uint64_t t = mag >> s;
  const uint64_t r = mag & ((uint64_t{1} << s) - 1);  // the discarded bits
  uint64_t up = 0;
  switch (rounding) {
    case Rounding::kNearest:
      up = r >= (uint64_t{1} << (s - 1));
      break;
    case Rounding::kTruncate:
      break;
    case Rounding::kPseudoStochastic: {
      // Upper half of the discarded bits is the probability, lower half the
      // "random" number (doubled for odd s so both have the same scale).
      const int h = s / 2;
      const uint64_t p = r >> h;
      uint64_t q = r & ((uint64_t{1} << h) - 1);
      if (s & 1) q <<= 1;
      up = p > q;
      break;
    }
    case Rounding::kStochastic: {
      const uint64_t q = s <= 32 ? (random & ((uint64_t{1} << s) - 1))
                                 : (static_cast<uint64_t>(random) << (s - 32));
      up = r > q;
      break;
    }
  }
  return t + up;
}

// Rounds on the magnitude and restores the sign (C++ `>>` of a negative
// number floors, which is not what any of the modes means).
KI_HOST_DEVICE int64_t RoundShift64(int64_t v, int s, Rounding rounding, uint32_t random) {
  const uint64_t r = RoundShiftMagnitude(Magnitude64(v), s, rounding, random);
  return v < 0 ? -static_cast<int64_t>(r) : static_cast<int64_t>(r);
}

KI_HOST_DEVICE int32_t RoundShift(int32_t v, int s, Rounding rounding, uint32_t random) {
  // |v| <= 2**31 and s >= 1 keep the result within int32.
  return static_cast<int32_t>(RoundShift64(v, s, rounding, random));
}

// One element of requantize for a shift s in [1, 31], clipped to [-limit,
// limit]: 32-bit arithmetic only, branch-free for a fixed mode (the CPU loop
// vectorises it).
template <Rounding kMode>
KI_HOST_DEVICE int32_t ShiftAndClipElement(int32_t v, int s, uint32_t random, uint32_t limit) {
  const uint32_t mag = Magnitude(v);
  const uint32_t t = mag >> s;
  const uint32_t r = mag & ((uint32_t{1} << s) - 1);
  uint32_t up;
  if (kMode == Rounding::kNearest) {
    up = r >= (uint32_t{1} << (s - 1));
  } else if (kMode == Rounding::kTruncate) {
    up = 0;
  } else if (kMode == Rounding::kPseudoStochastic) {
    const int h = s / 2;
    up = (r >> h) > ((r & ((uint32_t{1} << h) - 1)) << (s & 1));
  } else {
    up = r > (random & ((uint32_t{1} << s) - 1));
  }
  const uint32_t rounded = t + up;
  const int32_t m = static_cast<int32_t>(rounded < limit ? rounded : limit);
  return v < 0 ? -m : m;
}

// The same for an int64 accumulator (DFP16 products), shift s in [1, 63]:
// 64-bit magnitudes; stochastic rounding compares the discarded bits with
// the random word, shifted up by s - 32 when s > 32 (RoundShiftMagnitude's
// rule).
template <Rounding kMode>
KI_HOST_DEVICE int32_t ShiftAndClipElement(int64_t v, int s, uint32_t random, uint32_t limit) {
  const uint64_t mag = Magnitude64(v);
  const uint64_t t = mag >> s;
  const uint64_t r = mag & ((uint64_t{1} << s) - 1);
  uint64_t up;
  if (kMode == Rounding::kNearest) {
    up = r >= (uint64_t{1} << (s - 1));
  } else if (kMode == Rounding::kTruncate) {
    up = 0;
  } else if (kMode == Rounding::kPseudoStochastic) {
    const int h = s / 2;
    up = (r >> h) > ((r & ((uint64_t{1} << h) - 1)) << (s & 1));
  } else {
    const uint64_t q = s <= 32 ? (random & ((uint64_t{1} << s) - 1)) : (static_cast<uint64_t>(random) << (s - 32));
    up = r > q;
  }
  const uint64_t rounded = t + up;
  const int32_t m = static_cast<int32_t>(rounded < limit ? rounded : limit);
  return v < 0 ? -m : m;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ROUNDING_H_

// Dynamic fixed point (DFP): integer mantissas sharing one power-of-two
// exponent. Bit widths, the four rounding modes, requantize and the exact
// float <-> DFP boundary conversions (ALGORITHMS.md sections 1 and 2).
#ifndef KERAS_INT_CC_CORE_DFP_H_
#define KERAS_INT_CC_CORE_DFP_H_

#include <cstdint>
#include <string>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// Exponents of int8/int16 DFP tensors. The range keeps q * 2**e a normal
// float32 for every 16-bit mantissa, so dequantize is always exact.
constexpr int kMinExponent = -120;
constexpr int kMaxExponent = 100;
// Exponents of int32 accumulators: sums of two DFP exponents.
constexpr int kMinAccExponent = 2 * kMinExponent;
constexpr int kMaxAccExponent = 2 * kMaxExponent;

enum class Rounding { kNearest, kPseudoStochastic, kStochastic, kTruncate };

// Parses "nearest", "pseudo_stochastic", "stochastic", "truncate".
bool ParseRounding(const std::string& name, Rounding* rounding);

// Number of bits of |v| (0 for v == 0), from the leading-zero count.
inline int BitLength(uint32_t v) { return v == 0 ? 0 : 32 - __builtin_clz(v); }

// |v| without overflow for INT32_MIN.
inline uint32_t Magnitude(int32_t v) {
  return v < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(v)) : static_cast<uint32_t>(v);
}

// Philox4x32-10 (Salmon et al., 2011): four 32-bit random words for a 128-bit
// counter and a 64-bit key. Counter-based, so a stochastic rounding is a pure
// function of (seed, step, element index).
void Philox4x32(uint32_t counter[4], uint64_t key, uint32_t out[4]);

// The random word stochastic rounding uses for element `index` at `step`:
// word index % 4 of Philox(counter = (index / 4, step), key = seed).
uint32_t StochasticWord(uint64_t seed, uint64_t step, uint64_t index);

// Shifts a magnitude (< 2**63) right by s bits with the given rounding (s <= 0: no
// shift; s >= 64 gives 0). `random` is only read for kStochastic.
inline uint64_t RoundShiftMagnitude(uint64_t mag, int s, Rounding rounding, uint32_t random) {
  if (s <= 0) return mag;
  if (s >= 64) return 0;
  const uint64_t m = mag;
  const uint64_t t = m >> s;
  const uint64_t r = m & ((uint64_t{1} << s) - 1);  // the discarded bits
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
inline int64_t RoundShift64(int64_t v, int s, Rounding rounding, uint32_t random) {
  const uint64_t mag = v < 0 ? static_cast<uint64_t>(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  const uint64_t r = RoundShiftMagnitude(mag, s, rounding, random);
  return v < 0 ? -static_cast<int64_t>(r) : static_cast<int64_t>(r);
}

inline int32_t RoundShift(int32_t v, int s, Rounding rounding, uint32_t random) {
  // |v| <= 2**31 and s >= 1 keep the result within int32.
  return static_cast<int32_t>(RoundShift64(v, s, rounding, random));
}

// Seed of stochastic rounding: a key and a step (counter offset).
struct RoundingSeed {
  uint64_t key = 0;
  uint64_t step = 0;
};

// bit_length(max |acc|).
int MaxBitLength(const int32_t* acc, int64_t n);

// requantize (spec section 2): int32 accumulator at exponent acc_exponent ->
// `bits`-bit mantissas in out (int8_t or int16_t) and their exponent.
template <typename T>
Status Requantize(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent, const ParallelFor& parallel_for);

// Shifts every element right by `shift` with rounding (shift <= 0: copy),
// clips to [-limit, limit].
Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                        RoundingSeed seed, int32_t limit, int32_t* out);

// quantize (spec section 1): exact float -> DFP at the model boundary and for
// float32 carriers. e = ceil(log2(max|x|)) - (bits - 1); when max|x| is a power
// of two and every value is an integer multiple of 2**(e + 1), e + 1 is used
// instead so that no value is clipped (this makes reading a carrier lossless).
template <typename T>
Status Quantize(const float* x, int64_t n, T* q, int* exponent,
                const ParallelFor& parallel_for = SerialFor);

// dequantize: q * 2**e as float32 (exact in the exponent range above).
template <typename T>
Status Dequantize(const T* q, int64_t n, int exponent, float* out,
                  const ParallelFor& parallel_for = SerialFor);

Status CheckExponent(const char* name, int64_t exponent, int lo, int hi);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_DFP_H_

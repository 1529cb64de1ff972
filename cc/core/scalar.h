// Per-element integer arithmetic shared by the CPU core and the CUDA kernels
// (cc/gpu): rounding, Philox, the float <-> DFP element conversions, the
// cross-entropy numerators and the SGD step. One definition compiled for both
// sides is what makes the GPU results bit-identical to the CPU's.
//
// Everything here is header-only, free of the standard library's non-constexpr
// functions, and marked KI_HOST_DEVICE (`__host__ __device__` under nvcc).
#ifndef KERAS_INT_CC_CORE_SCALAR_H_
#define KERAS_INT_CC_CORE_SCALAR_H_

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define KI_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KI_HOST_DEVICE inline
#endif

// CPU loops compiled twice, for AVX2 and for baseline x86-64; the loader
// picks one at run time (the core is otherwise built for baseline x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define KI_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KI_VECTOR_CLONES
#endif

namespace keras_int {

enum class Rounding { kNearest, kPseudoStochastic, kStochastic, kTruncate };

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

KI_HOST_DEVICE int64_t Clip64(int64_t v, int64_t limit) {
  return v > limit ? limit : (v < -limit ? -limit : v);
}

// Philox4x32-10 (Salmon et al., 2011): four 32-bit random words for a 128-bit
// counter and a 64-bit key. Counter-based, so a stochastic rounding is a pure
// function of (seed, step, element index).
KI_HOST_DEVICE void Philox4x32(const uint32_t counter[4], uint64_t key, uint32_t out[4]) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// The random word stochastic rounding uses for element `index` at `step`:
// word index % 4 of Philox(counter = (index / 4, step), key = seed).
KI_HOST_DEVICE uint32_t StochasticWord(uint64_t seed, uint64_t step, uint64_t index) {
  const uint64_t block = index / 4;
  const uint32_t counter[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                               static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)};
  uint32_t out[4];
  Philox4x32(counter, seed, out);
  return out[index % 4];
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

// ---- residual add and bias (add.h) ----

// One element of the aligned add: a moved left by `left` bits (exact), b
// rounded right by `right` bits (0 unless the exponents differ by more than
// the largest exact alignment).
KI_HOST_DEVICE int32_t AlignedAddElement(int8_t a, int8_t b, int left, int right) {
  return a * (int32_t{1} << left) + RoundShift(b, right, Rounding::kNearest, 0);
}

// bias * 2**shift (shift < 0: rounded to nearest), exactly, in int64.
KI_HOST_DEVICE int64_t AlignedBias(int32_t bias, int shift) {
  return shift >= 0 ? int64_t{bias} * (int64_t{1} << shift)
                    : RoundShift64(bias, -shift, Rounding::kNearest, 0);
}

// ---- float <-> DFP element conversions ----

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

// ---- integer cross-entropy gradient (spec section 4), one row ----

// log2(e) ~= 47274 / 2**15: multiplying by it turns e**z into 2**(z log2 e).
constexpr int64_t kCrossEntropyLog2E = 47274;
constexpr int kCrossEntropyLog2EShift = 15;
// Exponent of the error the gradient produces: its values approximate
// softmax - onehot.
constexpr int kCrossEntropyErrorExponent = -7;
// Logit exponents below this are first rounded to it (the logits are then
// below 2**-13, where the softmax is uniform to within int8 precision).
constexpr int kCrossEntropyMinExponent = -20;
// Widest row the normaliser sums exactly: a numerator is below 2**42 (at
// most 2**41 + 127 * 2**21 + 127**2, the second-order form at exponent
// -20), so 2**21 of them stay below 2**63 in int64.
constexpr int64_t kCrossEntropyMaxClasses = int64_t{1} << 21;

// Base-2 exponent s = q * log2(e) * 2**e of one logit as an integer (shifts on
// the magnitude), for exponent > -7.
KI_HOST_DEVICE int64_t CrossEntropyScaledExponent(int8_t q, int exponent) {
  const int shift = exponent - kCrossEntropyLog2EShift;
  const int64_t v = q * kCrossEntropyLog2E;
  // A left shift beyond 32 changes nothing: differences already exceed 10.
  return shift >= 0 ? v * (int64_t{1} << (shift < 32 ? shift : 32))
                    : RoundShift64(v, -shift, Rounding::kTruncate, 0);
}

// Unnormalised softmax numerator of one logit. For exponent > -7, s_max is
// the row maximum of CrossEntropyScaledExponent: the exponent is moved so that
// the row maximum is 10 and p = 2**s - 1. For small logits (exponent <= -7),
// the second-order Taylor form of e**x scaled by 2**(1 - 2e),
// 2**(1-2e) + q 2**(1-e) + q**2 (always positive); s_max is unused.
KI_HOST_DEVICE int64_t CrossEntropyNumerator(int8_t q, int exponent, int64_t s_max) {
  if (exponent <= -7) {
    const int e = exponent > kCrossEntropyMinExponent ? exponent : kCrossEntropyMinExponent;
    const int64_t v = RoundShift(q, e - exponent, Rounding::kNearest, 0);
    return (int64_t{1} << (1 - 2 * e)) + v * (int64_t{1} << (1 - e)) + v * v;
  }
  const int64_t s = CrossEntropyScaledExponent(q, exponent) - (s_max - 10);
  return (int64_t{1} << (s > 0 ? s : 0)) - 1;
}

// err[i] ~= round((softmax(q * 2**e) - onehot(label))[i] * 2**7) of one row
// (`first_index` = the row's first element in the tensor, for the random
// words of stochastic rounding). Recomputes the numerators instead of
// storing them, so a GPU thread needs no scratch.
KI_HOST_DEVICE void CrossEntropyGradRow(const int8_t* q, int64_t classes, int exponent,
                                        int64_t label, Rounding rounding, RoundingSeed seed,
                                        uint64_t first_index, int8_t* err) {
  int64_t s_max = INT64_MIN;
  for (int64_t i = 0; i < classes; ++i) {
    const int64_t s = exponent <= -7 ? 0 : CrossEntropyScaledExponent(q[i], exponent);
    s_max = s > s_max ? s : s_max;
  }
  int64_t sum = 0;
  for (int64_t i = 0; i < classes; ++i) sum += CrossEntropyNumerator(q[i], exponent, s_max);
  // Softmax * 2**11 by integer division, then minus the one-hot row.
  int64_t total = 0;
  for (int64_t i = 0; i < classes; ++i) {
    total += (CrossEntropyNumerator(q[i], exponent, s_max) << 11) / sum;
  }
  for (int64_t i = 0; i < classes; ++i) {
    int64_t p = (CrossEntropyNumerator(q[i], exponent, s_max) << 11) / sum;
    if (i == label) p -= total;
    const int64_t v = RoundShift64(p, 4, rounding, RandomWordFor(rounding, seed, first_index + i));
    err[i] = static_cast<int8_t>(Clip64(v, 127));
  }
}

// ---- integer SGD (spec section 6), one element ----

// The gradient of one weight with weight decay folded in: g + decay * w *
// 2**(bits - 15), where bits = b(g) of the whole gradient.
KI_HOST_DEVICE int64_t SgdDecayedGradient(int32_t g, int64_t w, int weight_decay, int bits) {
  if (weight_decay == 0) return g;
  const int shift = bits - 15;
  const int64_t decay = int64_t{weight_decay} * w;
  return g + (shift >= 0 ? decay * (int64_t{1} << shift)
                         : RoundShift64(decay, -shift, Rounding::kNearest, 0));
}

// Applies the normalised step (shift = b(step) - mu; pseudo-stochastic when
// shift >= 1) with optional momentum (in sixteenths) to one weight.
KI_HOST_DEVICE void SgdApply(int64_t step, int shift, int momentum, int64_t limit, int64_t* w,
                             int64_t* momentum_value) {
  int64_t s = shift >= 1 ? RoundShift64(step, shift, Rounding::kPseudoStochastic, 0) : step;
  if (momentum > 0) {
    const int64_t decayed = RoundShift64(*momentum_value * momentum, 4, Rounding::kTruncate, 0);
    s = Clip64(decayed + s, limit);
    *momentum_value = s;
  }
  *w = Clip64(*w - s, limit);
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_SCALAR_H_

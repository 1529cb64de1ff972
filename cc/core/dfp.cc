#include "cc/core/dfp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/host_device.h"
#include "cc/core/philox.h"
#include "cc/core/relu.h"
#include "cc/core/rounding.h"

namespace keras_int {

bool ParseRounding(const std::string& name, Rounding* rounding) {
  if (name == "nearest") {
    *rounding = Rounding::kNearest;
  } else if (name == "pseudo_stochastic") {
    *rounding = Rounding::kPseudoStochastic;
  } else if (name == "stochastic") {
    *rounding = Rounding::kStochastic;
  } else if (name == "truncate") {
    *rounding = Rounding::kTruncate;
  } else {
    return false;
  }
  return true;
}

Status CheckExponent(const char* name, int64_t exponent, int lo, int hi) {
  if (exponent < lo || exponent > hi) {
    return Status::Error(std::string(name) + " " + std::to_string(exponent) +
                         " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return Status::OK();
}

namespace {

// The elementwise loops take their operands by value and restrict-qualified
// pointers (an int8 store may otherwise alias anything, which blocks
// vectorisation), and are compiled for AVX2 and baseline (KI_VECTOR_CLONES).

// A requantized mantissa as stored: as an int8/int16, or (Out = uint32_t)
// as the bit pattern of its float32 carrier (times `scale`, the power of two
// of its exponent). Carriers are written as bit patterns so that the
// accumulator's own memory can receive them (in place, same type family).
template <typename Out>
inline Out Stored(int32_t v, float scale) {
  if constexpr (std::is_same_v<Out, uint32_t>) {
    return FloatBits(static_cast<float>(v) * scale);
  } else {
    return static_cast<Out>(v);
  }
}

// One rounding mode, shift 1..31, on int32 magnitudes: a branch-free loop
// (the generic RoundShift64 handles every case but is several times slower).
// `out` may be `acc` itself (a carrier written in place): element i is read
// before it is written and no other element is touched, so there is no
// dependence between iterations, which ivdep tells the vectoriser in place
// of restrict.
// `Element` is the type the element arithmetic runs in: Acc, or int32_t for
// an int64 accumulator whose values all fit int32 (ShiftAndClipElement's
// int32 and int64 forms agree there, and the int32 one vectorises to
// twice the lanes).
template <Rounding kMode, typename Element, typename Acc, typename Out>
void ShiftAndClip(const Acc* acc, int64_t begin, int64_t end, int s, RoundingSeed seed,
                  int32_t limit, float scale, Out* out) {
#pragma GCC ivdep
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t random =
        kMode == Rounding::kStochastic ? StochasticWord(seed.key, seed.step, static_cast<uint64_t>(i)) : 0;
    out[i] = Stored<Out>(
        ShiftAndClipElement<kMode>(static_cast<Element>(acc[i]), s, random, static_cast<uint32_t>(limit)), scale);
  }
}

// The deterministic modes, vectorised (stochastic rounding's Philox per
// element does not vectorise).
// (int64 accumulators: the DFP16 products, shifts up to 63 - 7.)
#define KI_SHIFT_AND_CLIP_CLONE(Name, Mode, Element, Acc, Out)                                      \
  KI_VECTOR_CLONES void Name##_##Mode(const Acc* acc, int64_t begin, int64_t end, int s, int32_t limit, \
                                      float scale, Out* out) {                                          \
    ShiftAndClip<Rounding::Mode, Element>(acc, begin, end, s, RoundingSeed{}, limit, scale, out);       \
  }
#define KI_SHIFT_AND_CLIP_CLONES(Name, Element, Acc)                     \
  KI_SHIFT_AND_CLIP_CLONE(Name, kNearest, Element, Acc, int8_t)          \
  KI_SHIFT_AND_CLIP_CLONE(Name, kNearest, Element, Acc, int16_t)         \
  KI_SHIFT_AND_CLIP_CLONE(Name, kNearest, Element, Acc, uint32_t)        \
  KI_SHIFT_AND_CLIP_CLONE(Name, kTruncate, Element, Acc, int8_t)         \
  KI_SHIFT_AND_CLIP_CLONE(Name, kTruncate, Element, Acc, int16_t)        \
  KI_SHIFT_AND_CLIP_CLONE(Name, kTruncate, Element, Acc, uint32_t)       \
  KI_SHIFT_AND_CLIP_CLONE(Name, kPseudoStochastic, Element, Acc, int8_t) \
  KI_SHIFT_AND_CLIP_CLONE(Name, kPseudoStochastic, Element, Acc, int16_t) \
  KI_SHIFT_AND_CLIP_CLONE(Name, kPseudoStochastic, Element, Acc, uint32_t)
KI_SHIFT_AND_CLIP_CLONES(ShiftAndClipVector, int32_t, int32_t)
KI_SHIFT_AND_CLIP_CLONES(ShiftAndClipVector, int64_t, int64_t)
KI_SHIFT_AND_CLIP_CLONES(ShiftAndClipNarrowedVector, int32_t, int64_t)
#undef KI_SHIFT_AND_CLIP_CLONES
#undef KI_SHIFT_AND_CLIP_CLONE

// ShiftAndClip in the run-time mode: the vectorised loop where there is one.
template <typename Acc, typename Out>
void ShiftAndClipWith(Rounding rounding, const Acc* acc, int64_t begin, int64_t end, int s, RoundingSeed seed,
                      int32_t limit, float scale, Out* out) {
  switch (rounding) {
    case Rounding::kNearest:
      return ShiftAndClipVector_kNearest(acc, begin, end, s, limit, scale, out);
    case Rounding::kTruncate:
      return ShiftAndClipVector_kTruncate(acc, begin, end, s, limit, scale, out);
    case Rounding::kPseudoStochastic:
      return ShiftAndClipVector_kPseudoStochastic(acc, begin, end, s, limit, scale, out);
    case Rounding::kStochastic:
      return ShiftAndClip<Rounding::kStochastic, Acc>(acc, begin, end, s, seed, limit, scale, out);
  }
}

// The same for an int64 accumulator whose values all fit int32.
template <typename Out>
void ShiftAndClipNarrowedWith(Rounding rounding, const int64_t* acc, int64_t begin, int64_t end, int s,
                              RoundingSeed seed, int32_t limit, float scale, Out* out) {
  switch (rounding) {
    case Rounding::kNearest:
      return ShiftAndClipNarrowedVector_kNearest(acc, begin, end, s, limit, scale, out);
    case Rounding::kTruncate:
      return ShiftAndClipNarrowedVector_kTruncate(acc, begin, end, s, limit, scale, out);
    case Rounding::kPseudoStochastic:
      return ShiftAndClipNarrowedVector_kPseudoStochastic(acc, begin, end, s, limit, scale, out);
    case Rounding::kStochastic:
      return ShiftAndClip<Rounding::kStochastic, int32_t>(acc, begin, end, s, seed, limit, scale, out);
  }
}


// OR of magnitudes has the same bit length as their maximum.
KI_VECTOR_CLONES uint32_t MagnitudeOr(const int32_t* __restrict acc, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= Magnitude(acc[i]);
  return any;
}

KI_VECTOR_CLONES uint64_t MagnitudeOr64(const int64_t* __restrict acc, int64_t n) {
  uint64_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= Magnitude64(acc[i]);
  return any;
}

// max |x| as the maximum of the bit patterns with the sign cleared: for
// non-negative floats the order of the patterns is the order of the values,
// and NaN/Inf are exactly the patterns >= 0x7F800000.
KI_VECTOR_CLONES uint32_t MaxMagnitudeBits(const float* __restrict x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = FloatBits(x[i]) & 0x7FFFFFFFu;
    m = bits > m ? bits : m;
  }
  return m;
}

template <typename T>
void QuantizeRange(const float* __restrict x, int64_t n, float factor, int32_t limit, T* __restrict q) {
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<T>(QuantizeElement(x[i], factor, limit));
}
KI_VECTOR_CLONES void QuantizeRange8(const float* __restrict x, int64_t n, float factor, int8_t* __restrict q) {
  QuantizeRange(x, n, factor, 127, q);
}
KI_VECTOR_CLONES void QuantizeRange16(const float* __restrict x, int64_t n, float factor, int16_t* __restrict q) {
  QuantizeRange(x, n, factor, 32767, q);
}
void QuantizeRangeOf(const float* x, int64_t n, float factor, int8_t* q) { QuantizeRange8(x, n, factor, q); }
void QuantizeRangeOf(const float* x, int64_t n, float factor, int16_t* q) { QuantizeRange16(x, n, factor, q); }

template <typename T>
void DequantizeRange(const T* __restrict q, int64_t n, float factor, float* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(q[i]) * factor;
}
KI_VECTOR_CLONES void DequantizeRange8(const int8_t* __restrict q, int64_t n, float factor, float* __restrict out) {
  DequantizeRange(q, n, factor, out);
}
KI_VECTOR_CLONES void DequantizeRange16(const int16_t* __restrict q, int64_t n, float factor, float* __restrict out) {
  DequantizeRange(q, n, factor, out);
}
void DequantizeRangeOf(const int8_t* q, int64_t n, float factor, float* out) { DequantizeRange8(q, n, factor, out); }
void DequantizeRangeOf(const int16_t* q, int64_t n, float factor, float* out) { DequantizeRange16(q, n, factor, out); }

}  // namespace

namespace {

uint64_t MagnitudeOrOf(const int32_t* acc, int64_t n) { return MagnitudeOr(acc, n); }
uint64_t MagnitudeOrOf(const int64_t* acc, int64_t n) { return MagnitudeOr64(acc, n); }

// The OR of all magnitudes, by blocks of 2**15 that may run in parallel
// (a requantize's first pass: alone on one thread it took as long as the
// rounding pass on both).
template <typename Acc>
int MaxBitLengthOf(const Acc* acc, int64_t n, const ParallelFor& parallel_for) {
  constexpr int64_t kBlock = 1 << 15;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<uint64_t> block_or(static_cast<size_t>(blocks));
  parallel_for(blocks, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      block_or[b] = MagnitudeOrOf(acc + b * kBlock, std::min(n, (b + 1) * kBlock) - b * kBlock);
    }
  });
  uint64_t any = 0;
  for (const uint64_t part : block_or) any |= part;
  return BitLength64(any);
}

}  // namespace

int MaxBitLength(const int32_t* acc, int64_t n, const ParallelFor& parallel_for) {
  return MaxBitLengthOf(acc, n, parallel_for);
}
int MaxBitLength(const int64_t* acc, int64_t n, const ParallelFor& parallel_for) {
  return MaxBitLengthOf(acc, n, parallel_for);
}

namespace {

// Requantize an int32 (or, for the DFP16 products, int64) accumulator into
// `bits`-bit mantissas (8 or 16), stored as Out: int8_t/int16_t themselves,
// or (uint32_t) the bit patterns of their float32 carrier (requantize and
// dequantize in one pass). For int32, out may be acc (see ShiftAndClip).
// With a relu_mask (carriers only), ReLU follows on each shard while it is
// in cache: the exponent is still decided on every value, as requantize
// then a separate ReLU would, and the mask gets one bit per element.
template <typename Acc, typename Out>
Status RequantizeInto(const Acc* acc, int64_t n, int acc_exponent, int bits, Rounding rounding, RoundingSeed seed,
                      Out* out, int* out_exponent, const ParallelFor& parallel_for, uint32_t* relu_mask = nullptr) {
  const int32_t limit = static_cast<int32_t>(MantissaLimit(bits));
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: exponent", acc_exponent, kMinAccExponent, kMaxAccExponent));
  const int bit_length = MaxBitLength(acc, n, parallel_for);
  const int shift = bit_length - (bits - 1);
  const int exponent = acc_exponent + std::max(shift, 0);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: result exponent", exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  const float scale = PowerOfTwo(exponent);  // only used for float carriers
  auto shard = [&](int64_t begin, int64_t end) {
    if (shift <= 0) {
      // Small values are never scaled up.
#pragma GCC ivdep
      for (int64_t i = begin; i < end; ++i) out[i] = Stored<Out>(static_cast<int32_t>(acc[i]), scale);
      return;
    }
    if constexpr (std::is_same_v<Acc, int64_t>) {
      if (bit_length <= 31) return ShiftAndClipNarrowedWith(rounding, acc, begin, end, shift, seed, limit, scale, out);
    }
    ShiftAndClipWith(rounding, acc, begin, end, shift, seed, limit, scale, out);
  };
  if constexpr (std::is_same_v<Out, uint32_t>) {
    if (relu_mask != nullptr) {
      // Shards of whole mask words, so that no two threads share a word.
      parallel_for(ReluMaskWords(n), 128, [&](int64_t first_word, int64_t end_word) {
        const int64_t begin = 32 * first_word, end = std::min(n, 32 * end_word);
        shard(begin, end);
        ReluCarrierBits(reinterpret_cast<int32_t*>(out) + begin, end - begin, relu_mask + first_word);
      });
      return Status::OK();
    }
  }
  if (shift <= 0) {
    shard(0, n);
  } else {
    parallel_for(n, 4, shard);
  }
  return Status::OK();
}

}  // namespace

template <typename T, typename Acc>
Status Requantize(const Acc* acc, int64_t n, int acc_exponent, Rounding rounding, RoundingSeed seed, T* out,
                  int* out_exponent, const ParallelFor& parallel_for) {
  return RequantizeInto(acc, n, acc_exponent, sizeof(T) * 8, rounding, seed, out, out_exponent, parallel_for);
}

template Status Requantize<int8_t, int32_t>(const int32_t*, int64_t, int, Rounding, RoundingSeed, int8_t*, int*,
                                            const ParallelFor&);
template Status Requantize<int16_t, int32_t>(const int32_t*, int64_t, int, Rounding, RoundingSeed, int16_t*, int*,
                                             const ParallelFor&);
template Status Requantize<int8_t, int64_t>(const int64_t*, int64_t, int, Rounding, RoundingSeed, int8_t*, int*,
                                            const ParallelFor&);
template Status Requantize<int16_t, int64_t>(const int64_t*, int64_t, int, Rounding, RoundingSeed, int16_t*, int*,
                                             const ParallelFor&);

Status CheckMantissaBits(int bits) {
  if (bits != 8 && bits != 16) return Status::Error("bits must be 8 or 16, got " + std::to_string(bits));
  return Status::OK();
}

namespace {

// The carrier requantizes (`relu_mask`: with the fused ReLU), int32 or int64.
template <typename Acc>
Status ToCarrier(const Acc* acc, int64_t n, int acc_exponent, Rounding rounding, RoundingSeed seed, float* out,
                 int* out_exponent, uint32_t* relu_mask, const ParallelFor& parallel_for, int bits) {
  KERAS_INT_RETURN_IF_ERROR(CheckMantissaBits(bits));
  return RequantizeInto(acc, n, acc_exponent, bits, rounding, seed, reinterpret_cast<uint32_t*>(out), out_exponent,
                        parallel_for, relu_mask);
}

}  // namespace

Status RequantizeToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding, RoundingSeed seed,
                           float* out, int* out_exponent, const ParallelFor& parallel_for, int bits) {
  return ToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, nullptr, parallel_for, bits);
}

Status RequantizeToCarrier(const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding, RoundingSeed seed,
                           float* out, int* out_exponent, const ParallelFor& parallel_for, int bits) {
  return ToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, nullptr, parallel_for, bits);
}

Status RequantizeReluToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask,
                               const ParallelFor& parallel_for, int bits) {
  return ToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, mask, parallel_for, bits);
}

Status RequantizeReluToCarrier(const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask,
                               const ParallelFor& parallel_for, int bits) {
  return ToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, mask, parallel_for, bits);
}

void ShiftToCarrier(const int64_t* acc, int64_t begin, int64_t end, int s, int bits, Rounding rounding,
                    RoundingSeed seed, float scale, float* out) {
  ShiftAndClipWith(rounding, acc, begin, end, s, seed, static_cast<int32_t>(MantissaLimit(bits)), scale,
                   reinterpret_cast<uint32_t*>(out));
}

Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                        RoundingSeed seed, int32_t limit, int32_t* out) {
  if (shift < 0 || shift > 63) {
    return Status::Error("round_shift: shift " + std::to_string(shift) + " is out of range [0, 63]");
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = RoundShift(in[i], shift, rounding, RandomWordFor(rounding, seed, i));
    out[i] = std::min(std::max(v, -limit), limit);
  }
  return Status::OK();
}


int QuantizeExponent(uint32_t max_bits, int bits, bool* power_of_two) {
  int p;
  // max = fraction * 2**p, fraction in [0.5, 1)
  const float fraction = std::frexp(FloatFromBits(max_bits), &p);
  *power_of_two = fraction == 0.5f;
  return (*power_of_two ? p - 1 : p) - (bits - 1);
}

template <typename T>
Status Quantize(const float* x, int64_t n, T* q, int* exponent, const ParallelFor& parallel_for) {
  constexpr int kBits = sizeof(T) * 8;
  // max |x| per block (an integer max over bit patterns, see
  // MaxMagnitudeBits); blocks may run in parallel.
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<uint32_t> block_max(blocks, 0);
  parallel_for(blocks, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      block_max[b] = MaxMagnitudeBits(x + b * kBlock, std::min(n, (b + 1) * kBlock) - b * kBlock);
    }
  });
  uint32_t max_bits = 0;
  for (int64_t b = 0; b < blocks; ++b) max_bits = std::max(max_bits, block_max[b]);
  const bool bad = max_bits >= 0x7F800000u;
  if (bad) {
    int64_t i = 0;
    while (std::isfinite(x[i])) ++i;
    return Status::Error("quantize: input contains NaN or Inf (element " + std::to_string(i) + ")");
  }
  if (max_bits < kSmallestNormalBits) {  // all zero or subnormal: counts as zero
    std::fill(q, q + n, T{0});
    *exponent = 0;
    return Status::OK();
  }
  bool power_of_two;
  int e = QuantizeExponent(max_bits, kBits, &power_of_two);
  if (power_of_two) {
    // At e the maximum maps to 2**(bits-1) and would be clipped; if every
    // value is a whole multiple of 2**(e+1), that exponent is exact instead.
    bool exact = true;
    for (int64_t i = 0; i < n && exact; ++i) exact = IsWholeAfterScaling(x[i], -(e + 1));
    if (exact) ++e;
  }
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("quantize: exponent of the input", e, kMinExponent, kMaxExponent));
  const float factor = PowerOfTwo(-e);  // -e in [-100, 120]: normal
  parallel_for(n, 4, [&](int64_t begin, int64_t end) {
    QuantizeRangeOf(x + begin, end - begin, factor, q + begin);
  });
  *exponent = e;
  return Status::OK();
}

template Status Quantize<int8_t>(const float*, int64_t, int8_t*, int*, const ParallelFor&);
template Status Quantize<int16_t>(const float*, int64_t, int16_t*, int*, const ParallelFor&);

template <typename T>
Status Dequantize(const T* q, int64_t n, int exponent, float* out, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("dequantize: exponent", exponent, kMinExponent, kMaxExponent));
  const float factor = PowerOfTwo(exponent);
  parallel_for(n, 2, [&](int64_t begin, int64_t end) {
    DequantizeRangeOf(q + begin, end - begin, factor, out + begin);
  });
  return Status::OK();
}

template Status Dequantize<int8_t>(const int8_t*, int64_t, int, float*, const ParallelFor&);
template Status Dequantize<int16_t>(const int16_t*, int64_t, int, float*, const ParallelFor&);

}  // namespace keras_int

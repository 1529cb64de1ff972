#include "cc/core/dfp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

void Philox4x32(uint32_t counter[4], uint64_t key, uint32_t out[4]) {
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

uint32_t StochasticWord(uint64_t seed, uint64_t step, uint64_t index) {
  const uint64_t block = index / 4;
  uint32_t counter[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                         static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)};
  uint32_t out[4];
  Philox4x32(counter, seed, out);
  return out[index % 4];
}

int MaxBitLength(const int32_t* acc, int64_t n) {
  uint32_t any = 0;
  // OR of magnitudes has the same bit length as their maximum.
  for (int64_t i = 0; i < n; ++i) any |= Magnitude(acc[i]);
  return BitLength(any);
}

namespace {

// One rounding mode, shift 1..31, on int32 magnitudes: a branch-free loop
// the compiler vectorises (the generic RoundShift64 handles every case but
// is several times slower).
template <Rounding kMode, typename T>
void ShiftAndClip(const int32_t* acc, int64_t begin, int64_t end, int s, RoundingSeed seed,
                  int32_t limit, T* out) {
  const uint32_t mask = (uint32_t{1} << s) - 1;
  const uint32_t half = uint32_t{1} << (s - 1);
  const int h = s / 2;
  const uint32_t low_mask = (uint32_t{1} << h) - 1;
  const int odd = s & 1;
  for (int64_t i = begin; i < end; ++i) {
    const int32_t v = acc[i];
    const uint32_t mag = v < 0 ? 0u - static_cast<uint32_t>(v) : static_cast<uint32_t>(v);
    const uint32_t t = mag >> s;
    const uint32_t r = mag & mask;
    uint32_t up;
    if (kMode == Rounding::kNearest) {
      up = r >= half;
    } else if (kMode == Rounding::kTruncate) {
      up = 0;
    } else if (kMode == Rounding::kPseudoStochastic) {
      up = (r >> h) > ((r & low_mask) << odd);
    } else {
      up = r > (StochasticWord(seed.key, seed.step, static_cast<uint64_t>(i)) & mask);
    }
    const int32_t m = static_cast<int32_t>(std::min<uint32_t>(t + up, static_cast<uint32_t>(limit)));
    out[i] = static_cast<T>(v < 0 ? -m : m);
  }
}

}  // namespace

template <typename T>
Status Requantize(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent, const ParallelFor& parallel_for) {
  constexpr int kBits = sizeof(T) * 8;
  constexpr int32_t kLimit = (1 << (kBits - 1)) - 1;
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: exponent", acc_exponent, kMinAccExponent, kMaxAccExponent));
  const int shift = MaxBitLength(acc, n) - (kBits - 1);
  const int exponent = acc_exponent + std::max(shift, 0);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: result exponent", exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  if (shift <= 0) {
    // Small values are never scaled up.
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(acc[i]);
    return Status::OK();
  }
  // shift <= 32 - 7 = 25 here, so every mode fits 32-bit arithmetic.
  parallel_for(n, 4, [&](int64_t begin, int64_t end) {
    switch (rounding) {
      case Rounding::kNearest:
        return ShiftAndClip<Rounding::kNearest>(acc, begin, end, shift, seed, kLimit, out);
      case Rounding::kTruncate:
        return ShiftAndClip<Rounding::kTruncate>(acc, begin, end, shift, seed, kLimit, out);
      case Rounding::kPseudoStochastic:
        return ShiftAndClip<Rounding::kPseudoStochastic>(acc, begin, end, shift, seed, kLimit, out);
      case Rounding::kStochastic:
        return ShiftAndClip<Rounding::kStochastic>(acc, begin, end, shift, seed, kLimit, out);
    }
  });
  return Status::OK();
}

template Status Requantize<int8_t>(const int32_t*, int64_t, int, Rounding, RoundingSeed, int8_t*,
                                   int*, const ParallelFor&);
template Status Requantize<int16_t>(const int32_t*, int64_t, int, Rounding, RoundingSeed, int16_t*,
                                    int*, const ParallelFor&);

Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                        RoundingSeed seed, int32_t limit, int32_t* out) {
  if (shift < 0 || shift > 63) {
    return Status::Error("round_shift: shift " + std::to_string(shift) + " is out of range [0, 63]");
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t random = rounding == Rounding::kStochastic
                                ? StochasticWord(seed.key, seed.step, static_cast<uint64_t>(i))
                                : 0;
    const int32_t v = RoundShift(in[i], shift, rounding, random);
    out[i] = std::min(std::max(v, -limit), limit);
  }
  return Status::OK();
}

namespace {

// 2**e as a float, exactly, for e in the normal range [-126, 127].
float PowerOfTwo(int e) {
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Round half away from zero of |v| < 2**23, exactly: the fraction v - trunc(v)
// is exact in float, unlike v + 0.5.
int32_t RoundHalfAway(float v) {
  const int32_t t = static_cast<int32_t>(v);
  const float fraction = v - static_cast<float>(t);
  return t + (fraction >= 0.5f) - (fraction <= -0.5f);
}

}  // namespace

template <typename T>
Status Quantize(const float* x, int64_t n, T* q, int* exponent, const ParallelFor& parallel_for) {
  constexpr int kBits = sizeof(T) * 8;
  constexpr int32_t kLimit = (1 << (kBits - 1)) - 1;
  // max |x| as the maximum of the bit patterns with the sign cleared: for
  // non-negative floats the order of the patterns is the order of the values,
  // and NaN/Inf are exactly the patterns >= 0x7F800000. An integer max
  // vectorises; blocks may run in parallel.
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<uint32_t> block_max(blocks, 0);
  parallel_for(blocks, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      uint32_t m = 0;
      for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
        uint32_t bits;
        std::memcpy(&bits, x + i, sizeof(bits));
        bits &= 0x7FFFFFFFu;
        m = bits > m ? bits : m;
      }
      block_max[b] = m;
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
  float max_abs;
  std::memcpy(&max_abs, &max_bits, sizeof(max_abs));
  if (max_abs == 0.0f) {
    std::fill(q, q + n, T{0});
    *exponent = 0;
    return Status::OK();
  }
  int p;
  const float fraction = std::frexp(max_abs, &p);  // max_abs = fraction * 2**p, fraction in [0.5, 1)
  const bool power_of_two = fraction == 0.5f;
  const int ceil_log2 = power_of_two ? p - 1 : p;
  int e = ceil_log2 - (kBits - 1);
  if (power_of_two) {
    // At e the maximum maps to 2**(bits-1) and would be clipped; if every
    // value is a whole multiple of 2**(e+1), that exponent is exact instead.
    const int k = -(e + 1);
    const bool normal = k >= -126 && k <= 127;
    const float factor = normal ? PowerOfTwo(k) : 0.0f;
    bool exact = true;
    for (int64_t i = 0; i < n && exact; ++i) {
      // A multiply by a normal power of two is exactly std::ldexp (both round
      // a subnormal result the same way), and much faster.
      const float v = normal ? x[i] * factor : std::ldexp(x[i], k);
      exact = v == std::trunc(v);
    }
    if (exact) ++e;
  }
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("quantize: exponent of the input", e, kMinExponent, kMaxExponent));
  const float factor = PowerOfTwo(-e);  // -e in [-100, 120]: normal
  parallel_for(n, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int32_t v = RoundHalfAway(x[i] * factor);
      q[i] = static_cast<T>(std::min(std::max(v, -kLimit), kLimit));
    }
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
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<float>(q[i]) * factor;
  });
  return Status::OK();
}

template Status Dequantize<int8_t>(const int8_t*, int64_t, int, float*, const ParallelFor&);
template Status Dequantize<int16_t>(const int16_t*, int64_t, int, float*, const ParallelFor&);

}  // namespace keras_int

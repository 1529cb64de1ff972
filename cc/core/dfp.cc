#include "cc/core/dfp.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
  parallel_for(n, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t random = rounding == Rounding::kStochastic
                                  ? StochasticWord(seed.key, seed.step, static_cast<uint64_t>(i))
                                  : 0;
      const int32_t v = RoundShift(acc[i], shift, rounding, random);
      out[i] = static_cast<T>(std::min(std::max(v, -kLimit), kLimit));
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

template <typename T>
Status Quantize(const float* x, int64_t n, T* q, int* exponent) {
  constexpr int kBits = sizeof(T) * 8;
  constexpr float kLimit = static_cast<float>((1 << (kBits - 1)) - 1);
  float max_abs = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return Status::Error("quantize: input contains NaN or Inf (element " + std::to_string(i) + ")");
    }
    max_abs = std::max(max_abs, std::fabs(x[i]));
  }
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
    bool exact = true;
    for (int64_t i = 0; i < n && exact; ++i) {
      const float v = std::ldexp(x[i], -(e + 1));
      exact = v == std::trunc(v);
    }
    if (exact) ++e;
  }
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("quantize: exponent of the input", e, kMinExponent, kMaxExponent));
  for (int64_t i = 0; i < n; ++i) {
    // Scaling by a power of two is exact; std::round rounds half away from zero.
    const float v = std::round(std::ldexp(x[i], -e));
    q[i] = static_cast<T>(std::min(std::max(v, -kLimit), kLimit));
  }
  *exponent = e;
  return Status::OK();
}

template Status Quantize<int8_t>(const float*, int64_t, int8_t*, int*);
template Status Quantize<int16_t>(const float*, int64_t, int16_t*, int*);

template <typename T>
Status Dequantize(const T* q, int64_t n, int exponent, float* out) {
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("dequantize: exponent", exponent, kMinExponent, kMaxExponent));
  for (int64_t i = 0; i < n; ++i) out[i] = std::ldexp(static_cast<float>(q[i]), exponent);
  return Status::OK();
}

template Status Dequantize<int8_t>(const int8_t*, int64_t, int, float*);
template Status Dequantize<int16_t>(const int16_t*, int64_t, int, float*);

}  // namespace keras_int

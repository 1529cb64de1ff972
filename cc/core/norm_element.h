// Per-channel and per-element arithmetic of batch normalization (spec
// section 8), shared by the CPU core (norm.cc) and, through
// KI_HOST_DEVICE, the CUDA kernels. 128-bit products (unsigned __int128,
// supported by GCC and nvcc) where 64 bits could overflow.
#ifndef KERAS_INT_CC_CORE_NORM_ELEMENT_H_
#define KERAS_INT_CC_CORE_NORM_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/limits.h"
#include "cc/core/requantize_element.h"
#include "cc/core/rounding.h"

namespace keras_int {

using NormUint128 = unsigned __int128;

// floor(sqrt(v)) exactly, digit by digit (two bits per step). Each step
// selects with a mask instead of a branch: whether a digit is 1 is as
// random as the data, and layer norm takes one root per row.
KI_HOST_DEVICE uint64_t IntegerSqrt(uint64_t v) {
  uint64_t root = 0;
  uint64_t bit = uint64_t{1} << 62;
  while (bit > v) bit >>= 2;
  while (bit != 0) {
    const uint64_t trial = root + bit;
    const uint64_t take = v >= trial ? ~uint64_t{0} : 0;
    v -= trial & take;
    root = (root >> 1) + (bit & take);
    bit >>= 2;
  }
  return root;
}

// 1 / sqrt(w) ~= r * 2**(k - 61) for 0 < w < 2**61 (relative error below
// 2**-28); w = 0 gives r = 0, k = 0.
KI_HOST_DEVICE void NormInverseSqrt(uint64_t w, int64_t* r, int* k) {
  if (w == 0) {
    *r = 0;
    *k = 0;
    return;
  }
  *k = (61 - BitLength64(w)) / 2;
  const uint64_t s = IntegerSqrt(w << (2 * *k));
  *r = static_cast<int64_t>((uint64_t{1} << 61) / s);
}

// round(|num| / den) with the sign of num (half away from zero), den > 0.
KI_HOST_DEVICE int64_t RoundDivide(int64_t num, int64_t den) {
  const uint64_t mag = Magnitude64(num);
  const uint64_t q = (mag + static_cast<uint64_t>(den) / 2) / static_cast<uint64_t>(den);
  return num < 0 ? -static_cast<int64_t>(q) : static_cast<int64_t>(q);
}

// The same for a non-negative 128-bit numerator (a result below 2**63).
KI_HOST_DEVICE int64_t RoundDivide128(NormUint128 num, uint64_t den) {
  return static_cast<int64_t>((num + den / 2) / den);
}

// v * 2**shift: exact for shift >= 0, saturated to [-limit, limit];
// round_shift(v, -shift, nearest) otherwise (0 beyond 63 bits).
KI_HOST_DEVICE int64_t ShiftSaturated(int64_t v, int shift, int64_t limit) {
  if (shift < 0) return shift <= -64 ? 0 : RoundShift64(v, -shift, Rounding::kNearest, 0);
  if (v == 0) return 0;
  if (BitLength64(Magnitude64(v)) + shift > 62) return v < 0 ? -limit : limit;
  return Clip64(v * (int64_t{1} << shift), limit);
}

// epsilon in units of 2**(2 e_x) times n**2: (m_eps * n**2) * 2**(e_eps - 2 e_x),
// saturated at 2**60.
KI_HOST_DEVICE int64_t NormEpsilonTerm(int64_t eps_mantissa, int eps_exponent, int64_t n, int x_exponent) {
  const int shift = eps_exponent - 2 * x_exponent;
  const int64_t base = eps_mantissa * n * n;  // < 2**15 * 2**46
  return ShiftSaturated(base, shift, int64_t{1} << 60);
}

// The constants of one channel's normalisation: xhat = (count * q - sum) *
// inv_sqrt * 2**(inv_shift - 61).
struct NormChannel {
  int64_t count;     // n (or the virtual count of inference)
  int64_t sum;       // sum(q) at that count
  int64_t inv_sqrt;  // r
  int32_t inv_shift; // k
};

// From the count, the sum and V = n * sum(q**2) - sum(q)**2 (or its
// inference equivalent).
KI_HOST_DEVICE NormChannel MakeNormChannel(int64_t count, int64_t sum, int64_t variance_term,
                                           int64_t eps_mantissa, int eps_exponent, int x_exponent) {
  NormChannel ch{count, sum, 0, 0};
  const int64_t w = variance_term + NormEpsilonTerm(eps_mantissa, eps_exponent, count, x_exponent);
  int k;
  NormInverseSqrt(static_cast<uint64_t>(w), &ch.inv_sqrt, &k);
  ch.inv_shift = k;
  return ch;
}

// The largest r of NormInverseSqrt (2**61 // isqrt(2**60), rounded up):
// the bound that keeps |d| * r within 64 bits in NormXhat.
constexpr int64_t kNormMaxInverseSqrt = 3037000503;

// Whether a channel's saved forward constants (S1, r, k over `rows` rows)
// are ones the forward pass can produce, as the backward pass requires of
// its inputs: |S1| <= 128 * rows, 0 <= r <= kNormMaxInverseSqrt, 0 <= k <= 30.
KI_HOST_DEVICE bool NormSavedChannelValid(int64_t rows, int64_t sum, int64_t inv_sqrt, int32_t inv_shift) {
  return Magnitude64(sum) <= static_cast<uint64_t>(rows) * 128 && inv_sqrt >= 0 && inv_sqrt <= kNormMaxInverseSqrt &&
         inv_shift >= 0 && inv_shift <= 30;
}

// The same for the inference constants that the frozen backward pass is
// given: count = 2**j with 0 <= j <= 23, r and k as above.
KI_HOST_DEVICE bool NormFrozenChannelValid(int64_t count, int64_t inv_sqrt, int32_t inv_shift) {
  return count >= 1 && count <= (int64_t{1} << 23) && (count & (count - 1)) == 0 && inv_sqrt >= 0 &&
         inv_sqrt <= kNormMaxInverseSqrt && inv_shift >= 0 && inv_shift <= 30;
}

// The training constants of a channel from its sums S1, S2 over n rows,
// with the batch mean and variance mantissas for the moving averages.
KI_HOST_DEVICE NormChannel MakeTrainingChannel(int64_t rows, int64_t s1, int64_t s2, int64_t eps_mantissa,
                                               int eps_exponent, int x_exponent, int32_t* mean, int32_t* variance) {
  const int64_t v = rows * s2 - s1 * s1;  // n * S2 <= 2**60, S1**2 < 2**60
  *mean = static_cast<int32_t>(RoundDivide(s1 * (int64_t{1} << 23), rows));
  *variance = static_cast<int32_t>(
      RoundDivide128(static_cast<NormUint128>(v) << 16, static_cast<uint64_t>(rows) * static_cast<uint64_t>(rows)));
  return MakeNormChannel(rows, s1, v, eps_mantissa, eps_exponent, x_exponent);
}

// The inference constants of a channel from its moving statistics
// (mean m_M at e_M, variance m_V >= 0 at e_V), at the virtual count 2**j
// that keeps |S1| within 2**30 where it can.
KI_HOST_DEVICE NormChannel MakeInferenceChannel(int64_t mean, int mean_exponent, int64_t variance,
                                                int variance_exponent, int64_t eps_mantissa, int eps_exponent,
                                                int x_exponent) {
  int j = 23;
  if (mean != 0) {
    const int t = 30 - (BitLength64(Magnitude64(mean)) + mean_exponent - x_exponent);
    j = t < 0 ? 0 : (t > 23 ? 23 : t);
  }
  const int64_t s1 = ShiftSaturated(mean, mean_exponent - x_exponent + j, (int64_t{1} << 31) - 1);
  const int64_t v = ShiftSaturated(variance, variance_exponent - 2 * x_exponent + 2 * j, int64_t{1} << 60);
  return MakeNormChannel(int64_t{1} << j, s1, v, eps_mantissa, eps_exponent, x_exponent);
}

// The backward constants of a channel: a = round(A * 2**F / n), b =
// round(B / n), gamma * rho with rho = n * r rounded to 16 bits, and the
// exponent of its values.
struct NormGradChannel {
  int64_t a;
  int64_t b;
  int64_t gamma_rho;
  int exponent;
};

KI_HOST_DEVICE NormGradChannel MakeNormGradChannel(int64_t sum_a, int64_t sum_b, int64_t rows, int64_t inv_sqrt,
                                                   int inv_shift, int8_t gamma, int gamma_exponent, int x_exponent,
                                                   int err_exponent) {
  NormGradChannel g;
  g.a = RoundDivide(sum_a * (int64_t{1} << kNormFractionBits), rows);
  g.b = RoundDivide(sum_b, rows);
  const int64_t n_r = rows * inv_sqrt;  // < 2**23 * 2**31.5
  const int excess = BitLength64(Magnitude64(n_r)) - 16;
  const int z = excess > 0 ? excess : 0;
  g.gamma_rho = int64_t{gamma} * RoundShift64(n_r, z, Rounding::kNearest, 0);
  g.exponent = gamma_exponent - x_exponent + err_exponent - kNormFractionBits + inv_shift - 61 + z;
  return g;
}

// dgamma = round_shift(B, h, nearest), saturated to int32 (rounding up can
// reach 2**31).
KI_HOST_DEVICE int32_t NormGammaGradient(int64_t sum_b, int h) {
  return static_cast<int32_t>(Clip64(RoundShift64(sum_b, h, Rounding::kNearest, 0), 0x7fffffff));
}

// The common shift h of dgamma from the largest bit width of B.
KI_HOST_DEVICE int NormGammaGradientShift(int b_bits) { return b_bits > 31 ? b_bits - 31 : 0; }

// xhat = round_shift((count * q - sum) * r, 61 - k - F, nearest): int32 at
// exponent -F, saturated at +-(2**31 - 1) (2**23 standard deviations: only
// inference, with moving statistics far from the input, gets there).
// Unsigned 64-bit suffices: |d| < 3 * 2**30 (inference: 2**23 * 127 plus a
// saturated |S1| < 2**31) and r <= 3037000503, so |d| * r + 2**(s - 1) < 2**64.
KI_HOST_DEVICE int32_t NormXhat(int8_t q, const NormChannel& ch) {
  const int64_t d = ch.count * q - ch.sum;
  const uint64_t mag = Magnitude64(d) * static_cast<uint64_t>(ch.inv_sqrt);
  const int s = 61 - ch.inv_shift - kNormFractionBits;
  uint64_t rounded = (mag + (uint64_t{1} << (s - 1))) >> s;
  if (rounded > 0x7fffffff) rounded = 0x7fffffff;
  const int32_t m = static_cast<int32_t>(rounded);
  return d < 0 ? -m : m;
}

// The forward accumulator gamma * xhat + beta at exponent e_g - F (beta is
// stored at that exponent).
KI_HOST_DEVICE int64_t NormOutput(int32_t xhat, int8_t gamma, int32_t beta) {
  return int64_t{gamma} * xhat + beta;
}

// The part of the backward bracket that depends on xhat:
// a + round_shift(xhat * b, F, nearest).
KI_HOST_DEVICE int64_t NormGradTerm(int32_t xhat, int64_t a, int64_t b) {
  return a + RoundShift64(int64_t{xhat} * b, kNormFractionBits, Rounding::kNearest, 0);
}

// The backward value of one element: bracket * gamma * rho, with bracket =
// (err << F) - NormGradTerm(xhat, a, b). err is the int8 error (batch
// norm) or err * gamma (layer norm, |err * gamma| < 2**14, with gamma_rho
// then rho alone).
KI_HOST_DEVICE int64_t NormGradValue(int32_t err, int32_t xhat, int64_t a, int64_t b, int64_t gamma_rho) {
  return (int64_t{err} * (int64_t{1} << kNormFractionBits) - NormGradTerm(xhat, a, b)) * gamma_rho;
}

// Aligns a statistic mantissa at exponent e_from to exponent e_to >= e_from
// (nearest).
KI_HOST_DEVICE int64_t NormAlignStatistic(int64_t m, int e_from, int e_to) {
  return ShiftSaturated(m, e_from - e_to, int64_t{1} << 62);
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_NORM_ELEMENT_H_

// The per-row loops of batch normalization on the CPU (norm.cc): portable
// loops (kIsa = 0, for the baseline instruction set), AVX-512 versions
// (kIsa = 1, norm_avx512.cc: 64-bit multiplies, gathers and per-lane
// shifts) and an AVX2 backward emit (kIsa = 2, norm_avx2.cc); norm.cc
// picks at run time. Integer arithmetic, lane by lane:
// both give the same bits (core_test compares them on an AVX-512 machine;
// the op tests run whichever this CPU picks).
#ifndef KERAS_INT_CC_CORE_NORM_ROWS_H_
#define KERAS_INT_CC_CORE_NORM_ROWS_H_

#include <cstdint>

namespace keras_int {
namespace norm_internal {

// Rows [begin, end) of a block of q: per channel the sum, the sum of
// squares, the smallest and the largest mantissa, added into (min/max)
// sums[0..4 * channels) = [S1 | S2 | low | high] (int32: at most 2**14 rows).
template <int kIsa>
void ScanRows(const int8_t* __restrict q, int64_t begin, int64_t end, int64_t channels, int32_t* __restrict sums) {
  int32_t* __restrict s1 = sums;
  int32_t* __restrict s2 = sums + channels;
  int32_t* __restrict low = sums + 2 * channels;
  int32_t* __restrict high = sums + 3 * channels;
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* __restrict row = q + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const int32_t v = row[c];
      s1[c] += v;
      s2[c] += v * v;
      low[c] = v < low[c] ? v : low[c];
      high[c] = v > high[c] ? v : high[c];
    }
  }
}

// Rows [begin, end) of the forward output: y[r, c] = table[c * 256 + q + 128].
template <int kIsa>
void LookupRows(const int8_t* __restrict q, int64_t begin, int64_t end, int64_t channels,
                const float* __restrict table, float* __restrict y) {
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* __restrict row = q + r * channels;
    float* __restrict out = y + r * channels;
    for (int64_t c = 0; c < channels; ++c) out[c] = table[c * 256 + (row[c] + 128)];
  }
}

// One element of the backward output: value = err * unit - terms[q + 128]
// (`terms`: the channel's 256), then requantize_channels with nearest as
// ((|value| << left) + half) >> right clipped to 127, times scale. The sign
// by arithmetic, not a branch: it is as random as the errors.
inline float GradEmitElement(int8_t err, int8_t q, int64_t unit, const int64_t* terms, uint64_t left, uint64_t half,
                             uint64_t right, float scale) {
  const int64_t value = int64_t{err} * unit - terms[q + 128];
  const int64_t sign = value >> 63;  // 0 or -1
  const uint64_t magnitude = static_cast<uint64_t>((value ^ sign) - sign);
  uint64_t rounded = ((magnitude << left) + half) >> right;
  rounded = rounded > 127 ? 127 : rounded;
  const int32_t mantissa = (static_cast<int32_t>(rounded) ^ static_cast<int32_t>(sign)) - static_cast<int32_t>(sign);
  return static_cast<float>(mantissa) * scale;
}

// Rows [begin, end) of the backward output, GradEmitElement per element
// with the channel's unit[c], term[c * 256 ...], left[c], half[c], right[c].
template <int kIsa>
void GradEmitRows(const int8_t* __restrict err, const int8_t* __restrict q, int64_t begin, int64_t end,
                  int64_t channels, const int64_t* __restrict unit, const int64_t* __restrict term,
                  const uint64_t* __restrict left, const uint64_t* __restrict half, const uint64_t* __restrict right,
                  float scale, float* __restrict dx) {
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* __restrict e = err + r * channels;
    const int8_t* __restrict m = q + r * channels;
    float* __restrict out = dx + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      out[c] = GradEmitElement(e[c], m[c], unit[c], term + c * 256, left[c], half[c], right[c], scale);
    }
  }
}

// Whether this CPU runs the kIsa = 1 instantiations (AVX-512 F, BW, DQ, VL),
// and the kIsa = 2 one (AVX2: the backward emit only; GCC vectorises the
// other loops' portable forms for AVX2 itself where it can).
bool NormAvx512Available();
bool NormAvx2Available();

// The AVX-512 versions (norm_avx512.cc, the only file compiled with those
// flags): explicit specializations, so that no other file instantiates
// kIsa = 1 from the portable loops above.
template <>
void ScanRows<1>(const int8_t* q, int64_t begin, int64_t end, int64_t channels, int32_t* sums);
template <>
void LookupRows<1>(const int8_t* q, int64_t begin, int64_t end, int64_t channels, const float* table, float* y);
template <>
void GradEmitRows<1>(const int8_t* err, const int8_t* q, int64_t begin, int64_t end, int64_t channels,
                     const int64_t* unit, const int64_t* term, const uint64_t* left, const uint64_t* half,
                     const uint64_t* right, float scale, float* dx);
// The AVX2 version (norm_avx2.cc).
template <>
void GradEmitRows<2>(const int8_t* err, const int8_t* q, int64_t begin, int64_t end, int64_t channels,
                     const int64_t* unit, const int64_t* term, const uint64_t* left, const uint64_t* half,
                     const uint64_t* right, float scale, float* dx);

}  // namespace norm_internal
}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_NORM_ROWS_H_

// The AVX-512 versions of batch normalization's row loops (norm_rows.h);
// this file alone is compiled with AVX-512 flags. Whole groups of 16 (8 for
// the 64-bit backward values) channels run in vector registers, the rest
// of a row in the portable loop; the arithmetic is the portable loop's,
// lane by lane, so both give the same bits.
#include <immintrin.h>

#include "cc/core/norm_rows.h"

namespace keras_int {
namespace norm_internal {

template <>
void ScanRows<1>(const int8_t* q, int64_t begin, int64_t end, int64_t channels, int32_t* sums) {
  const int64_t vector_channels = channels / 16 * 16;
  int32_t* s1 = sums;
  int32_t* s2 = sums + channels;
  int32_t* low = sums + 2 * channels;
  int32_t* high = sums + 3 * channels;
  for (int64_t c = 0; c < vector_channels; c += 16) {
    __m512i a = _mm512_loadu_si512(s1 + c), sq = _mm512_loadu_si512(s2 + c);
    __m512i lo = _mm512_loadu_si512(low + c), hi = _mm512_loadu_si512(high + c);
    for (int64_t r = begin; r < end; ++r) {
      const __m512i v =
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + r * channels + c)));
      a = _mm512_add_epi32(a, v);
      sq = _mm512_add_epi32(sq, _mm512_mullo_epi32(v, v));
      lo = _mm512_min_epi32(lo, v);
      hi = _mm512_max_epi32(hi, v);
    }
    _mm512_storeu_si512(s1 + c, a);
    _mm512_storeu_si512(s2 + c, sq);
    _mm512_storeu_si512(low + c, lo);
    _mm512_storeu_si512(high + c, hi);
  }
  if (vector_channels == channels) return;
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* row = q + r * channels;
    for (int64_t c = vector_channels; c < channels; ++c) {
      const int32_t v = row[c];
      s1[c] += v;
      s2[c] += v * v;
      low[c] = v < low[c] ? v : low[c];
      high[c] = v > high[c] ? v : high[c];
    }
  }
}

template <>
void LookupRows<1>(const int8_t* q, int64_t begin, int64_t end, int64_t channels, const float* table, float* y) {
  const int64_t vector_channels = channels / 16 * 16;
  // Lane k of group c reads table[(c + k) * 256 + q + 128].
  const __m512i lane_base = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                                                   11, 12, 13, 14, 15),
                                                                 _mm512_set1_epi32(256)),
                                             _mm512_set1_epi32(128));
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* row = q + r * channels;
    float* out = y + r * channels;
    for (int64_t c = 0; c < vector_channels; c += 16) {
      const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c)));
      const __m512i index = _mm512_add_epi32(lane_base, v);
      _mm512_storeu_ps(out + c, _mm512_i32gather_ps(index, table + c * 256, 4));
    }
    for (int64_t c = vector_channels; c < channels; ++c) out[c] = table[c * 256 + (row[c] + 128)];
  }
}

template <>
void GradEmitRows<1>(const int8_t* err, const int8_t* q, int64_t begin, int64_t end, int64_t channels,
                     const int64_t* unit, const int64_t* term, const uint64_t* left, const uint64_t* half,
                     const uint64_t* right, float scale, float* dx) {
  const int64_t vector_channels = channels / 8 * 8;
  const __m512i lane_base = _mm512_setr_epi64(128, 256 + 128, 512 + 128, 768 + 128, 1024 + 128, 1280 + 128,
                                              1536 + 128, 1792 + 128);
  const __m512i limit = _mm512_set1_epi64(127);
  const __m256 scale_vector = _mm256_set1_ps(scale);
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* e = err + r * channels;
    const int8_t* m = q + r * channels;
    float* out = dx + r * channels;
    for (int64_t c = 0; c < vector_channels; c += 8) {
      const __m512i ev = _mm512_cvtepi8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(e + c)));
      const __m512i mv = _mm512_cvtepi8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m + c)));
      const __m512i terms = _mm512_i64gather_epi64(_mm512_add_epi64(lane_base, mv), term + c * 256, 8);
      const __m512i value = _mm512_sub_epi64(_mm512_mullo_epi64(ev, _mm512_loadu_si512(unit + c)), terms);
      const __m512i sign = _mm512_srai_epi64(value, 63);
      const __m512i magnitude = _mm512_sub_epi64(_mm512_xor_si512(value, sign), sign);
      __m512i rounded = _mm512_sllv_epi64(magnitude, _mm512_loadu_si512(left + c));
      rounded = _mm512_srlv_epi64(_mm512_add_epi64(rounded, _mm512_loadu_si512(half + c)),
                                  _mm512_loadu_si512(right + c));
      rounded = _mm512_min_epu64(rounded, limit);
      const __m256i sign32 = _mm512_cvtepi64_epi32(sign);
      const __m256i mantissa = _mm256_sub_epi32(_mm256_xor_si256(_mm512_cvtepi64_epi32(rounded), sign32), sign32);
      _mm256_storeu_ps(out + c, _mm256_mul_ps(_mm256_cvtepi32_ps(mantissa), scale_vector));
    }
    for (int64_t c = vector_channels; c < channels; ++c) {
      out[c] = GradEmitElement(e[c], m[c], unit[c], term + c * 256, left[c], half[c], right[c], scale);
    }
  }
}

}  // namespace norm_internal
}  // namespace keras_int

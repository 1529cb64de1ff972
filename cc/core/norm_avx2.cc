// The AVX2 version of batch normalization's backward emit (norm_rows.h,
// kIsa = 2); this file alone is compiled with AVX2 flags. Groups of 4
// channels run in vector registers (64-bit values), the rest of a row in
// the portable loop; the arithmetic is the portable loop's, lane by lane,
// so both give the same bits. AVX2 has no 64-bit multiply, arithmetic
// shift or unsigned compare: the product err * unit is formed from 32-bit
// halves, the sign by a compare, and the clip compares signed (every
// rounded magnitude is below 2**63). The four terms are loaded one by one:
// vpgatherqq took twice as long on the 2-core EPYC (AVX2, Zen).
#include <immintrin.h>

#include "cc/core/norm_rows.h"

namespace keras_int {
namespace norm_internal {

namespace {

// e * u mod 2**64 for |e| <= 128 (sign-extended to 64 bits) and any int64
// u, from u = uh 2**32 + ul: e * ul is the unsigned product of e's low 32
// bits (e + 2**32 when e < 0) and ul, less ul 2**32 for e < 0; e * uh
// matters only modulo 2**32, which the unsigned product of the low halves
// gives.
inline __m256i MultiplySmall(__m256i e, __m256i u) {
  const __m256i negative = _mm256_cmpgt_epi64(_mm256_setzero_si256(), e);
  const __m256i low = _mm256_sub_epi64(_mm256_mul_epu32(e, u), _mm256_and_si256(negative, _mm256_slli_epi64(u, 32)));
  const __m256i high = _mm256_slli_epi64(_mm256_mul_epu32(e, _mm256_srli_epi64(u, 32)), 32);
  return _mm256_add_epi64(low, high);
}

inline __m256i LoadBytesAsInt64(const int8_t* p) {
  int32_t four;
  __builtin_memcpy(&four, p, 4);
  return _mm256_cvtepi8_epi64(_mm_cvtsi32_si128(four));
}

}  // namespace

template <>
void GradEmitRows<2>(const int8_t* err, const int8_t* q, int64_t begin, int64_t end, int64_t channels,
                     const int64_t* unit, const int64_t* term, const uint64_t* left, const uint64_t* half,
                     const uint64_t* right, float scale, float* dx) {
  const int64_t vector_channels = channels / 4 * 4;
  const __m256i limit = _mm256_set1_epi64x(127);
  const __m256i low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m128 scale_vector = _mm_set1_ps(scale);
  for (int64_t r = begin; r < end; ++r) {
    const int8_t* e = err + r * channels;
    const int8_t* m = q + r * channels;
    float* out = dx + r * channels;
    for (int64_t c = 0; c < vector_channels; c += 4) {
      const __m256i ev = LoadBytesAsInt64(e + c);
      const int64_t* terms_c = term + c * 256 + 128;
      const __m256i terms = _mm256_setr_epi64x(terms_c[m[c]], terms_c[256 + m[c + 1]], terms_c[512 + m[c + 2]],
                                               terms_c[768 + m[c + 3]]);
      const __m256i units = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unit + c));
      const __m256i value = _mm256_sub_epi64(MultiplySmall(ev, units), terms);
      const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), value);
      const __m256i magnitude = _mm256_sub_epi64(_mm256_xor_si256(value, sign), sign);
      __m256i rounded =
          _mm256_sllv_epi64(magnitude, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(left + c)));
      rounded = _mm256_srlv_epi64(_mm256_add_epi64(rounded, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + c))),
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(right + c)));
      rounded = _mm256_blendv_epi8(rounded, limit, _mm256_cmpgt_epi64(rounded, limit));
      const __m128i rounded32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(rounded, low_dwords));
      const __m128i sign32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(sign, low_dwords));
      const __m128i mantissa = _mm_sub_epi32(_mm_xor_si128(rounded32, sign32), sign32);
      _mm_storeu_ps(out + c, _mm_mul_ps(_mm_cvtepi32_ps(mantissa), scale_vector));
    }
    for (int64_t c = vector_channels; c < channels; ++c) {
      out[c] = GradEmitElement(e[c], m[c], unit[c], term + c * 256, left[c], half[c], right[c], scale);
    }
  }
}

}  // namespace norm_internal
}  // namespace keras_int

// The AVX2 micro-kernel; this file alone is compiled with -mavx2 and is only
// called when the CPU reports AVX2 (gemm.cc selects at run time).
#include <immintrin.h>

#include "cc/core/gemm.h"

namespace keras_int {
namespace gemm_internal {

void MicroKernelAvx2(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c, int64_t ldc,
                     bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "the register tile is written for 6 x 16");
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const int32_t* ap = reinterpret_cast<const int32_t*>(a);  // one int16 pair per row
  for (int64_t p = 0; p < k_pairs; ++p) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
    __m256i av = _mm256_set1_epi32(ap[0]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(ap[1]);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(ap[2]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(ap[3]);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(ap[4]);
    c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(av, b0));
    c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(ap[5]);
    c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(av, b0));
    c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(av, b1));
    ap += kMR;
    b += 2 * kNR;
  }
  const __m256i rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < kMR; ++r) {
    __m256i* out = reinterpret_cast<__m256i*>(c + r * ldc);
    __m256i lo = rows[r][0], hi = rows[r][1];
    if (accumulate) {
      lo = _mm256_add_epi32(lo, _mm256_loadu_si256(out));
      hi = _mm256_add_epi32(hi, _mm256_loadu_si256(out + 1));
    }
    _mm256_storeu_si256(out, lo);
    _mm256_storeu_si256(out + 1, hi);
  }
}

}  // namespace gemm_internal
}  // namespace keras_int

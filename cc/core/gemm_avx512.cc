// The AVX-512 VNNI micro-kernel; this file alone is compiled with AVX-512
// flags and is only called when the CPU reports AVX512-VNNI (gemm.cc selects
// at run time). vpdpwssd adds both int16 products of a pair into an int32
// lane in one instruction (no saturation), exactly what the AVX2 kernel does
// with vpmaddwd + vpaddd, over 16 columns per register.
#include <immintrin.h>

#include "cc/core/gemm.h"

namespace keras_int {
namespace gemm_internal {

void MicroKernelAvx512Vnni(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c, int64_t ldc,
                           bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "the register tile is written for 6 x 16");
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  const int32_t* ap = reinterpret_cast<const int32_t*>(a);  // one int16 pair per row
  for (int64_t p = 0; p < k_pairs; ++p) {
    const __m512i bv = _mm512_loadu_si512(b);
    c0 = _mm512_dpwssd_epi32(c0, _mm512_set1_epi32(ap[0]), bv);
    c1 = _mm512_dpwssd_epi32(c1, _mm512_set1_epi32(ap[1]), bv);
    c2 = _mm512_dpwssd_epi32(c2, _mm512_set1_epi32(ap[2]), bv);
    c3 = _mm512_dpwssd_epi32(c3, _mm512_set1_epi32(ap[3]), bv);
    c4 = _mm512_dpwssd_epi32(c4, _mm512_set1_epi32(ap[4]), bv);
    c5 = _mm512_dpwssd_epi32(c5, _mm512_set1_epi32(ap[5]), bv);
    ap += kMR;
    b += 2 * kNR;
  }
  const __m512i rows[kMR] = {c0, c1, c2, c3, c4, c5};
  for (int r = 0; r < kMR; ++r) {
    int32_t* out = c + r * ldc;
    const __m512i sum = accumulate ? _mm512_add_epi32(rows[r], _mm512_loadu_si512(out)) : rows[r];
    _mm512_storeu_si512(out, sum);
  }
}

}  // namespace gemm_internal
}  // namespace keras_int

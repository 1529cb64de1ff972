// The AVX-512 VNNI quad kernel; this file alone is compiled with AVX-512
// flags and is only called when the CPU reports AVX512-VNNI (gemm.cc selects
// at run time). vpdpbusd multiplies four unsigned bytes of A (a + 128) by four
// signed bytes of B per int32 lane and adds them, without saturation; the
// bias is removed with the block's column correction (see gemm.h).
#include <immintrin.h>

#include "cc/core/gemm.h"

namespace keras_int {
namespace gemm_internal {

void QuadKernelAvx512Vnni(int64_t k_quads, const uint32_t* a, const uint32_t* b,
                          const int32_t* correction, int32_t* c, int64_t ldc, bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "the register tile is written for 6 x 16");
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  const int32_t* ap = reinterpret_cast<const int32_t*>(a);
  for (int64_t q = 0; q < k_quads; ++q) {
    const __m512i bv = _mm512_loadu_si512(b);
    c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(ap[0]), bv);
    c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(ap[1]), bv);
    c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(ap[2]), bv);
    c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(ap[3]), bv);
    c4 = _mm512_dpbusd_epi32(c4, _mm512_set1_epi32(ap[4]), bv);
    c5 = _mm512_dpbusd_epi32(c5, _mm512_set1_epi32(ap[5]), bv);
    ap += kMR;
    b += kNR;
  }
  const __m512i bias = _mm512_loadu_si512(correction);
  const __m512i rows[kMR] = {c0, c1, c2, c3, c4, c5};
  for (int r = 0; r < kMR; ++r) {
    int32_t* out = c + r * ldc;
    __m512i sum = _mm512_sub_epi32(rows[r], bias);
    if (accumulate) sum = _mm512_add_epi32(sum, _mm512_loadu_si512(out));
    _mm512_storeu_si512(out, sum);
  }
}

}  // namespace gemm_internal
}  // namespace keras_int

// Exact int8 x int8 -> int32 matrix multiplication.
//
// Operands are read through "row readers" so that the same blocked, packed
// driver serves plain matrices (any strides, so transposes are free) and
// convolutions (implicit im2col: no patch matrix is ever materialised).
//
//   A reader: void ReadRow(int64_t i, int64_t k0, int64_t kc, int8_t* out)
//             out[t] = A[i, k0 + t]                      (A is M x K)
//   B reader: void ReadRow(int64_t k, int64_t j0, int64_t nj, int8_t* out)
//             out[t] = B[k, j0 + t]                      (B is K x N)
//
// Two packings, both exact for every int8 input:
// - pairs: int8 values widened to int16 in (k, k+1) pairs, the layout of
//   AVX2's vpmaddwd, which multiplies int16 pairs and adds them into int32
//   without saturation (vpmaddubsw, the usual int8 instruction, saturates to
//   int16 and is not exact);
// - quads (CPUs with AVX-512 VNNI): four depths per 32-bit word for
//   vpdpbusd, which multiplies unsigned by signed bytes, four per lane, and
//   adds without saturation. A is stored as a + 128 (0..255), and the block's
//   128 * sum_k B[k, j] is subtracted again; any wrap-around of the int32
//   lanes on the way cancels, since the exact result fits int32.
#ifndef KERAS_INT_CC_CORE_GEMM_H_
#define KERAS_INT_CC_CORE_GEMM_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__) && !defined(__CUDACC__)
#include <emmintrin.h>
#endif

#include "cc/core/limits.h"
#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// A row reader over a strided matrix of E (int8_t; int16_t for the DFP16
// products, gemm16.h): element (r, k) at data[r*rs + k*cs].
template <typename E>
struct StridedRows {
  const E* data;
  int64_t row_stride;
  int64_t col_stride;
  void ReadRow(int64_t r, int64_t k0, int64_t count, E* out) const {
    const E* p = data + r * row_stride + k0 * col_stride;
    if (col_stride == 1) {
      std::memcpy(out, p, count * sizeof(E));
    } else {
      for (int64_t t = 0; t < count; ++t) out[t] = p[t * col_stride];
    }
  }
};
using StridedMatrix = StridedRows<int8_t>;

namespace gemm_internal {

constexpr int kMR = 6;    // rows of a micro-tile
constexpr int kNR = 16;   // columns of a micro-tile (two AVX2 registers of int32)
constexpr int kKC = 512;       // depth of a packed block of int16 pairs (even)
constexpr int kQuadKC = 1024;  // of byte quads (a multiple of 4): the same bytes per row as pairs' 512

// C[0:MR, 0:NR] (row stride ldc) = (accumulate ? C : 0) + Apanel * Bpanel,
// k_pairs pairs of depth.
using MicroKernel = void (*)(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c,
                             int64_t ldc, bool accumulate);

void MicroKernelPortable(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c,
                         int64_t ldc, bool accumulate);
void MicroKernelAvx2(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c, int64_t ldc,
                     bool accumulate);

// The AVX2 kernel where the CPU has AVX2, the portable one elsewhere.
MicroKernel SelectedMicroKernel();

// C[0:MR, 0:NR] = (accumulate ? C : 0) + Apanel * Bpanel - correction over
// k_quads quads of depth (correction[j] = 128 * the block's sum of B[:, j]).
using QuadKernel = void (*)(int64_t k_quads, const uint32_t* a, const uint32_t* b,
                            const int32_t* correction, int32_t* c, int64_t ldc, bool accumulate);

void QuadKernelAvx512Vnni(int64_t k_quads, const uint32_t* a, const uint32_t* b,
                          const int32_t* correction, int32_t* c, int64_t ldc, bool accumulate);

// The quad kernel where the CPU has AVX-512 VNNI, else nullptr.
QuadKernel SelectedQuadKernel();

// (k, k+1) pair of int8 (or int16) values as the int32 that holds them as two int16s.
inline uint32_t PackPair(int16_t lo, int16_t hi) {
  return static_cast<uint16_t>(lo) | (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

#if defined(__SSE2__) && !defined(__CUDACC__)
// Six rows of four 32-bit words each -> the words depth-major: dst[j * kMR
// + r] = word j of row r, for j < 4 (a 6 x 4 transpose; the packed layout
// of both pairs and quads).
inline void StoreWordsTransposed(const __m128i (&r)[kMR], uint32_t* dst) {
  const __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]), t1 = _mm_unpacklo_epi32(r[2], r[3]);
  const __m128i t2 = _mm_unpackhi_epi32(r[0], r[1]), t3 = _mm_unpackhi_epi32(r[2], r[3]);
  const __m128i u = _mm_unpacklo_epi32(r[4], r[5]), v = _mm_unpackhi_epi32(r[4], r[5]);
  const __m128i first4[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1),
                             _mm_unpacklo_epi64(t2, t3), _mm_unpackhi_epi64(t2, t3)};
  const __m128i last2[4] = {u, _mm_unpackhi_epi64(u, u), v, _mm_unpackhi_epi64(v, v)};
  for (int j = 0; j < 4; ++j) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * kMR), first4[j]);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + j * kMR + 4), last2[j]);
  }
}
#endif

// kMR rows of A read through its reader, as packed pairs: out[p * kMR + r]
// = (A[r, 2p], A[r, 2p + 1]) as two int16s. E: the reader's element type,
// int8_t, or int16_t for gemm16.h's products with one operand within int8
// (PairPackingOf<int16_t>).
template <typename ReaderA, typename E = int8_t>
void PackA(const ReaderA& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc, int16_t* dst) {
  const int64_t k_pairs = (kc + 1) / 2;
  alignas(32) E block[kMR][kKC + 2];
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) {
      a.ReadRow(i0 + r, k0, kc, block[r]);
      block[r][kc] = 0;  // odd depth: the last pair's second half
    } else {
      std::memset(block[r], 0, 2 * k_pairs * sizeof(E));
    }
  }
  uint32_t* out = reinterpret_cast<uint32_t*>(dst);
  int64_t p = 0;
#if defined(__SSE2__) && !defined(__CUDACC__)
  // Four pairs of the six rows at a time: each row's 8 values as four
  // int16 pairs (int8 sign-extended), then transposed into place.
  for (; p + 4 <= k_pairs; p += 4) {
    __m128i r[kMR];
    for (int i = 0; i < kMR; ++i) {
      if constexpr (std::is_same_v<E, int8_t>) {
        const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block[i] + 2 * p));
        r[i] = _mm_unpacklo_epi8(bytes, _mm_cmpgt_epi8(_mm_setzero_si128(), bytes));
      } else {
        r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block[i] + 2 * p));
      }
    }
    StoreWordsTransposed(r, out + p * kMR);
  }
#endif
  for (; p < k_pairs; ++p) {
    for (int r = 0; r < kMR; ++r) out[p * kMR + r] = PackPair(block[r][2 * p], block[r][2 * p + 1]);
  }
}

// Strided matrices whose rows are not contiguous (a transposed operand):
// read each element once, straight into its packed place.
inline void PackA(const StridedMatrix& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                  int16_t* dst) {
  if (a.col_stride == 1) {
    PackA<StridedMatrix>(a, i0, rows, k0, kc, dst);
    return;
  }
  const int64_t k_pairs = (kc + 1) / 2;
  uint32_t* out = reinterpret_cast<uint32_t*>(dst);
  for (int64_t p = 0; p < k_pairs; ++p) {
    const int8_t* lo = a.data + i0 * a.row_stride + (k0 + 2 * p) * a.col_stride;
    const bool has_hi = 2 * p + 1 < kc;
#if defined(__SSE2__) && !defined(__CUDACC__)
    if (a.row_stride == 1 && rows == kMR && has_hi) {
      // The six rows are adjacent bytes at each depth (dy^T of a filter
      // gradient): two 6-byte loads interleaved and sign-extended into the
      // six pair words, instead of 12 single-byte gathers.
      __m128i depth[2];
      for (int t = 0; t < 2; ++t) {
        uint32_t low;  // rows 0-3 and 4-5 as register loads
        uint16_t high;
        std::memcpy(&low, lo + t * a.col_stride, 4);
        std::memcpy(&high, lo + t * a.col_stride + 4, 2);
        depth[t] = _mm_cvtsi64_si128(static_cast<long long>(low | static_cast<uint64_t>(high) << 32));
      }
      const __m128i pairs = _mm_unpacklo_epi8(depth[0], depth[1]);  // rows' (even, odd) bytes
      const __m128i words = _mm_unpacklo_epi8(pairs, _mm_cmpgt_epi8(_mm_setzero_si128(), pairs));
      const __m128i last = _mm_unpackhi_epi8(pairs, _mm_cmpgt_epi8(_mm_setzero_si128(), pairs));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + p * kMR), words);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + p * kMR + 4), last);
      continue;
    }
#endif
    for (int r = 0; r < kMR; ++r) {
      out[p * kMR + r] = r < rows ? PackPair(lo[r * a.row_stride],
                                             has_hi ? lo[r * a.row_stride + a.col_stride] : 0)
                                  : 0;
    }
  }
}

// Packs depth pairs [p_begin, p_end) of a kc-deep block of B for all
// n_panels panels: each row of B is read once, whole (a reader's per-call
// work, such as locating a pixel, is then paid once per row, not per panel).
// `rows` holds 2 * n_panels * kNR values whose tail past N stays zero;
// panels are panel_words 32-bit words apart in dst.
template <typename ReaderB, typename E>
void PackB(const ReaderB& b, int64_t N, int64_t n_panels, int64_t k0, int64_t kc, int64_t p_begin,
           int64_t p_end, E* rows, int64_t panel_words, int16_t* dst) {
  const int64_t width = n_panels * kNR;
  E* even = rows;
  E* odd = rows + width;
  uint32_t* out = reinterpret_cast<uint32_t*>(dst);
  for (int64_t p = p_begin; p < p_end; ++p) {
    b.ReadRow(k0 + 2 * p, 0, N, even);
    if (2 * p + 1 < kc) {
      b.ReadRow(k0 + 2 * p + 1, 0, N, odd);
    } else {
      std::memset(odd, 0, N * sizeof(E));
    }
    for (int64_t panel = 0; panel < n_panels; ++panel) {
      uint32_t* d = out + panel * panel_words + p * kNR;
      const E* e = even + panel * kNR;
      const E* o = odd + panel * kNR;
#if defined(__SSE2__) && !defined(__CUDACC__)
      // The panel's 16 (even, odd) pairs as int16 pairs: interleaved, int8
      // sign-extended.
      __m128i words[4];
      if constexpr (std::is_same_v<E, int8_t>) {
        const __m128i ev = _mm_loadu_si128(reinterpret_cast<const __m128i*>(e));
        const __m128i od = _mm_loadu_si128(reinterpret_cast<const __m128i*>(o));
        const __m128i lo = _mm_unpacklo_epi8(ev, od), hi = _mm_unpackhi_epi8(ev, od);
        const __m128i zero = _mm_setzero_si128();
        const __m128i lo_sign = _mm_cmpgt_epi8(zero, lo), hi_sign = _mm_cmpgt_epi8(zero, hi);
        words[0] = _mm_unpacklo_epi8(lo, lo_sign), words[1] = _mm_unpackhi_epi8(lo, lo_sign);
        words[2] = _mm_unpacklo_epi8(hi, hi_sign), words[3] = _mm_unpackhi_epi8(hi, hi_sign);
      } else {
        for (int half = 0; half < 2; ++half) {
          const __m128i ev = _mm_loadu_si128(reinterpret_cast<const __m128i*>(e + 8 * half));
          const __m128i od = _mm_loadu_si128(reinterpret_cast<const __m128i*>(o + 8 * half));
          words[2 * half] = _mm_unpacklo_epi16(ev, od), words[2 * half + 1] = _mm_unpackhi_epi16(ev, od);
        }
      }
      for (int q = 0; q < 4; ++q) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 4 * q), words[q]);
#else
      for (int j = 0; j < kNR; ++j) d[j] = PackPair(e[j], o[j]);
#endif
    }
  }
}

// A block of kMR rows of A, each kc bytes followed by zeros up to a whole
// quad, as packed quads: a + 128 (a byte's pattern xor 0x80), four depths
// per word (the row's own byte order), kMR rows interleaved.
using QuadRows = int8_t[kMR][kQuadKC + 4];
inline void QuadsFromRows(const QuadRows& block, int64_t k_quads, uint32_t* dst) {
  int64_t q = 0;
#if defined(__SSE2__) && !defined(__CUDACC__)
  // Four quads of the six rows at a time.
  const __m128i flip = _mm_set1_epi32(static_cast<int>(0x80808080u));
  for (; q + 4 <= k_quads; q += 4) {
    __m128i r[kMR];
    for (int i = 0; i < kMR; ++i) {
      r[i] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block[i] + 4 * q)), flip);
    }
    StoreWordsTransposed(r, dst + q * kMR);
  }
#endif
  for (; q < k_quads; ++q) {
    for (int r = 0; r < kMR; ++r) {
      uint32_t word;
      std::memcpy(&word, block[r] + 4 * q, 4);
      dst[q * kMR + r] = word ^ 0x80808080u;
    }
  }
}

// Quads of kMR rows of A read through its reader.
template <typename ReaderA>
void PackAQuads(const ReaderA& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst) {
  const int64_t k_quads = (kc + 3) / 4;
  alignas(32) QuadRows block;
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) {
      a.ReadRow(i0 + r, k0, kc, block[r]);
      std::memset(block[r] + kc, 0, k_quads * 4 - kc);  // the last quad's missing depths are zeros
    } else {
      std::memset(block[r], 0, k_quads * 4);
    }
  }
  QuadsFromRows(block, k_quads, dst);
}

// Transposed operands (columns not contiguous): each element read once,
// straight into its packed place, neighbouring rows together.
inline void PackAQuads(const StridedMatrix& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                       uint32_t* dst) {
  if (a.col_stride == 1) {
    PackAQuads<StridedMatrix>(a, i0, rows, k0, kc, dst);
    return;
  }
  const int64_t k_quads = (kc + 3) / 4;
  for (int64_t q = 0; q < k_quads; ++q) {
    const int8_t* first = a.data + i0 * a.row_stride + (k0 + 4 * q) * a.col_stride;
    const int depths = static_cast<int>(std::min<int64_t>(4, kc - 4 * q));
#if defined(__SSE2__) && !defined(__CUDACC__)
    if (a.row_stride == 1 && rows == kMR && depths == 4) {
      // The six rows are adjacent bytes at each depth (a transposed
      // row-major matrix, e.g. dy^T of a filter gradient): four 6-byte loads
      // interleaved into six words, instead of 24 single-byte gathers.
      __m128i depth[4];
      for (int t = 0; t < 4; ++t) {
        uint32_t low;  // rows 0-3 and 4-5 as register loads (a 6-byte copy through memory stalls)
        uint16_t high;
        std::memcpy(&low, first + t * a.col_stride, 4);
        std::memcpy(&high, first + t * a.col_stride + 4, 2);
        depth[t] = _mm_cvtsi64_si128(static_cast<long long>(low | static_cast<uint64_t>(high) << 32));
      }
      const __m128i d01 = _mm_unpacklo_epi8(depth[0], depth[1]), d23 = _mm_unpacklo_epi8(depth[2], depth[3]);
      const __m128i flip = _mm_set1_epi32(static_cast<int>(0x80808080u));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + q * kMR), _mm_xor_si128(_mm_unpacklo_epi16(d01, d23), flip));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + q * kMR + 4), _mm_xor_si128(_mm_unpackhi_epi16(d01, d23), flip));
      continue;
    }
#endif
    for (int r = 0; r < kMR; ++r) {
      uint32_t word = 0;
      for (int t = 0; t < depths && r < rows; ++t) {
        word |= static_cast<uint32_t>(static_cast<uint8_t>(first[r * a.row_stride + t * a.col_stride])) << (8 * t);
      }
      dst[q * kMR + r] = word ^ 0x80808080u;
    }
  }
}

// Quads of B: four depths of one column per word; `rows` holds
// 4 * n_panels * kNR bytes whose tail past N stays zero.
template <typename ReaderB>
void PackBQuads(const ReaderB& b, int64_t N, int64_t n_panels, int64_t k0, int64_t kc, int64_t q_begin,
                int64_t q_end, int8_t* rows, int64_t panel_words, uint32_t* dst) {
  const int64_t width = n_panels * kNR;
  for (int64_t q = q_begin; q < q_end; ++q) {
    for (int t = 0; t < 4; ++t) {
      if (4 * q + t < kc) {
        b.ReadRow(k0 + 4 * q + t, 0, N, rows + t * width);
      } else {
        std::memset(rows + t * width, 0, N);
      }
    }
    for (int64_t panel = 0; panel < n_panels; ++panel) {
      uint32_t* d = dst + panel * panel_words + q * kNR;
      const int64_t j0 = panel * kNR;
      for (int j = 0; j < kNR; ++j) {
        d[j] = static_cast<uint8_t>(rows[j0 + j]) | static_cast<uint32_t>(static_cast<uint8_t>(rows[width + j0 + j])) << 8 |
               static_cast<uint32_t>(static_cast<uint8_t>(rows[2 * width + j0 + j])) << 16 |
               static_cast<uint32_t>(static_cast<uint8_t>(rows[3 * width + j0 + j])) << 24;
      }
    }
  }
}

// Column-major B (a transposed operand, e.g. w^T of a dense layer's input
// gradient): a column's four depths are adjacent bytes, read as one word
// instead of gathering four strided rows.
inline void PackBQuads(const StridedMatrix& b, int64_t N, int64_t n_panels, int64_t k0, int64_t kc,
                       int64_t q_begin, int64_t q_end, int8_t* rows, int64_t panel_words, uint32_t* dst) {
  if (b.row_stride != 1) {
    PackBQuads<StridedMatrix>(b, N, n_panels, k0, kc, q_begin, q_end, rows, panel_words, dst);
    return;
  }
  for (int64_t q = q_begin; q < q_end; ++q) {
    const int depths = static_cast<int>(std::min<int64_t>(4, kc - 4 * q));
    for (int64_t panel = 0; panel < n_panels; ++panel) {
      uint32_t* d = dst + panel * panel_words + q * kNR;
      for (int j = 0; j < kNR; ++j) {
        const int64_t n = panel * kNR + j;
        uint32_t word = 0;
        if (n < N) {
          const int8_t* column = b.data + n * b.col_stride + k0 + 4 * q;
          if (depths == 4) {
            std::memcpy(&word, column, 4);
          } else {
            for (int t = 0; t < depths; ++t) word |= static_cast<uint32_t>(static_cast<uint8_t>(column[t])) << (8 * t);
          }
        }
        d[j] = word;
      }
    }
  }
}

// How a kc-deep block is packed and multiplied: kDepth depths per 32-bit
// word of a packed panel, from readers of Element values.
template <typename E>
struct PairPackingOf {
  using Element = E;
  static constexpr int kDepth = 2;
  static constexpr int kBlockDepth = kKC;
  MicroKernel kernel;
  template <typename ReaderA>
  void PackA(const ReaderA& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst) const {
    if constexpr (std::is_same_v<E, int8_t>) {
      gemm_internal::PackA(a, i0, rows, k0, kc, reinterpret_cast<int16_t*>(dst));  // with the strided overload
    } else {
      gemm_internal::PackA<ReaderA, E>(a, i0, rows, k0, kc, reinterpret_cast<int16_t*>(dst));
    }
  }
  template <typename ReaderB>
  void PackB(const ReaderB& b, int64_t N, int64_t n_panels, int64_t k0, int64_t kc, int64_t begin,
             int64_t end, E* rows, int64_t panel_words, uint32_t* dst) const {
    gemm_internal::PackB(b, N, n_panels, k0, kc, begin, end, rows, panel_words, reinterpret_cast<int16_t*>(dst));
  }
  void Corrections(const uint32_t*, int64_t, int64_t, int64_t, int32_t*) const {}
  void Multiply(int64_t units, const uint32_t* a, const uint32_t* b, const int32_t*, int32_t* c,
                int64_t ldc, bool accumulate) const {
    kernel(units, reinterpret_cast<const int16_t*>(a), reinterpret_cast<const int16_t*>(b), c, ldc,
           accumulate);
  }
};

using PairPacking = PairPackingOf<int8_t>;

struct QuadPacking {
  using Element = int8_t;
  static constexpr int kDepth = 4;
  static constexpr int kBlockDepth = kQuadKC;
  QuadKernel kernel;
  template <typename ReaderA>
  void PackA(const ReaderA& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst) const {
    PackAQuads(a, i0, rows, k0, kc, dst);
  }
  template <typename ReaderB>
  void PackB(const ReaderB& b, int64_t N, int64_t n_panels, int64_t k0, int64_t kc, int64_t begin,
             int64_t end, int8_t* rows, int64_t panel_words, uint32_t* dst) const {
    PackBQuads(b, N, n_panels, k0, kc, begin, end, rows, panel_words, dst);
  }
  // 128 * the sum of each column of the packed block (what the bias of A adds).
  void Corrections(const uint32_t* b_packed, int64_t n_panels, int64_t k_quads, int64_t panel_words,
                   int32_t* correction) const {
    for (int64_t panel = 0; panel < n_panels; ++panel) {
      int32_t sums[kNR] = {};
      for (int64_t q = 0; q < k_quads; ++q) {  // row by row: a vector loop over the columns
        const uint32_t* words = b_packed + panel * panel_words + q * kNR;
        for (int j = 0; j < kNR; ++j) {
          sums[j] += static_cast<int8_t>(words[j]) + static_cast<int8_t>(words[j] >> 8) +
                     static_cast<int8_t>(words[j] >> 16) + static_cast<int8_t>(words[j] >> 24);
        }
      }
      for (int j = 0; j < kNR; ++j) correction[panel * kNR + j] = 128 * sums[j];
    }
  }
  void Multiply(int64_t units, const uint32_t* a, const uint32_t* b, const int32_t* correction, int32_t* c,
                int64_t ldc, bool accumulate) const {
    kernel(units, a, b, correction, c, ldc, accumulate);
  }
};

// C (M x N, row stride ldc) = A[:, k_begin:k_end] * B[k_begin:k_end, :], with
// one packing; k_end - k_begin <= kMaxExactDepth.
template <typename Packing, typename ReaderA, typename ReaderB>
void GemmBlocks(const Packing& packing, int64_t M, int64_t N, int64_t k_begin, int64_t k_end,
                const ReaderA& a, const ReaderB& b, int32_t* c, int64_t ldc,
                const ParallelFor& parallel_for) {
  constexpr int64_t kBlock = Packing::kBlockDepth;
  // Words per packed row: a block's, or fewer for a shallow product (the
  // packed panels are then contiguous, not a full block apart).
  const int64_t max_units = (std::min<int64_t>(kBlock, k_end - k_begin) + Packing::kDepth - 1) / Packing::kDepth;
  const int64_t panel_words = kNR * max_units;
  const int64_t n_panels = (N + kNR - 1) / kNR;
  // Row blocks: at most 96 rows, and at least 4 blocks when M allows, so that
  // both cores get work even for short, deep products (weight gradients).
  int64_t mc = std::min<int64_t>(96, (M + 3) / 4);
  mc = std::max<int64_t>(kMR, (mc + kMR - 1) / kMR * kMR);
  const int64_t m_blocks = (M + mc - 1) / mc;
  std::vector<uint32_t> b_packed(n_panels * panel_words);
  std::vector<int32_t> correction(n_panels * kNR);

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBlock) {
    const int64_t kc = std::min<int64_t>(kBlock, k_end - k0);
    const int64_t units = (kc + Packing::kDepth - 1) / Packing::kDepth;
    const bool accumulate = k0 > k_begin;
    parallel_for(units, N * 4 * Packing::kDepth, [&](int64_t begin, int64_t end) {
      std::vector<typename Packing::Element> rows(Packing::kDepth * n_panels * kNR, 0);
      packing.PackB(b, N, n_panels, k0, kc, begin, end, rows.data(), panel_words, b_packed.data());
    });
    packing.Corrections(b_packed.data(), n_panels, units, panel_words, correction.data());
    parallel_for(m_blocks, mc * N * kc, [&](int64_t begin, int64_t end) {
      std::vector<uint32_t> a_packed(mc * max_units);
      int32_t tile[kMR * kNR];
      for (int64_t block = begin; block < end; ++block) {
        const int64_t i_begin = block * mc;
        const int64_t i_end = std::min(M, i_begin + mc);
        for (int64_t i = i_begin; i < i_end; i += kMR) {
          packing.PackA(a, i, std::min<int64_t>(kMR, i_end - i), k0, kc, &a_packed[(i - i_begin) * max_units]);
        }
        for (int64_t p = 0; p < n_panels; ++p) {
          const int64_t j = p * kNR;
          const int64_t cols = std::min<int64_t>(kNR, N - j);
          for (int64_t i = i_begin; i < i_end; i += kMR) {
            const int64_t rows = std::min<int64_t>(kMR, i_end - i);
            const uint32_t* ap = &a_packed[(i - i_begin) * max_units];
            const uint32_t* bp = &b_packed[p * panel_words];
            const int32_t* corr = &correction[j];
            int32_t* cp = c + i * ldc + j;
            if (rows == kMR && cols == kNR) {
              packing.Multiply(units, ap, bp, corr, cp, ldc, accumulate);
            } else {
              // Edge tile: compute into a scratch tile, copy the valid part.
              packing.Multiply(units, ap, bp, corr, tile, kNR, false);
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t s = 0; s < cols; ++s) {
                  cp[r * ldc + s] = (accumulate ? cp[r * ldc + s] : 0) + tile[r * kNR + s];
                }
              }
            }
          }
        }
      }
    });
  }
}

// Small, deep products (weight gradients) split the depth across threads,
// each with its own partial result, added at the end (exact: every partial
// sum is a shorter exact dot product): otherwise each of the many depth
// blocks would pay a thread-pool dispatch for a little work.
constexpr int64_t kDepthShardMaxOutputs = 1 << 16;
constexpr int64_t kDepthShards = 8;

template <typename Packing, typename ReaderA, typename ReaderB>
void GemmWithPacking(const Packing& packing, int64_t M, int64_t N, int64_t K, const ReaderA& a,
                     const ReaderB& b, int32_t* c, int64_t ldc, const ParallelFor& parallel_for) {
  constexpr int64_t kBlock = Packing::kBlockDepth;
  const int64_t blocks = (K + kBlock - 1) / kBlock;
  if (blocks < 4 || M * N > kDepthShardMaxOutputs) {
    GemmBlocks(packing, M, N, 0, K, a, b, c, ldc, parallel_for);
    return;
  }
  const int64_t shards = std::min(blocks, kDepthShards);
  std::vector<int32_t> partial(shards * M * N);
  parallel_for(shards, M * N * K / shards, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const int64_t k_begin = s * blocks / shards * kBlock;
      const int64_t k_end = std::min(K, (s + 1) * blocks / shards * kBlock);
      GemmBlocks(packing, M, N, k_begin, k_end, a, b, &partial[s * M * N], N, SerialFor);
    }
  });
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      int32_t sum = 0;
      for (int64_t s = 0; s < shards; ++s) sum += partial[(s * M + i) * N + j];
      c[i * ldc + j] = sum;
    }
  }
}

// C (M x N, row stride ldc) = A * B for K <= kMaxExactDepth: byte quads
// where the CPU has AVX-512 VNNI, int16 pairs elsewhere.
template <typename ReaderA, typename ReaderB>
void GemmExact(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int32_t* c,
               int64_t ldc, const ParallelFor& parallel_for) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0);
    return;
  }
  if (const QuadKernel quad = SelectedQuadKernel()) {
    GemmWithPacking(QuadPacking{quad}, M, N, K, a, b, c, ldc, parallel_for);
  } else {
    GemmWithPacking(PairPacking{SelectedMicroKernel()}, M, N, K, a, b, c, ldc, parallel_for);
  }
}

// A reader's depths from `offset` on (E: the reader's element type).
template <typename ReaderA>
struct DepthOffsetA {
  const ReaderA& a;
  int64_t offset;
  template <typename E>
  void ReadRow(int64_t i, int64_t k0, int64_t kc, E* out) const {
    a.ReadRow(i, k0 + offset, kc, out);
  }
};

template <typename ReaderB>
struct DepthOffsetB {
  const ReaderB& b;
  int64_t offset;
  template <typename E>
  void ReadRow(int64_t k, int64_t j0, int64_t nj, E* out) const {
    b.ReadRow(k + offset, j0, nj, out);
  }
};

}  // namespace gemm_internal

// C (M x N, row-major) = A (M x K) * B (K x N), exact. Depths beyond
// kMaxExactDepth are summed as exact int32 partial products in int64; a
// result that does not fit int32 is an error, never a wrapped value.
template <typename ReaderA, typename ReaderB>
Status Gemm(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int32_t* c,
            const ParallelFor& parallel_for) {
  using namespace gemm_internal;
  if (K <= kMaxExactDepth) {
    GemmExact(M, N, K, a, b, c, N, parallel_for);
    return Status::OK();
  }
  std::vector<int64_t> total(M * N, 0);
  std::vector<int32_t> part(M * N);
  for (int64_t k0 = 0; k0 < K; k0 += kMaxExactDepth) {
    const int64_t kc = std::min(kMaxExactDepth, K - k0);
    GemmExact(M, N, kc, DepthOffsetA<ReaderA>{a, k0}, DepthOffsetB<ReaderB>{b, k0}, part.data(), N,
              parallel_for);
    for (int64_t i = 0; i < M * N; ++i) total[i] += part[i];
  }
  for (int64_t i = 0; i < M * N; ++i) {
    if (total[i] > INT32_MAX || total[i] < INT32_MIN) {
      return Status::Error("int32 overflow: a dot product of depth " + std::to_string(K) +
                           " sums to " + std::to_string(total[i]) +
                           ", outside the int32 range of the accumulator");
    }
    c[i] = static_cast<int32_t>(total[i]);
  }
  return Status::OK();
}

// Plain matrix product with optional transposes: x is M x K (K x M if
// transpose_x), w is K x N (N x K if transpose_w).
Status MatMul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int32_t* out, const ParallelFor& parallel_for);

// `batch` independent MatMuls of consecutive M x K (or K x M) and K x N (or
// N x K) matrices into consecutive M x N results: the products of two
// activation tensors (attention's Q K^T and P V). The batch is split
// across threads, each product computed whole.
Status BatchMatMul(const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N, int64_t K,
                   bool transpose_x, bool transpose_w, int32_t* out, const ParallelFor& parallel_for);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GEMM_H_

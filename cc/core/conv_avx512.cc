// Direct forward convolution and filter gradient for short filter rows
// (first layers: a 3x3 filter over 1 or 3 channels) on AVX-512 VNNI; this
// file alone is compiled
// with AVX-512 flags and is only called when the CPU reports AVX512-VNNI
// (conv.cc selects at run time).
//
// Such a convolution is a GEMM of depth 9 or 27, where gathering every
// pixel's patch for the packed GEMM costs several times the multiply. Here
// the taps of one filter row (k_w * in_c bytes, contiguous in x without
// dilation along w) are read straight from a zero-padded copy of the input
// row, four bytes per vpdpbusd: filter row r contributes quads 4q..4q+3 of
// its bytes, and bytes past the row's end meet zero weights. The input is
// biased to unsigned (x + 128, as in the quad GEMM) and 128 * each channel's
// weight sum is subtracted: exact, no saturation. The filter gradient reads
// the same rows, four pixels per lane against their transposed errors.
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "cc/core/conv.h"
#include "cc/core/gemm.h"

namespace keras_int {
namespace conv_internal {

namespace {

// One output pixel, channel vectors [v0, v0 + V): rows holds the biased,
// padded input rows of the pixel's output row, `span` bytes apart.
template <int V>
inline void Pixel(const uint8_t* rows, int64_t span, int64_t base, int k_h, int quads_per_row,
                  const int32_t* weights, int64_t vecs, int64_t v0, const int32_t* correction,
                  int32_t* out, int64_t out_c) {
  __m512i acc[V];
  for (int v = 0; v < V; ++v) acc[v] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(correction + 16 * (v0 + v)));
  for (int r = 0; r < k_h; ++r) {
    const uint8_t* p = rows + r * span + base;
    for (int q = 0; q < quads_per_row; ++q) {
      int32_t word;
      std::memcpy(&word, p + 4 * q, 4);
      const __m512i a = _mm512_set1_epi32(word);
      const int32_t* wq = weights + ((r * quads_per_row + q) * vecs + v0) * 16;
      for (int v = 0; v < V; ++v) acc[v] = _mm512_dpbusd_epi32(acc[v], a, _mm512_loadu_si512(wq + 16 * v));
    }
  }
  for (int v = 0; v < V; ++v) {
    const int64_t c = 16 * (v0 + v);
    if (c + 16 <= out_c) {
      _mm512_storeu_si512(out + c, acc[v]);
    } else {
      _mm512_mask_storeu_epi32(out + c, static_cast<__mmask16>((1u << (out_c - c)) - 1), acc[v]);
    }
  }
}

// The biased (x + 128), zero-padded input rows (0x80 = 0 + 128) that
// output row `row` (= n * out_h + oh) reads, `span` bytes each.
void FillPaddedRows(const Conv2DGeometry& g, const int8_t* x, int64_t row, int64_t span, uint8_t* rows) {
  const int64_t n = row / g.out_h, oh = row % g.out_h;
  const int64_t left = g.pad_left * g.in_c;
  const int64_t copied = std::max<int64_t>(0, std::min(g.in_w * g.in_c, span - left));
  std::memset(rows, 0x80, g.k_h * span);
  for (int64_t r = 0; r < g.k_h; ++r) {
    const int64_t ih = oh * g.stride_h - g.pad_top + r * g.dilation_h;
    if (ih < 0 || ih >= g.in_h) continue;
    const int8_t* src = x + (n * g.in_h + ih) * g.in_w * g.in_c;
    uint8_t* dst = rows + r * span + left;
    for (int64_t i = 0; i < copied; ++i) dst[i] = static_cast<uint8_t>(src[i]) ^ 0x80u;
  }
}

// 16 channels of 4 pixels' errors, transposed for vpdpbusd: lane c holds
// (p0[c], p1[c], p2[c], p3[c]); `channels` <= 16 of each row are read.
inline __m512i FourPixels(const int8_t* p0, const int8_t* p1, const int8_t* p2, const int8_t* p3, int channels) {
  // Masked byte loads (AVX512BW) read nothing past the channels.
  const __mmask64 mask = channels >= 16 ? 0xFFFFull : (1ull << channels) - 1;
  const __m128i a = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(mask, p0));
  const __m128i b = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(mask, p1));
  const __m128i c = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(mask, p2));
  const __m128i d = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(mask, p3));
  const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
  const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
  __m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(ab_lo, cd_lo));  // channels 0-3
  v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(ab_lo, cd_lo), 1);        // 4-7
  v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(ab_hi, cd_hi), 2);        // 8-11
  return _mm512_inserti32x4(v, _mm_unpackhi_epi16(ab_hi, cd_hi), 3);     // 12-15
}

// Filter gradient of output rows [begin, end) (at most kMaxExactDepth
// pixels, so every sum is exact in int32) into partial[tap * out_c + o]:
// T taps, 16 channels at a time, four pixels per vpdpbusd.
template <int T>
void FilterGradRows(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy, int64_t begin, int64_t end,
                    int64_t span, int32_t* partial) {
  const int64_t row_bytes = g.k_w * g.in_c;
  const int64_t step = g.stride_w * g.in_c;  // bytes between neighbouring pixels' patches
  std::vector<uint8_t> rows(g.k_h * span);
  const std::vector<int8_t> zeros(g.out_c, 0);
  // Tap t = r * row_bytes + b reads byte b of padded row r.
  int64_t offset[T];
  for (int t = 0; t < T; ++t) offset[t] = t / row_bytes * span + t % row_bytes;
  for (int64_t v = 0; 16 * v < g.out_c; ++v) {
    const int channels = static_cast<int>(std::min<int64_t>(16, g.out_c - 16 * v));
    __m512i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_si512();
    __m512i sums = _mm512_setzero_si512();
    const __m512i ones = _mm512_set1_epi32(0x01010101);
    for (int64_t row = begin; row < end; ++row) {
      FillPaddedRows(g, x, row, span, rows.data());
      const int8_t* errors = dy + row * g.out_w * g.out_c + 16 * v;
      for (int64_t ow = 0; ow < g.out_w; ow += 4) {
        const int8_t* e[4];
        for (int i = 0; i < 4; ++i) e[i] = ow + i < g.out_w ? errors + (ow + i) * g.out_c : zeros.data();
        const __m512i d = FourPixels(e[0], e[1], e[2], e[3], channels);
        sums = _mm512_dpbusd_epi32(sums, ones, d);
        const uint8_t* base = rows.data() + ow * step;
        for (int t = 0; t < T; ++t) {
          const uint8_t* p = base + offset[t];
          int32_t word;
          if (step == 1) {
            std::memcpy(&word, p, 4);
          } else {
            word = p[0] | p[step] << 8 | p[2 * step] << 16 | static_cast<int32_t>(static_cast<uint32_t>(p[3 * step]) << 24);
          }
          acc[t] = _mm512_dpbusd_epi32(acc[t], _mm512_set1_epi32(word), d);
        }
      }
    }
    // Remove the bias: sum (x + 128) * dy - 128 * sum dy (exact modulo 2**32,
    // and the exact result fits int32).
    const __m512i bias = _mm512_slli_epi32(sums, 7);
    const __mmask16 mask = static_cast<__mmask16>(channels >= 16 ? 0xFFFFu : (1u << channels) - 1);
    for (int t = 0; t < T; ++t) {
      _mm512_mask_storeu_epi32(partial + t * g.out_c + 16 * v, mask, _mm512_sub_epi32(acc[t], bias));
    }
  }
}

}  // namespace

bool Conv2DBackpropFilterShortRowsAvx512Vnni(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy,
                                             int32_t* dw, const ParallelFor& parallel_for, std::string* error) {
  if (!UseShortRowsFilterGrad(g)) {
    *error = "conv2d_backprop_filter: the direct short-row kernel does not take this geometry";
    return false;
  }
  const int taps = static_cast<int>(g.k_h * g.k_w * g.in_c);
  const int64_t rows_total = g.batch * g.out_h;
  const int64_t padded_w = (g.out_w + 3) / 4 * 4;  // pixels per row, read in fours
  const int64_t step = g.stride_w * g.in_c;
  const int64_t span = (padded_w - 1) * step + std::max<int64_t>(g.k_w * g.in_c, 4 * ((g.k_w * g.in_c + 3) / 4)) + 3 * step;
  // Chunks of whole rows, each exact in int32, at least two for the threads.
  const int64_t rows_per_chunk_max = kMaxExactDepth / padded_w;  // >= 1 (UseShortRowsFilterGrad)
  int64_t chunks = std::max<int64_t>((rows_total + rows_per_chunk_max - 1) / rows_per_chunk_max,
                                     std::min<int64_t>(rows_total, 2));
  const int64_t rows_per_chunk = (rows_total + chunks - 1) / std::max<int64_t>(chunks, 1);
  chunks = rows_per_chunk > 0 ? (rows_total + rows_per_chunk - 1) / rows_per_chunk : 0;
  const int64_t outputs = taps * g.out_c;
  std::vector<int32_t> partial(chunks * outputs, 0);
  parallel_for(chunks, rows_per_chunk * g.out_w * outputs, [&](int64_t first, int64_t last) {
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t begin = chunk * rows_per_chunk, end = std::min(rows_total, begin + rows_per_chunk);
      int32_t* out = partial.data() + chunk * outputs;
      switch (taps) {
#define KI_TAPS(T) case T: FilterGradRows<T>(g, x, dy, begin, end, span, out); break;
        KI_TAPS(1) KI_TAPS(2) KI_TAPS(3) KI_TAPS(4) KI_TAPS(5) KI_TAPS(6) KI_TAPS(7) KI_TAPS(8)
        KI_TAPS(9) KI_TAPS(10) KI_TAPS(11) KI_TAPS(12) KI_TAPS(13) KI_TAPS(14) KI_TAPS(15) KI_TAPS(16)
#undef KI_TAPS
        default: break;
      }
    }
  });
  for (int64_t i = 0; i < outputs; ++i) {
    int64_t total = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[chunk * outputs + i];
    if (total > INT32_MAX || total < INT32_MIN) {
      *error = "int32 overflow: a filter gradient over " + std::to_string(g.batch * g.out_h * g.out_w) +
               " pixels sums to " + std::to_string(total) + ", outside the int32 range of the accumulator";
      return false;
    }
    dw[i] = static_cast<int32_t>(total);
  }
  return true;
}

void Conv2DShortRowsAvx512Vnni(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out,
                               const ParallelFor& parallel_for) {
  const int64_t row_bytes = g.k_w * g.in_c;
  const int quads_per_row = static_cast<int>((row_bytes + 3) / 4);
  const int k_h = static_cast<int>(g.k_h);
  const int64_t vecs = (g.out_c + 15) / 16;
  // weights[(r * quads_per_row + q) * vecs + v], lane c: bytes 4q..4q+3 of
  // filter row r for channel 16v + c (zero past the row and the channels).
  std::vector<int32_t> weights(k_h * quads_per_row * vecs * 16, 0);
  std::vector<int32_t> correction(vecs * 16, 0);
  for (int r = 0; r < k_h; ++r) {
    for (int64_t b = 0; b < row_bytes; ++b) {
      for (int64_t c = 0; c < g.out_c; ++c) {
        const int8_t value = w[(r * row_bytes + b) * g.out_c + c];
        const int64_t index = ((r * quads_per_row + b / 4) * vecs + c / 16) * 16 + c % 16;
        weights[index] |= static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint8_t>(value)) << (8 * (b % 4)));
        correction[c] += 128 * value;
      }
    }
  }
  // Bytes of a padded row the pixels read (the last quad may run past the row).
  const int64_t span = (g.out_w - 1) * g.stride_w * g.in_c + 4 * quads_per_row;
  parallel_for(g.batch * g.out_h, g.out_w * g.out_c * row_bytes * g.k_h, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> rows(k_h * span);
    for (int64_t row = begin; row < end; ++row) {
      FillPaddedRows(g, x, row, span, rows.data());
      int32_t* y = out + row * g.out_w * g.out_c;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t base = ow * g.stride_w * g.in_c;
        int64_t v0 = 0;
        for (; v0 + 4 <= vecs; v0 += 4) {
          Pixel<4>(rows.data(), span, base, k_h, quads_per_row, weights.data(), vecs, v0, correction.data(), y, g.out_c);
        }
        switch (vecs - v0) {
          case 3: Pixel<3>(rows.data(), span, base, k_h, quads_per_row, weights.data(), vecs, v0, correction.data(), y, g.out_c); break;
          case 2: Pixel<2>(rows.data(), span, base, k_h, quads_per_row, weights.data(), vecs, v0, correction.data(), y, g.out_c); break;
          case 1: Pixel<1>(rows.data(), span, base, k_h, quads_per_row, weights.data(), vecs, v0, correction.data(), y, g.out_c); break;
          default: break;
        }
        y += g.out_c;
      }
    }
  });
}

}  // namespace conv_internal
}  // namespace keras_int

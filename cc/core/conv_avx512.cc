// Direct forward convolution for short filter rows (first layers: a 3x3
// filter over 1 or 3 channels) on AVX-512 VNNI; this file alone is compiled
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
// weight sum is subtracted: exact, no saturation.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cc/core/conv.h"

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

}  // namespace

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
  const int64_t left = g.pad_left * g.in_c;
  const int64_t copied = std::max<int64_t>(0, std::min(g.in_w * g.in_c, span - left));
  parallel_for(g.batch * g.out_h, g.out_w * g.out_c * row_bytes * g.k_h, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> rows(k_h * span);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.out_h, oh = row % g.out_h;
      // Zero padding is 0x80 (0 + 128); inside, x ^ 0x80 = x + 128.
      std::memset(rows.data(), 0x80, rows.size());
      for (int r = 0; r < k_h; ++r) {
        const int64_t ih = oh * g.stride_h - g.pad_top + r * g.dilation_h;
        if (ih < 0 || ih >= g.in_h) continue;
        const int8_t* src = x + (n * g.in_h + ih) * g.in_w * g.in_c;
        uint8_t* dst = rows.data() + r * span + left;
        for (int64_t i = 0; i < copied; ++i) dst[i] = static_cast<uint8_t>(src[i]) ^ 0x80u;
      }
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

#include "cc/core/conv.h"

#include <cstring>
#include <string>
#include <vector>

#include "cc/core/gemm.h"
#include "cc/core/gemm16.h"
#include "cc/core/index_split.h"

#if defined(__SSE2__) && !defined(__CUDACC__)
#include <emmintrin.h>
#endif

namespace keras_int {

Status ComputeWindowGeometry(int64_t in, int64_t window, int64_t stride, int64_t dilation,
                             bool same_padding, int64_t* out, int64_t* pad_before) {
  if (stride < 1) return Status::Error("stride must be >= 1, got " + std::to_string(stride));
  if (dilation < 1) return Status::Error("dilation must be >= 1, got " + std::to_string(dilation));
  if (window < 1) return Status::Error("window size must be >= 1, got " + std::to_string(window));
  const int64_t effective = (window - 1) * dilation + 1;
  if (same_padding) {
    *out = (in + stride - 1) / stride;
    const int64_t pad_total = std::max<int64_t>((*out - 1) * stride + effective - in, 0);
    *pad_before = pad_total / 2;
  } else {
    if (in < effective) {
      return Status::Error("VALID padding: input size " + std::to_string(in) +
                           " is smaller than the (dilated) window " + std::to_string(effective));
    }
    *out = (in - effective) / stride + 1;
    *pad_before = 0;
  }
  return Status::OK();
}

Status ComputeConv2DGeometry(bool same_padding, Conv2DGeometry* g) {
  KERAS_INT_RETURN_IF_ERROR(ComputeWindowGeometry(g->in_h, g->k_h, g->stride_h, g->dilation_h,
                                                  same_padding, &g->out_h, &g->pad_top));
  KERAS_INT_RETURN_IF_ERROR(ComputeWindowGeometry(g->in_w, g->k_w, g->stride_w, g->dilation_w,
                                                  same_padding, &g->out_w, &g->pad_left));
  return Status::OK();
}

namespace {

// n values from src to dst (or zeros, src null), 16 bytes at a time: the
// readers copy short runs (a pixel's channels, 16-64 bytes in a ResNet), for
// which a call to memcpy with a variable size costs more than the copy.
template <typename T>
inline void CopyRun(T* dst, const T* src, int64_t n) {
  int64_t bytes = n * static_cast<int64_t>(sizeof(T));
  char* d = reinterpret_cast<char*>(dst);
  const char* s = reinterpret_cast<const char*>(src);
#if defined(__SSE2__) && !defined(__CUDACC__)
  for (; bytes >= 16; bytes -= 16, d += 16) {
    const __m128i chunk = s ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)) : _mm_setzero_si128();
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), chunk);
    if (s) s += 16;
  }
#endif
  if (bytes == 0) return;
  if (s) {
    std::memcpy(d, s, bytes);
  } else {
    std::memset(d, 0, bytes);
  }
}

// A[pixel, (kh, kw, c)] = x at the tap (kh, kw) of output pixel `pixel`.
// Without dilation along w, the taps of one filter row are adjacent pixels,
// so all their channels are one contiguous run of x while they stay inside
// the image: copied at once (a first layer with one channel would otherwise
// copy one byte per tap).
// T is the mantissa type (int8_t, or int16_t for the DFP16 datapath).
template <typename T>
struct PatchRows {
  const Conv2DGeometry& g;
  const T* x;
  IndexSplit pixels, depths;
  PatchRows(const Conv2DGeometry& geometry, const T* input)
      : g(geometry), x(input), pixels(g.out_h, g.out_w, g.batch * g.out_h * g.out_w),
        depths(g.k_w, g.in_c, g.k_h * g.k_w * g.in_c) {}
  void ReadRow(int64_t pixel, int64_t k0, int64_t count, T* out) const {
    int64_t n, oh, ow;
    pixels(pixel, &n, &oh, &ow);
    const int64_t iw0 = ow * g.stride_w - g.pad_left;  // the input column of tap kw = 0
    const int64_t ih0 = oh * g.stride_h - g.pad_top;
    int64_t c = 0, kh = 0, kw = 0;  // k0 = 0 (depths up to a packed block) needs no division
    if (k0 > 0) depths(k0, &kh, &kw, &c);
    while (count > 0) {
      const int64_t ih = ih0 + kh * g.dilation_h;
      const int64_t iw = iw0 + kw * g.dilation_w;
      int64_t taps = 1;  // taps of this filter row the run covers
      int64_t run;
      if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) {
        // Taps [kw, end) lie inside the image; without dilation they are adjacent.
        if (g.dilation_w == 1) taps = std::min(g.k_w, g.in_w - iw0) - kw;
        run = std::min(taps * g.in_c - c, count);
        CopyRun(out, x + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c, run);
      } else {
        run = std::min(g.in_c - c, count);
        CopyRun<T>(out, nullptr, run);
      }
      out += run;
      count -= run;
      // Next: the tap after the run (only used when the run was complete).
      c = 0;
      kw += taps;
      if (kw == g.k_w) kw = 0, ++kh;
    }
  }
};

// The backprop-input GEMM by stride phase. Input row h receives error only
// from taps kh with (h + pad_top - kh * dilation_h) a multiple of stride_h,
// which depends only on the residue (h + pad_top) % stride_h: input pixels
// of one residue pair (a phase) share their taps, so each phase is one GEMM
// over just those taps. A stride of 2 would otherwise multiply by zeros
// three times in four.
struct PhaseAxis {
  int64_t first = 0, count = 0;  // the phase's first input coordinate and how many it has
  std::vector<int64_t> taps;     // filter coordinates that reach it, last first
  std::vector<int64_t> offsets;  // output coordinate of tap t at the phase's i-th input: i + offsets[t]
  bool adjacent = true;          // consecutive taps read consecutive output coordinates
};

// Taps in descending order, so that with unit stride and dilation they read
// ascending output pixels: a filter row's taps are then one run of dy.
// The phase whose first input coordinate is `first` (< stride and < in).
PhaseAxis AxisPhase(int64_t first, int64_t in, int64_t pad, int64_t window, int64_t stride,
                    int64_t dilation) {
  PhaseAxis axis;
  axis.first = first;
  axis.count = (in - first + stride - 1) / stride;
  const int64_t residue = (first + pad) % stride;
  for (int64_t k = window - 1; k >= 0; --k) {
    if (k * dilation % stride != residue) continue;
    const int64_t offset = (axis.first + pad - k * dilation) / stride;  // an exact division
    if (!axis.offsets.empty() && offset != axis.offsets.back() + 1) axis.adjacent = false;
    axis.taps.push_back(k);
    axis.offsets.push_back(offset);
  }
  return axis;
}

// A[(n, i, j), (a, b, o)] = dy at the output pixel that tap (rows.taps[a],
// cols.taps[b]) of the phase's input pixel (i, j) feeds, or 0 past a border.
template <typename T>
struct PhaseScatterRows {
  const Conv2DGeometry& g;
  const T* dy;
  const PhaseAxis& rows;
  const PhaseAxis& cols;
  int64_t taps_w;
  IndexSplit pixels, depths;
  PhaseScatterRows(const Conv2DGeometry& geometry, const T* error, const PhaseAxis& phase_rows,
                   const PhaseAxis& phase_cols)
      : g(geometry), dy(error), rows(phase_rows), cols(phase_cols), taps_w(static_cast<int64_t>(cols.taps.size())),
        pixels(rows.count, cols.count, g.batch * rows.count * cols.count),
        depths(taps_w, g.out_c, static_cast<int64_t>(rows.taps.size()) * taps_w * g.out_c) {}
  void ReadRow(int64_t pixel, int64_t k0, int64_t count, T* out) const {
    int64_t n, i, j;
    pixels(pixel, &n, &i, &j);
    int64_t a = 0, b = 0, o = 0;  // k0 = 0 (depths up to a packed block) needs no division
    if (k0 > 0) depths(k0, &a, &b, &o);
    while (count > 0) {
      const int64_t oh = i + rows.offsets[a], ow = j + cols.offsets[b];
      int64_t taps = 1;  // taps of this filter row the run covers
      int64_t run;
      if (oh >= 0 && oh < g.out_h && ow >= 0 && ow < g.out_w) {
        // Adjacent taps [b, b + taps) read adjacent pixels while inside the image.
        if (cols.adjacent) taps = std::min(taps_w - b, g.out_w - ow);
        run = std::min(taps * g.out_c - o, count);
        CopyRun(out, dy + ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o, run);
      } else {
        run = std::min(g.out_c - o, count);
        CopyRun<T>(out, nullptr, run);
      }
      out += run;
      count -= run;
      // Next: the tap after the run (only used when the run was complete).
      o = 0;
      b += taps;
      if (b == taps_w) b = 0, ++a;
    }
  }
};

// B[(a, b, o), c] = w[rows.taps[a], cols.taps[b], c, o]: the phase's taps of
// the filter, in/out channels swapped.
template <typename T>
struct PhaseFilterRows {
  const Conv2DGeometry& g;
  const T* w;
  const PhaseAxis& rows;
  const PhaseAxis& cols;
  void ReadRow(int64_t k, int64_t c0, int64_t count, T* out) const {
    const int64_t taps_w = static_cast<int64_t>(cols.taps.size());
    const int64_t tap = k / g.out_c, o = k % g.out_c;
    const int64_t kh = rows.taps[tap / taps_w], kw = cols.taps[tap % taps_w];
    const T* p = w + ((kh * g.k_w + kw) * g.in_c + c0) * g.out_c + o;
    for (int64_t t = 0; t < count; ++t) out[t] = p[t * g.out_c];
  }
};

// dx by phases: gemm(M, N, K, A reader, B reader, out) computes one phase's
// rows, straight into dx when there is one phase (unit strides), else into
// a buffer whose rows are then put in place.
template <typename T, typename Acc, typename PhaseGemm>
Status BackpropInputByPhase(const Conv2DGeometry& g, const T* w, const T* dy, Acc* dx,
                            const ParallelFor& parallel_for, const PhaseGemm& gemm) {
  const bool one_phase = g.stride_h == 1 && g.stride_w == 1;
  std::vector<Acc> phase_dx;
  // One phase per first coordinate below min(stride, in): a stride larger
  // than the input has fewer phases than residues.
  for (int64_t h0 = 0; h0 < std::min(g.stride_h, g.in_h); ++h0) {
    const PhaseAxis rows = AxisPhase(h0, g.in_h, g.pad_top, g.k_h, g.stride_h, g.dilation_h);
    for (int64_t w0 = 0; w0 < std::min(g.stride_w, g.in_w); ++w0) {
      const PhaseAxis cols = AxisPhase(w0, g.in_w, g.pad_left, g.k_w, g.stride_w, g.dilation_w);
      const int64_t M = g.batch * rows.count * cols.count;
      if (M == 0) continue;
      const int64_t K = static_cast<int64_t>(rows.taps.size() * cols.taps.size()) * g.out_c;
      Acc* out = dx;
      if (!one_phase && K > 0) {
        phase_dx.resize(M * g.in_c);
        out = phase_dx.data();
      }
      if (K > 0) {
        KERAS_INT_RETURN_IF_ERROR(gemm(M, g.in_c, K, PhaseScatterRows<T>{g, dy, rows, cols},
                                       PhaseFilterRows<T>{g, w, rows, cols}, out));
      }
      if (one_phase && K > 0) continue;
      // The phase's rows into place (zeros where no tap reaches them).
      const IndexSplit pixels(rows.count, cols.count, M);
      parallel_for(M, 4 * g.in_c, [&](int64_t begin, int64_t end) {
        for (int64_t pixel = begin; pixel < end; ++pixel) {
          int64_t n, i, j;
          pixels(pixel, &n, &i, &j);
          const int64_t h = rows.first + i * g.stride_h, x = cols.first + j * g.stride_w;
          CopyRun(dx + ((n * g.in_h + h) * g.in_w + x) * g.in_c, K > 0 ? out + pixel * g.in_c : nullptr, g.in_c);
        }
      });
    }
  }
  return Status::OK();
}

}  // namespace

namespace conv_internal {

bool UseShortRowsConv(const Conv2DGeometry& g) {
  static const bool available = gemm_internal::SelectedQuadKernel() != nullptr;
  const int64_t quads_per_row = (g.k_w * g.in_c + 3) / 4;
  return available && g.dilation_w == 1 && g.k_w * g.in_c <= 16 && g.k_h * quads_per_row <= 16 &&
         g.out_h > 0 && g.out_w > 0;
}

bool UseShortRowsFilterGrad(const Conv2DGeometry& g) {
  // Its int32 chunks hold whole output rows, read four pixels at a time; its
  // padded row copies span about (out_w rounded up to 4) * stride_w * in_c
  // bytes, which for a huge stride would be mostly padding (gigabytes for one
  // output pixel): at most 64 bytes per pixel keeps them near the input row.
  const int64_t padded_w = (g.out_w + 3) / 4 * 4;
  return UseShortRowsConv(g) && g.k_h * g.k_w * g.in_c <= 16 && padded_w <= kMaxExactDepth &&
         g.stride_w * g.in_c <= 64;
}

}  // namespace conv_internal

Status Conv2D(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out,
              const ParallelFor& parallel_for) {
  const int64_t depth = g.k_h * g.k_w * g.in_c;
  if (conv_internal::UseShortRowsConv(g)) {
    conv_internal::Conv2DShortRowsAvx512Vnni(g, x, w, out, parallel_for);
    return Status::OK();
  }
  return Gemm(g.batch * g.out_h * g.out_w, g.out_c, depth, PatchRows<int8_t>{g, x},
              StridedMatrix{w, g.out_c, 1}, out, parallel_for);
}

Status Conv2DBackpropInput(const Conv2DGeometry& g, const int8_t* w, const int8_t* dy,
                           int32_t* dx, const ParallelFor& parallel_for) {
  return BackpropInputByPhase(g, w, dy, dx, parallel_for, [&](int64_t M, int64_t N, int64_t K, const auto& a,
                                                               const auto& b, int32_t* out) {
    return Gemm(M, N, K, a, b, out, parallel_for);
  });
}

Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy,
                            int32_t* dw, const ParallelFor& parallel_for) {
  // dw^T [O, (kh, kw, c)] = dy^T [O, pixels] * patches [pixels, (kh, kw, c)]: the
  // patches are then read as contiguous channel runs (as in the forward pass)
  // instead of being gathered element by element; the small result is
  // transposed at the end.
  const int64_t depth = g.batch * g.out_h * g.out_w;
  const int64_t taps = g.k_h * g.k_w * g.in_c;
  if (conv_internal::UseShortRowsFilterGrad(g)) {
    std::string error;
    if (!conv_internal::Conv2DBackpropFilterShortRowsAvx512Vnni(g, x, dy, dw, parallel_for, &error)) {
      return Status::Error(error);
    }
    return Status::OK();
  }
  std::vector<int32_t> transposed(g.out_c * taps);
  KERAS_INT_RETURN_IF_ERROR(Gemm(g.out_c, taps, depth, StridedMatrix{dy, 1, g.out_c},
                                 PatchRows<int8_t>{g, x}, transposed.data(), parallel_for));
  for (int64_t o = 0; o < g.out_c; ++o) {
    for (int64_t t = 0; t < taps; ++t) dw[t * g.out_c + o] = transposed[o * taps + t];
  }
  return Status::OK();
}

// The DFP16 datapath: the same readers over int16 mantissas, the int16 GEMM
// (gemm16.h) and int64 results; no direct short-row paths. An operand that
// fits int8 (a padded patch reads zeros, which do too) is one byte plane.
namespace {
int64_t InputSize(const Conv2DGeometry& g) { return g.batch * g.in_h * g.in_w * g.in_c; }
int64_t FilterSize(const Conv2DGeometry& g) { return g.k_h * g.k_w * g.in_c * g.out_c; }
int64_t OutputSize(const Conv2DGeometry& g) { return g.batch * g.out_h * g.out_w * g.out_c; }
}  // namespace

Status Conv2D(const Conv2DGeometry& g, const int16_t* x, const int16_t* w, int64_t* out,
              const ParallelFor& parallel_for) {
  const Gemm16Widths widths{!FitsInt8(x, InputSize(g), parallel_for), !FitsInt8(w, FilterSize(g), parallel_for)};
  return Gemm16(g.batch * g.out_h * g.out_w, g.out_c, g.k_h * g.k_w * g.in_c, PatchRows<int16_t>{g, x},
                StridedMatrix16{w, g.out_c, 1}, out, parallel_for, widths);
}

Status Conv2DBackpropInput(const Conv2DGeometry& g, const int16_t* w, const int16_t* dy, int64_t* dx,
                           const ParallelFor& parallel_for) {
  const Gemm16Widths widths{!FitsInt8(dy, OutputSize(g), parallel_for), !FitsInt8(w, FilterSize(g), parallel_for)};
  return BackpropInputByPhase(g, w, dy, dx, parallel_for, [&](int64_t M, int64_t N, int64_t K, const auto& a,
                                                               const auto& b, int64_t* out) {
    return Gemm16(M, N, K, a, b, out, parallel_for, widths);
  });
}

Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int16_t* x, const int16_t* dy, int64_t* dw,
                            const ParallelFor& parallel_for) {
  const int64_t taps = g.k_h * g.k_w * g.in_c;
  std::vector<int64_t> transposed(g.out_c * taps);
  const int64_t pixels = g.batch * g.out_h * g.out_w;
  const std::vector<int16_t> dy_t = Transposed16(dy, pixels, g.out_c, parallel_for);  // rows read contiguously
  const Gemm16Widths widths{!FitsInt8(dy, OutputSize(g), parallel_for), !FitsInt8(x, InputSize(g), parallel_for)};
  KERAS_INT_RETURN_IF_ERROR(Gemm16(g.out_c, taps, pixels, StridedMatrix16{dy_t.data(), pixels, 1},
                                   PatchRows<int16_t>{g, x}, transposed.data(), parallel_for, widths));
  for (int64_t o = 0; o < g.out_c; ++o) {
    for (int64_t t = 0; t < taps; ++t) dw[t * g.out_c + o] = transposed[o * taps + t];
  }
  return Status::OK();
}

}  // namespace keras_int

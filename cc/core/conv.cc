#include "cc/core/conv.h"

#include <cstring>
#include <string>
#include <vector>

#include "cc/core/gemm.h"
#include "cc/core/gemm16.h"

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

// (i / (b * c), i / c % b, i % c): a row index split into its three
// coordinates, with 32-bit divisions where they suffice (several times
// faster than 64-bit ones, and the readers run them once per row).
inline void SplitIndex(int64_t i, int64_t b, int64_t c, int64_t* first, int64_t* second, int64_t* third) {
  if (i <= UINT32_MAX && b * c <= UINT32_MAX) {
    const uint32_t i32 = static_cast<uint32_t>(i), c32 = static_cast<uint32_t>(c);
    const uint32_t rest = i32 / c32;
    *third = i32 - rest * c32;
    *second = rest % static_cast<uint32_t>(b);
    *first = rest / static_cast<uint32_t>(b);
  } else {
    *third = i % c;
    *second = (i / c) % b;
    *first = i / (b * c);
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
  void ReadRow(int64_t pixel, int64_t k0, int64_t count, T* out) const {
    int64_t n, oh, ow;
    SplitIndex(pixel, g.out_h, g.out_w, &n, &oh, &ow);
    const int64_t iw0 = ow * g.stride_w - g.pad_left;  // the input column of tap kw = 0
    const int64_t ih0 = oh * g.stride_h - g.pad_top;
    int64_t c = 0, kh = 0, kw = 0;  // k0 = 0 (depths up to a packed block) needs no division
    if (k0 > 0) SplitIndex(k0, g.k_w, g.in_c, &kh, &kw, &c);
    while (count > 0) {
      const int64_t ih = ih0 + kh * g.dilation_h;
      const int64_t iw = iw0 + kw * g.dilation_w;
      int64_t taps = 1;  // taps of this filter row the run covers
      int64_t run;
      if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) {
        // Taps [kw, end) lie inside the image; without dilation they are adjacent.
        if (g.dilation_w == 1) taps = std::min(g.k_w, g.in_w - iw0) - kw;
        run = std::min(taps * g.in_c - c, count);
        std::memcpy(out, x + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c, run * sizeof(T));
      } else {
        run = std::min(g.in_c - c, count);
        std::memset(out, 0, run * sizeof(T));
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

// A[(n, h, w), (kh, kw, o)] = dy at the output pixel that tap (kh, kw) of
// input pixel (h, w) feeds, or 0 where no output pixel does (strides, borders).
template <typename T>
struct ScatterRows {
  const Conv2DGeometry& g;
  const T* dy;
  void ReadRow(int64_t pixel, int64_t k0, int64_t count, T* out) const {
    int64_t n, h, w;
    SplitIndex(pixel, g.in_h, g.in_w, &n, &h, &w);
    // k0 = 0 (depths up to a packed block) needs no division.
    int64_t o = 0, kh = 0, kw = 0;
    if (k0 > 0) SplitIndex(k0, g.k_w, g.out_c, &kh, &kw, &o);
    const bool unit_strides = g.stride_h == 1 && g.stride_w == 1;  // no divisions per tap
    while (count > 0) {
      const int64_t th = h + g.pad_top - kh * g.dilation_h;
      const int64_t tw = w + g.pad_left - kw * g.dilation_w;
      const int64_t run = std::min(count, g.out_c - o);
      bool inside;
      int64_t oh = th, ow = tw;
      if (unit_strides) {
        inside = th >= 0 && tw >= 0 && th < g.out_h && tw < g.out_w;
      } else {
        oh = th / g.stride_h, ow = tw / g.stride_w;
        inside = th >= 0 && tw >= 0 && th % g.stride_h == 0 && tw % g.stride_w == 0 && oh < g.out_h &&
                 ow < g.out_w;
      }
      if (inside) {
        std::memcpy(out, dy + ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o, run * sizeof(T));
      } else {
        std::memset(out, 0, run * sizeof(T));
      }
      out += run;
      count -= run;
      o = 0;
      if (++kw == g.k_w) kw = 0, ++kh;
    }
  }
};

// B[(kh, kw, o), c] = w[kh, kw, c, o]: the filter with in/out channels swapped.
template <typename T>
struct FilterTransposedRows {
  const Conv2DGeometry& g;
  const T* w;
  void ReadRow(int64_t k, int64_t c0, int64_t count, T* out) const {
    const int64_t tap = k / g.out_c, o = k % g.out_c;
    const T* p = w + (tap * g.in_c + c0) * g.out_c + o;
    for (int64_t t = 0; t < count; ++t) out[t] = p[t * g.out_c];
  }
};

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
  const int64_t depth = g.k_h * g.k_w * g.out_c;
  return Gemm(g.batch * g.in_h * g.in_w, g.in_c, depth, ScatterRows<int8_t>{g, dy},
              FilterTransposedRows<int8_t>{g, w}, dx, parallel_for);
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
  return Gemm16(g.batch * g.in_h * g.in_w, g.in_c, g.k_h * g.k_w * g.out_c, ScatterRows<int16_t>{g, dy},
                FilterTransposedRows<int16_t>{g, w}, dx, parallel_for, widths);
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

// Per-element pooling arithmetic of the CUDA kernels (pool.cu.cc): one
// output element (forward) or one input element (backward, gathered from the
// windows that contain it). Host-callable too, so that tests/gpu can run the
// kernels' index arithmetic on a machine without a GPU.
#ifndef KERAS_INT_CC_GPU_POOL_ELEMENTS_H_
#define KERAS_INT_CC_GPU_POOL_ELEMENTS_H_

#include <cstdint>

#include "cc/core/pool.h"
#include "cc/core/carrier_element.h"
#include "cc/core/host_device.h"

namespace keras_int {
namespace gpu {

struct Window {
  int64_t h0, w0, h_begin, h_end, w_begin, w_end;  // in-bounds taps [begin, end)
};

KI_HOST_DEVICE Window WindowOf(const PoolGeometry& g, int64_t oh, int64_t ow) {
  Window win;
  win.h0 = oh * g.stride_h - g.pad_top;
  win.w0 = ow * g.stride_w - g.pad_left;
  win.h_begin = win.h0 > 0 ? win.h0 : 0;
  win.w_begin = win.w0 > 0 ? win.w0 : 0;
  win.h_end = win.h0 + g.k_h < g.in_h ? win.h0 + g.k_h : g.in_h;
  win.w_end = win.w0 + g.k_w < g.in_w ? win.w0 + g.k_w : g.in_w;
  return win;
}

KI_HOST_DEVICE int32_t MultiplierOf(const Window& win) {
  return AvgPoolMultiplier((win.h_end - win.h_begin) * (win.w_end - win.w_begin));
}

// The output pixels whose windows contain input row h: [first, last).
KI_HOST_DEVICE void OutputsCovering(int64_t h, int64_t pad, int64_t k, int64_t stride, int64_t out,
                                    int64_t* first, int64_t* last) {
  const int64_t lo = h + pad - k + 1;  // oh * stride >= lo
  *first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  const int64_t hi = (h + pad) / stride + 1;  // oh * stride <= h + pad
  *last = hi < out ? hi : out;
}

// Output element i (NHWC) and its window.
struct OutputElement {
  int64_t b, c;
  Window win;
};

KI_HOST_DEVICE OutputElement OutputElementOf(const PoolGeometry& g, int64_t i) {
  OutputElement e;
  e.c = i % g.channels;
  const int64_t ow = (i / g.channels) % g.out_w;
  const int64_t oh = (i / (g.channels * g.out_w)) % g.out_h;
  e.b = i / (g.channels * g.out_w * g.out_h);
  e.win = WindowOf(g, oh, ow);
  return e;
}

// Input element i (NHWC) and the output pixels whose windows contain it.
struct InputElement {
  int64_t b, h, w, c;
  int64_t oh_first, oh_last, ow_first, ow_last;
};

KI_HOST_DEVICE InputElement InputElementOf(const PoolGeometry& g, int64_t i) {
  InputElement e;
  e.c = i % g.channels;
  e.w = (i / g.channels) % g.in_w;
  e.h = (i / (g.channels * g.in_w)) % g.in_h;
  e.b = i / (g.channels * g.in_w * g.in_h);
  OutputsCovering(e.h, g.pad_top, g.k_h, g.stride_h, g.out_h, &e.oh_first, &e.oh_last);
  OutputsCovering(e.w, g.pad_left, g.k_w, g.stride_w, g.out_w, &e.ow_first, &e.ow_last);
  return e;
}

KI_HOST_DEVICE int8_t MaxPoolElement(const PoolGeometry& g, const int8_t* x, int64_t i) {
  const OutputElement e = OutputElementOf(g, i);
  int8_t best = INT8_MIN;  // padding never wins
  for (int64_t h = e.win.h_begin; h < e.win.h_end; ++h)
    for (int64_t w = e.win.w_begin; w < e.win.w_end; ++w) {
      const int8_t v = x[((e.b * g.in_h + h) * g.in_w + w) * g.channels + e.c];
      best = v > best ? v : best;
    }
  return best;
}

// Input element i gets dy of every window whose first maximum (row-major
// window order, the CPU's tie rule) it is.
KI_HOST_DEVICE int32_t MaxPoolGradElement(const PoolGeometry& g, const int8_t* x, const int8_t* dy, int64_t i) {
  const InputElement e = InputElementOf(g, i);
  int32_t sum = 0;
  for (int64_t oh = e.oh_first; oh < e.oh_last; ++oh) {
    for (int64_t ow = e.ow_first; ow < e.ow_last; ++ow) {
      const Window win = WindowOf(g, oh, ow);
      int64_t arg_h = -1, arg_w = -1;
      int8_t best = INT8_MIN;
      for (int64_t th = win.h_begin; th < win.h_end; ++th)
        for (int64_t tw = win.w_begin; tw < win.w_end; ++tw) {
          const int8_t v = x[((e.b * g.in_h + th) * g.in_w + tw) * g.channels + e.c];
          if (arg_h < 0 || v > best) best = v, arg_h = th, arg_w = tw;
        }
      if (arg_h == e.h && arg_w == e.w) sum += dy[((e.b * g.out_h + oh) * g.out_w + ow) * g.channels + e.c];
    }
  }
  return sum;
}

// T, Acc: int8_t, int32_t, or int16_t, int64_t (DFP16).
template <typename T, typename Acc>
KI_HOST_DEVICE Acc AvgPoolElement(const PoolGeometry& g, const T* x, int64_t i) {
  const OutputElement e = OutputElementOf(g, i);
  Acc sum = 0;
  for (int64_t h = e.win.h_begin; h < e.win.h_end; ++h)
    for (int64_t w = e.win.w_begin; w < e.win.w_end; ++w) sum += x[((e.b * g.in_h + h) * g.in_w + w) * g.channels + e.c];
  return sum * MultiplierOf(e.win);
}

template <typename T, typename Acc>
KI_HOST_DEVICE Acc AvgPoolGradElement(const PoolGeometry& g, const T* dy, int64_t i) {
  const InputElement e = InputElementOf(g, i);
  Acc sum = 0;
  for (int64_t oh = e.oh_first; oh < e.oh_last; ++oh)
    for (int64_t ow = e.ow_first; ow < e.ow_last; ++ow)
      sum += Acc{dy[((e.b * g.out_h + oh) * g.out_w + ow) * g.channels + e.c]} * MultiplierOf(WindowOf(g, oh, ow));
  return sum;
}

// Carrier max pooling (windows do not overlap): output element i's pattern
// (the first maximum by CarrierOrderKey, -0.0 as +0.0) and, in *which, the
// index of its tap among the window's in-bounds taps in row-major order.
KI_HOST_DEVICE int32_t MaxPoolCarrierElement(const PoolGeometry& g, const int32_t* x, int64_t i,
                                             uint8_t* which) {
  const OutputElement e = OutputElementOf(g, i);
  int32_t best_key = INT32_MIN, best = 0;
  int tap = 0;
  for (int64_t h = e.win.h_begin; h < e.win.h_end; ++h)
    for (int64_t w = e.win.w_begin; w < e.win.w_end; ++w, ++tap) {
      const int32_t bits = x[((e.b * g.in_h + h) * g.in_w + w) * g.channels + e.c];
      const int32_t key = CarrierOrderKey(bits);
      if (key > best_key) best_key = key, best = bits, *which = static_cast<uint8_t>(tap);
    }
  return CanonicalZero(best);
}

// dx of input element i: dy of its window if it is the recorded tap, else +0.0.
KI_HOST_DEVICE int32_t MaxPoolCarrierGradElement(const PoolGeometry& g, const int32_t* dy, const uint8_t* which,
                                                 int64_t i) {
  const InputElement e = InputElementOf(g, i);
  if (e.oh_first >= e.oh_last || e.ow_first >= e.ow_last) return 0;  // in no window
  const int64_t o = ((e.b * g.out_h + e.oh_first) * g.out_w + e.ow_first) * g.channels + e.c;
  const Window win = WindowOf(g, e.oh_first, e.ow_first);
  const int64_t tap = (e.h - win.h_begin) * (win.w_end - win.w_begin) + (e.w - win.w_begin);
  return which[o] == tap ? CanonicalZero(dy[o]) : 0;
}

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_POOL_ELEMENTS_H_

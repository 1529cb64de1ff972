// Pooling on the GPU, one thread per output element (forward) or per input
// element (backward). The backward passes gather instead of scattering, so
// they need no atomics and each sum is a plain integer sum (exact, so equal
// to the CPU's in any order).
#include "cc/gpu/gpu.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

struct Window {
  int64_t h0, w0, h_begin, h_end, w_begin, w_end;  // in-bounds taps [begin, end)
};

__device__ Window WindowOf(const PoolGeometry& g, int64_t oh, int64_t ow) {
  Window win;
  win.h0 = oh * g.stride_h - g.pad_top;
  win.w0 = ow * g.stride_w - g.pad_left;
  win.h_begin = win.h0 > 0 ? win.h0 : 0;
  win.w_begin = win.w0 > 0 ? win.w0 : 0;
  win.h_end = win.h0 + g.k_h < g.in_h ? win.h0 + g.k_h : g.in_h;
  win.w_end = win.w0 + g.k_w < g.in_w ? win.w0 + g.k_w : g.in_w;
  return win;
}

__device__ int32_t MultiplierOf(const Window& win) {
  return AvgPoolMultiplier((win.h_end - win.h_begin) * (win.w_end - win.w_begin));
}

// The output pixels whose windows contain input row h: [first, last).
__device__ void OutputsCovering(int64_t h, int64_t pad, int64_t k, int64_t stride, int64_t out,
                                int64_t* first, int64_t* last) {
  const int64_t lo = h + pad - k + 1;  // oh * stride >= lo
  *first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  const int64_t hi = (h + pad) / stride + 1;  // oh * stride <= h + pad
  *last = hi < out ? hi : out;
}

__global__ void MaxPoolKernel(PoolGeometry g, const int8_t* x, int8_t* y, int64_t n) {
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % g.channels, ow = (i / g.channels) % g.out_w;
    const int64_t oh = (i / (g.channels * g.out_w)) % g.out_h, b = i / (g.channels * g.out_w * g.out_h);
    const Window win = WindowOf(g, oh, ow);
    int8_t best = INT8_MIN;  // padding never wins
    for (int64_t h = win.h_begin; h < win.h_end; ++h)
      for (int64_t w = win.w_begin; w < win.w_end; ++w) {
        const int8_t v = x[((b * g.in_h + h) * g.in_w + w) * g.channels + c];
        best = v > best ? v : best;
      }
    y[i] = best;
  }
}

// Input element i gets dy of every window whose first maximum (row-major
// window order, the CPU's tie rule) it is.
__global__ void MaxPoolGradKernel(PoolGeometry g, const int8_t* x, const int8_t* dy, int32_t* dx,
                                  int64_t n) {
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % g.channels, w = (i / g.channels) % g.in_w;
    const int64_t h = (i / (g.channels * g.in_w)) % g.in_h, b = i / (g.channels * g.in_w * g.in_h);
    int64_t oh_first, oh_last, ow_first, ow_last;
    OutputsCovering(h, g.pad_top, g.k_h, g.stride_h, g.out_h, &oh_first, &oh_last);
    OutputsCovering(w, g.pad_left, g.k_w, g.stride_w, g.out_w, &ow_first, &ow_last);
    int32_t sum = 0;
    for (int64_t oh = oh_first; oh < oh_last; ++oh) {
      for (int64_t ow = ow_first; ow < ow_last; ++ow) {
        const Window win = WindowOf(g, oh, ow);
        int64_t arg_h = -1, arg_w = -1;
        int8_t best = INT8_MIN;
        for (int64_t th = win.h_begin; th < win.h_end; ++th)
          for (int64_t tw = win.w_begin; tw < win.w_end; ++tw) {
            const int8_t v = x[((b * g.in_h + th) * g.in_w + tw) * g.channels + c];
            if (arg_h < 0 || v > best) best = v, arg_h = th, arg_w = tw;
          }
        if (arg_h == h && arg_w == w) sum += dy[((b * g.out_h + oh) * g.out_w + ow) * g.channels + c];
      }
    }
    dx[i] = sum;
  }
}

__global__ void AvgPoolKernel(PoolGeometry g, const int8_t* x, int32_t* y, int64_t n) {
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % g.channels, ow = (i / g.channels) % g.out_w;
    const int64_t oh = (i / (g.channels * g.out_w)) % g.out_h, b = i / (g.channels * g.out_w * g.out_h);
    const Window win = WindowOf(g, oh, ow);
    int32_t sum = 0;
    for (int64_t h = win.h_begin; h < win.h_end; ++h)
      for (int64_t w = win.w_begin; w < win.w_end; ++w) sum += x[((b * g.in_h + h) * g.in_w + w) * g.channels + c];
    y[i] = sum * MultiplierOf(win);
  }
}

__global__ void AvgPoolGradKernel(PoolGeometry g, const int8_t* dy, int32_t* dx, int64_t n) {
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % g.channels, w = (i / g.channels) % g.in_w;
    const int64_t h = (i / (g.channels * g.in_w)) % g.in_h, b = i / (g.channels * g.in_w * g.in_h);
    int64_t oh_first, oh_last, ow_first, ow_last;
    OutputsCovering(h, g.pad_top, g.k_h, g.stride_h, g.out_h, &oh_first, &oh_last);
    OutputsCovering(w, g.pad_left, g.k_w, g.stride_w, g.out_w, &ow_first, &ow_last);
    int32_t sum = 0;
    for (int64_t oh = oh_first; oh < oh_last; ++oh)
      for (int64_t ow = ow_first; ow < ow_last; ++ow)
        sum += dy[((b * g.out_h + oh) * g.out_w + ow) * g.channels + c] * MultiplierOf(WindowOf(g, oh, ow));
    dx[i] = sum;
  }
}

}  // namespace

Status MaxPool(const Context& ctx, const PoolGeometry& g, const int8_t* x, int8_t* y) {
  const int64_t n = g.batch * g.out_h * g.out_w * g.channels;
  if (n == 0) return Status::OK();
  MaxPoolKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, x, y, n);
  return LaunchStatus("max_pool");
}

Status MaxPoolGrad(const Context& ctx, const PoolGeometry& g, const int8_t* x, const int8_t* dy,
                   int32_t* dx) {
  const int64_t n = g.batch * g.in_h * g.in_w * g.channels;
  if (n == 0) return Status::OK();
  MaxPoolGradKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, x, dy, dx, n);
  return LaunchStatus("max_pool_grad");
}

Status AvgPool(const Context& ctx, const PoolGeometry& g, const int8_t* x, int32_t* y) {
  const int64_t n = g.batch * g.out_h * g.out_w * g.channels;
  if (n == 0) return Status::OK();
  AvgPoolKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, x, y, n);
  return LaunchStatus("avg_pool");
}

Status AvgPoolGrad(const Context& ctx, const PoolGeometry& g, const int8_t* dy, int32_t* dx) {
  const int64_t n = g.batch * g.in_h * g.in_w * g.channels;
  if (n == 0) return Status::OK();
  AvgPoolGradKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, dy, dx, n);
  return LaunchStatus("avg_pool_grad");
}

}  // namespace gpu
}  // namespace keras_int

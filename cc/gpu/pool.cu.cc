// Pooling on the GPU, one thread per output element (forward) or per input
// element (backward; pool_elements.h). The backward passes gather instead of
// scattering, so they need no atomics and each sum is a plain integer sum
// (exact, so equal to the CPU's in any order).
#include "cc/gpu/pool.h"
#include "cc/gpu/launch.cuh"
#include "cc/gpu/pool_elements.h"

namespace keras_int {
namespace gpu {

namespace {

__global__ void MaxPoolKernel(PoolGeometry g, const int8_t* x, int8_t* y, int64_t n) {
  KI_GRID_STRIDE(i, n) { y[i] = MaxPoolElement(g, x, i); }
}

__global__ void MaxPoolGradKernel(PoolGeometry g, const int8_t* x, const int8_t* dy, int32_t* dx,
                                  int64_t n) {
  KI_GRID_STRIDE(i, n) { dx[i] = MaxPoolGradElement(g, x, dy, i); }
}

template <typename T, typename Acc>
__global__ void AvgPoolKernel(PoolGeometry g, const T* x, Acc* y, int64_t n) {
  KI_GRID_STRIDE(i, n) { y[i] = AvgPoolElement<T, Acc>(g, x, i); }
}

template <typename T, typename Acc>
__global__ void AvgPoolGradKernel(PoolGeometry g, const T* dy, Acc* dx, int64_t n) {
  KI_GRID_STRIDE(i, n) { dx[i] = AvgPoolGradElement<T, Acc>(g, dy, i); }
}

__global__ void MaxPoolCarrierKernel(PoolGeometry g, const int32_t* x, int32_t* y, uint8_t* which, int64_t n) {
  KI_GRID_STRIDE(i, n) { y[i] = MaxPoolCarrierElement(g, x, i, &which[i]); }
}

__global__ void MaxPoolCarrierGradKernel(PoolGeometry g, const int32_t* dy, const uint8_t* which, int32_t* dx,
                                         int64_t n) {
  KI_GRID_STRIDE(i, n) { dx[i] = MaxPoolCarrierGradElement(g, dy, which, i); }
}

__global__ void NonFiniteKernel(const int32_t* x, int64_t n, uint32_t* special) {
  uint32_t bad = 0;
  KI_GRID_STRIDE(i, n) { bad |= static_cast<uint32_t>((x[i] & 0x7F800000) == 0x7F800000); }
  AtomicOrWarp(special, bad);
}

}  // namespace

Status MaxPoolCarrier(const Context& ctx, const PoolGeometry& g, const float* x, float* y, uint8_t* which) {
  KERAS_INT_RETURN_IF_ERROR(CheckMaxPoolCarrier(g));
  const int64_t n_in = g.batch * g.in_h * g.in_w * g.channels;
  const int64_t n = g.batch * g.out_h * g.out_w * g.channels;
  if (n_in == 0) return Status::OK();
  uint32_t* special;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &special));
  NonFiniteKernel<<<BlocksFor(n_in), kThreads, 0, StreamOf(ctx)>>>(reinterpret_cast<const int32_t*>(x), n_in,
                                                                   special);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("max_pool_carrier"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, special, &host));
  if (host) return Status::Error("max_pool_carrier: input contains NaN or Inf");
  if (n == 0) return Status::OK();
  MaxPoolCarrierKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(
      g, reinterpret_cast<const int32_t*>(x), reinterpret_cast<int32_t*>(y), which, n);
  return LaunchStatus("max_pool_carrier");
}

Status MaxPoolCarrierGrad(const Context& ctx, const PoolGeometry& g, const float* dy, const uint8_t* which,
                          float* dx) {
  const int64_t n = g.batch * g.in_h * g.in_w * g.channels;
  if (n == 0) return Status::OK();
  MaxPoolCarrierGradKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(
      g, reinterpret_cast<const int32_t*>(dy), which, reinterpret_cast<int32_t*>(dx), n);
  return LaunchStatus("max_pool_carrier_grad");
}

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

template <typename T, typename Acc>
Status AvgPool(const Context& ctx, const PoolGeometry& g, const T* x, Acc* y) {
  const int64_t n = g.batch * g.out_h * g.out_w * g.channels;
  if (n == 0) return Status::OK();
  AvgPoolKernel<T, Acc><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, x, y, n);
  return LaunchStatus("avg_pool");
}

template <typename T, typename Acc>
Status AvgPoolGrad(const Context& ctx, const PoolGeometry& g, const T* dy, Acc* dx) {
  const int64_t n = g.batch * g.in_h * g.in_w * g.channels;
  if (n == 0) return Status::OK();
  AvgPoolGradKernel<T, Acc><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, dy, dx, n);
  return LaunchStatus("avg_pool_grad");
}

template Status AvgPool<int8_t, int32_t>(const Context&, const PoolGeometry&, const int8_t*, int32_t*);
template Status AvgPool<int16_t, int64_t>(const Context&, const PoolGeometry&, const int16_t*, int64_t*);
template Status AvgPoolGrad<int8_t, int32_t>(const Context&, const PoolGeometry&, const int8_t*, int32_t*);
template Status AvgPoolGrad<int16_t, int64_t>(const Context&, const PoolGeometry&, const int16_t*, int64_t*);

}  // namespace gpu
}  // namespace keras_int

// Pooling on the GPU, one thread per output element (forward) or per input
// element (backward; pool_elements.h). The backward passes gather instead of
// scattering, so they need no atomics and each sum is a plain integer sum
// (exact, so equal to the CPU's in any order).
#include "cc/gpu/gpu.h"
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

__global__ void AvgPoolKernel(PoolGeometry g, const int8_t* x, int32_t* y, int64_t n) {
  KI_GRID_STRIDE(i, n) { y[i] = AvgPoolElement(g, x, i); }
}

__global__ void AvgPoolGradKernel(PoolGeometry g, const int8_t* dy, int32_t* dx, int64_t n) {
  KI_GRID_STRIDE(i, n) { dx[i] = AvgPoolGradElement(g, dy, i); }
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

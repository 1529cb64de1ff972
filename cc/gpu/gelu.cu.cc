// Integer GELU on the GPU: each block builds the 256-entry table of the
// mantissas' values in shared memory (gelu_element.h), then looks its
// elements up.
#include "cc/core/gelu_element.h"
#include "cc/gpu/gelu.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

__global__ void GeluKernel(const int8_t* q, int64_t n, int exponent, int32_t* acc) {
  __shared__ int32_t table[256];
  for (int j = threadIdx.x; j < 256; j += blockDim.x) table[j] = GeluValue(j - 128, exponent);
  __syncthreads();
  KI_GRID_STRIDE(i, n) { acc[i] = table[q[i] + 128]; }
}

__global__ void GeluGradKernel(const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent, int32_t* acc) {
  __shared__ int32_t table[256];
  for (int j = threadIdx.x; j < 256; j += blockDim.x) table[j] = GeluDerivative(j - 128, x_exponent);
  __syncthreads();
  KI_GRID_STRIDE(i, n) { acc[i] = int32_t{err[i]} * table[x_q[i] + 128]; }
}

}  // namespace

Status GeluAccumulate(const Context& ctx, const int8_t* q, int64_t n, int exponent, int32_t* acc) {
  if (n == 0) return Status::OK();
  GeluKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(q, n, exponent, acc);
  return LaunchStatus("gelu");
}

Status GeluGradAccumulate(const Context& ctx, const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent,
                          int32_t* acc) {
  if (n == 0) return Status::OK();
  GeluGradKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(err, x_q, n, x_exponent, acc);
  return LaunchStatus("gelu_grad");
}

}  // namespace gpu
}  // namespace keras_int

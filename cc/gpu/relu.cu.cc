// ReLU on float32 carriers on the GPU (relu.h).
#include "cc/gpu/launch.cuh"
#include "cc/gpu/relu.h"

namespace keras_int {
namespace gpu {

namespace {

constexpr int32_t kExponentBits = 0x7F800000;

// As the CPU kernel: a carrier's bit pattern read as an int32 is > 0 exactly
// when the value is positive. Each warp handles whole 32-element groups, so
// one ballot is one mask word (bit k = element 32 * word + k).
__global__ void ReluKernel(const int32_t* in, int64_t n, int32_t* out, uint32_t* mask, uint32_t* special) {
  static_assert(kThreads % 32 == 0, "warps cover whole mask words");
  uint32_t bad = 0;
  const int lane = threadIdx.x % 32;
  const int64_t words = (n + 31) / 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; w < words; w += warps) {
    const int64_t i = 32 * w + lane;
    int32_t b = 0;
    if (i < n) {
      b = in[i];
      bad |= static_cast<uint32_t>((b & kExponentBits) == kExponentBits);
      out[i] = b & -static_cast<int32_t>(b > 0);
    }
    const uint32_t bits = __ballot_sync(0xFFFFFFFFu, b > 0);
    if (lane == 0) mask[w] = bits;
  }
  AtomicOrWarp(special, bad);
}

__global__ void ReluGradKernel(const int32_t* in, const uint32_t* mask, int64_t n, int32_t* out) {
  KI_GRID_STRIDE(i, n) { out[i] = in[i] & -static_cast<int32_t>((mask[i / 32] >> (i % 32)) & 1u); }
}

}  // namespace

Status Relu(const Context& ctx, const float* x, int64_t n, float* y, uint32_t* mask) {
  if (n == 0) return Status::OK();
  uint32_t* special;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &special));
  ReluKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(reinterpret_cast<const int32_t*>(x), n,
                                                           reinterpret_cast<int32_t*>(y), mask, special);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("relu"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, special, &host));
  if (host) return Status::Error("relu: input contains NaN or Inf");
  return Status::OK();
}

Status ReluGrad(const Context& ctx, const float* dy, const uint32_t* mask, int64_t n, float* dx) {
  if (n == 0) return Status::OK();
  ReluGradKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(reinterpret_cast<const int32_t*>(dy),
                                                               mask, n, reinterpret_cast<int32_t*>(dx));
  return LaunchStatus("relu_grad");
}

}  // namespace gpu
}  // namespace keras_int

// Internal helpers of the CUDA kernels: launch shapes, error conversion,
// reductions into the scratch words and reading a word back.
#ifndef KERAS_INT_CC_GPU_LAUNCH_CUH_
#define KERAS_INT_CC_GPU_LAUNCH_CUH_

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

constexpr int kThreads = 256;

inline cudaStream_t StreamOf(const Context& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

// Blocks for a grid-stride loop over n elements.
inline unsigned int BlocksFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

#define KI_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// A failed CUDA runtime call is an Internal error (not the inputs' fault).
inline Status CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::OK();
  return Status::Internal(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(error));
}

// The error of the last launch, if any.
inline Status LaunchStatus(const char* what) { return CudaStatus(cudaGetLastError(), what); }

#define KI_CUDA_RETURN_IF_ERROR(expr, what) KERAS_INT_RETURN_IF_ERROR(::keras_int::gpu::CudaStatus((expr), (what)))

// The scratch as `count` words of type W, zeroed on the stream.
template <typename W>
Status ZeroScratch(const Context& ctx, int count, W** words) {
  static_assert(sizeof(W) * 4 <= kScratchBytes, "scratch too small");
  *words = static_cast<W*>(ctx.scratch);
  return CudaStatus(cudaMemsetAsync(ctx.scratch, 0, sizeof(W) * count, StreamOf(ctx)), "memset");
}

// Copies `count` words from the device to the host and waits for the stream.
template <typename W>
Status ReadBack(const Context& ctx, const W* device, W* host, int count = 1) {
  KI_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(host, device, sizeof(W) * count, cudaMemcpyDeviceToHost, StreamOf(ctx)),
      "copy to host");
  return CudaStatus(cudaStreamSynchronize(StreamOf(ctx)), "stream synchronize");
}

// Warp-level OR then one atomic per warp.
__device__ __forceinline__ void AtomicOrWarp(uint32_t* target, uint32_t v) {
  v = __reduce_or_sync(0xFFFFFFFFu, v);
  if ((threadIdx.x & 31) == 0 && v != 0) atomicOr(target, v);
}

__device__ __forceinline__ void AtomicMaxWarp(uint32_t* target, uint32_t v) {
  v = __reduce_max_sync(0xFFFFFFFFu, v);
  if ((threadIdx.x & 31) == 0 && v != 0) atomicMax(target, v);
}

__device__ __forceinline__ void AtomicOr64(uint64_t* target, uint64_t v) {
  if (v != 0) atomicOr(reinterpret_cast<unsigned long long*>(target), static_cast<unsigned long long>(v));
}

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_LAUNCH_CUH_

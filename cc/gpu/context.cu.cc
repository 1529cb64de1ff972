// The stream's device and copies on the stream (context.h).
#include "cc/gpu/context.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

Status UseStreamDevice(const Context& ctx) {
  if (ctx.stream == nullptr) return Status::OK();
  int device = 0;
  KI_CUDA_RETURN_IF_ERROR(cudaStreamGetDevice(StreamOf(ctx), &device), "stream device");
  return CudaStatus(cudaSetDevice(device), "set device");
}

Status Copy(const Context& ctx, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::OK();
  return CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, StreamOf(ctx)), "copy");
}

}  // namespace gpu
}  // namespace keras_int

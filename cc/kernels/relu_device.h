// ReLU on float32 carriers (cc/core/relu.h, cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_RELU_DEVICE_H_
#define KERAS_INT_CC_KERNELS_RELU_DEVICE_H_

#include <cstdint>

#include "cc/core/relu.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/relu.h"
#endif

namespace keras_int {

inline Status Relu(CpuContext& device, const float* x, int64_t n, float* y, uint32_t* mask) {
  return Relu(x, n, y, mask, device.parallel_for());
}
inline Status ReluGrad(CpuContext& device, const float* dy, const uint32_t* mask, int64_t n, float* dx) {
  ReluGrad(dy, mask, n, dx, device.parallel_for());
  return Status::OK();
}

#if KERAS_INT_CUDA
inline Status Relu(GpuContext& device, const float* x, int64_t n, float* y, uint32_t* mask) {
  return gpu::Relu(device.gpu(), x, n, y, mask);
}
inline Status ReluGrad(GpuContext& device, const float* dy, const uint32_t* mask, int64_t n, float* dx) {
  return gpu::ReluGrad(device.gpu(), dy, mask, n, dx);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_RELU_DEVICE_H_

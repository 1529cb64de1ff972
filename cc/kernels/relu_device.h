// ReLU on float32 carriers (cc/core/relu.h, cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_RELU_DEVICE_H_
#define KERAS_INT_CC_KERNELS_RELU_DEVICE_H_

#include <cstdint>

#include "cc/core/dfp.h"
#include "cc/core/relu.h"
#include "cc/kernels/device_context.h"
#include "cc/kernels/dfp_device.h"
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
// The layer ops' epilogue with activation="relu": requantize and ReLU in one pass.
template <typename Acc>
Status RequantizeReluToCarrier(CpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask, int bits) {
  return RequantizeReluToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, mask,
                                 device.parallel_for(), bits);
}

#if KERAS_INT_CUDA
inline Status Relu(GpuContext& device, const float* x, int64_t n, float* y, uint32_t* mask) {
  return gpu::Relu(device.gpu(), x, n, y, mask);
}
inline Status ReluGrad(GpuContext& device, const float* dy, const uint32_t* mask, int64_t n, float* dx) {
  return gpu::ReluGrad(device.gpu(), dy, mask, n, dx);
}
// On the GPU the two steps are still two kernels (same result as the CPU's
// single pass; fusing them into the requantize kernel is left to do).
template <typename Acc>
Status RequantizeReluToCarrier(GpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask, int bits) {
  KERAS_INT_RETURN_IF_ERROR(RequantizeToCarrier(device, acc, n, acc_exponent, rounding, seed, out, out_exponent, bits));
  return gpu::Relu(device.gpu(), out, n, out, mask);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_RELU_DEVICE_H_

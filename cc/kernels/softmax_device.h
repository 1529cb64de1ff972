// Integer softmax (cc/core/softmax.h; cc/gpu/softmax.h) on either device.
#ifndef KERAS_INT_CC_KERNELS_SOFTMAX_DEVICE_H_
#define KERAS_INT_CC_KERNELS_SOFTMAX_DEVICE_H_

#include <cstdint>

#include "cc/core/softmax.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/softmax.h"
#endif

namespace keras_int {

inline Status SoftmaxProbabilities(CpuContext& device, const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n,
                                   int exponent, const SoftmaxScale& scale, int32_t* probabilities) {
  return SoftmaxProbabilities(q, mask, rows, n, exponent, scale, probabilities, device.parallel_for());
}
inline Status SoftmaxGrad(CpuContext& device, const int8_t* err, int err_exponent, const int8_t* y, int y_exponent,
                          int64_t rows, int64_t n, const SoftmaxScale& scale, float* dx, int* dx_exponent) {
  return SoftmaxGrad(err, err_exponent, y, y_exponent, rows, n, scale, dx, dx_exponent, device.parallel_for());
}

#if KERAS_INT_CUDA
inline Status SoftmaxProbabilities(GpuContext& device, const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n,
                                   int exponent, const SoftmaxScale& scale, int32_t* probabilities) {
  return gpu::SoftmaxProbabilities(device.gpu(), q, mask, rows, n, exponent, scale, probabilities);
}
inline Status SoftmaxGrad(GpuContext& device, const int8_t* err, int err_exponent, const int8_t* y, int y_exponent,
                          int64_t rows, int64_t n, const SoftmaxScale& scale, float* dx, int* dx_exponent) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::SoftmaxGradWorkspaceBytes(rows), &workspace));
  return gpu::SoftmaxGrad(device.gpu(), err, err_exponent, y, y_exponent, rows, n, scale, dx, dx_exponent, workspace);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_SOFTMAX_DEVICE_H_

// Integer GELU (cc/core/gelu.h; cc/gpu/gelu.h) on either device.
#ifndef KERAS_INT_CC_KERNELS_GELU_DEVICE_H_
#define KERAS_INT_CC_KERNELS_GELU_DEVICE_H_

#include <cstdint>

#include "cc/core/gelu.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/gelu.h"
#endif

namespace keras_int {

inline Status GeluAccumulate(CpuContext& device, const int8_t* q, int64_t n, int exponent, int32_t* acc) {
  GeluAccumulate(q, n, exponent, acc, device.parallel_for());
  return Status::OK();
}
inline Status GeluGradAccumulate(CpuContext& device, const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent,
                                 int32_t* acc) {
  GeluGradAccumulate(err, x_q, n, x_exponent, acc, device.parallel_for());
  return Status::OK();
}

#if KERAS_INT_CUDA
inline Status GeluAccumulate(GpuContext& device, const int8_t* q, int64_t n, int exponent, int32_t* acc) {
  return gpu::GeluAccumulate(device.gpu(), q, n, exponent, acc);
}
inline Status GeluGradAccumulate(GpuContext& device, const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent,
                                 int32_t* acc) {
  return gpu::GeluGradAccumulate(device.gpu(), err, x_q, n, x_exponent, acc);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_GELU_DEVICE_H_

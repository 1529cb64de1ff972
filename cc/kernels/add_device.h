// Residual add and bias (cc/core/add.h, cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_ADD_DEVICE_H_
#define KERAS_INT_CC_KERNELS_ADD_DEVICE_H_

#include <cstdint>

#include "cc/core/add.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/add.h"
#endif

namespace keras_int {

inline Status AlignedAdd(CpuContext&, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                         int32_t* acc, int* acc_exponent) {
  AlignedAdd(a, ea, b, eb, n, acc, acc_exponent);
  return Status::OK();
}
inline Status AlignedAdd(CpuContext&, const int16_t* a, int ea, const int16_t* b, int eb, int64_t n,
                         int64_t* acc, int* acc_exponent) {
  AlignedAdd(a, ea, b, eb, n, acc, acc_exponent);
  return Status::OK();
}
inline Status AddBias(CpuContext&, int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias,
                      int shift) {
  return AddBias(acc, rows, channels, bias, shift);
}
inline Status AddBias(CpuContext&, int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  return AddBias(acc, rows, channels, bias, shift);
}

#if KERAS_INT_CUDA
inline Status AlignedAdd(GpuContext& device, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                         int32_t* acc, int* acc_exponent) {
  return gpu::AlignedAdd(device.gpu(), a, ea, b, eb, n, acc, acc_exponent);
}
inline Status AddBias(GpuContext& device, int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias,
                      int shift) {
  return gpu::AddBias(device.gpu(), acc, rows, channels, bias, shift);
}
inline Status AlignedAdd(GpuContext& device, const int16_t* a, int ea, const int16_t* b, int eb, int64_t n,
                         int64_t* acc, int* acc_exponent) {
  return gpu::AlignedAdd(device.gpu(), a, ea, b, eb, n, acc, acc_exponent);
}
inline Status AddBias(GpuContext& device, int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias,
                      int shift) {
  return gpu::AddBias(device.gpu(), acc, rows, channels, bias, shift);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_ADD_DEVICE_H_

// Integer and carrier pooling (cc/core/pool.h, cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_POOL_DEVICE_H_
#define KERAS_INT_CC_KERNELS_POOL_DEVICE_H_

#include <cstdint>

#include "cc/core/pool.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/pool.h"
#endif

namespace keras_int {

inline Status MaxPool(CpuContext& device, const PoolGeometry& g, const int8_t* x, int8_t* y) {
  MaxPool(g, x, y, device.parallel_for());
  return Status::OK();
}
inline Status MaxPoolGrad(CpuContext& device, const PoolGeometry& g, const int8_t* x, const int8_t* dy,
                          int32_t* dx) {
  MaxPoolGrad(g, x, dy, dx, device.parallel_for());
  return Status::OK();
}
inline Status MaxPoolCarrier(CpuContext& device, const PoolGeometry& g, const float* x, float* y,
                             uint8_t* which) {
  return MaxPoolCarrier(g, x, y, which, device.parallel_for());
}
inline Status MaxPoolCarrierGrad(CpuContext& device, const PoolGeometry& g, const float* dy,
                                 const uint8_t* which, float* dx) {
  MaxPoolCarrierGrad(g, dy, which, dx, device.parallel_for());
  return Status::OK();
}
template <typename T, typename Acc>
Status AvgPool(CpuContext& device, const PoolGeometry& g, const T* x, Acc* y) {
  AvgPool(g, x, y, device.parallel_for());
  return Status::OK();
}
template <typename T, typename Acc>
Status AvgPoolGrad(CpuContext& device, const PoolGeometry& g, const T* dy, Acc* dx) {
  AvgPoolGrad(g, dy, dx, device.parallel_for());
  return Status::OK();
}

#if KERAS_INT_CUDA
inline Status MaxPool(GpuContext& device, const PoolGeometry& g, const int8_t* x, int8_t* y) {
  return gpu::MaxPool(device.gpu(), g, x, y);
}
inline Status MaxPoolGrad(GpuContext& device, const PoolGeometry& g, const int8_t* x, const int8_t* dy,
                          int32_t* dx) {
  return gpu::MaxPoolGrad(device.gpu(), g, x, dy, dx);
}
inline Status MaxPoolCarrier(GpuContext& device, const PoolGeometry& g, const float* x, float* y,
                             uint8_t* which) {
  return gpu::MaxPoolCarrier(device.gpu(), g, x, y, which);
}
inline Status MaxPoolCarrierGrad(GpuContext& device, const PoolGeometry& g, const float* dy,
                                 const uint8_t* which, float* dx) {
  return gpu::MaxPoolCarrierGrad(device.gpu(), g, dy, which, dx);
}
template <typename T, typename Acc>
Status AvgPool(GpuContext& device, const PoolGeometry& g, const T* x, Acc* y) {
  return gpu::AvgPool(device.gpu(), g, x, y);
}
template <typename T, typename Acc>
Status AvgPoolGrad(GpuContext& device, const PoolGeometry& g, const T* dy, Acc* dx) {
  return gpu::AvgPoolGrad(device.gpu(), g, dy, dx);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_POOL_DEVICE_H_

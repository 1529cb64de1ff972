// Exact int8 matrix products and the convolutions built on them
// (cc/core/gemm.h, conv.h; cc/gpu) on either device. The GPU forms take a
// workspace for depths split into exact parts (0 bytes for most shapes).
#ifndef KERAS_INT_CC_KERNELS_GEMM_DEVICE_H_
#define KERAS_INT_CC_KERNELS_GEMM_DEVICE_H_

#include <cstdint>

#include "cc/core/conv.h"
#include "cc/core/gemm.h"
#include "cc/core/gemm16.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/gemm.h"
#include "cc/gpu/gemm16.h"
#endif

namespace keras_int {

inline Status MatMul(CpuContext& device, const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K,
                     bool transpose_x, bool transpose_w, int32_t* out) {
  return MatMul(x, w, M, N, K, transpose_x, transpose_w, out, device.parallel_for());
}
inline Status BatchMatMul(CpuContext& device, const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N,
                          int64_t K, bool transpose_x, bool transpose_w, int32_t* out) {
  return BatchMatMul(x, w, batch, M, N, K, transpose_x, transpose_w, out, device.parallel_for());
}
inline Status Conv2D(CpuContext& device, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
                     int32_t* out) {
  return Conv2D(g, x, w, out, device.parallel_for());
}
inline Status Conv2DBackpropInput(CpuContext& device, const Conv2DGeometry& g, const int8_t* w,
                                  const int8_t* dy, int32_t* dx) {
  return Conv2DBackpropInput(g, w, dy, dx, device.parallel_for());
}
inline Status Conv2DBackpropFilter(CpuContext& device, const Conv2DGeometry& g, const int8_t* x,
                                   const int8_t* dy, int32_t* dw) {
  return Conv2DBackpropFilter(g, x, dy, dw, device.parallel_for());
}

// The DFP16 products.
inline Status MatMul(CpuContext& device, const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K,
                     bool transpose_x, bool transpose_w, int64_t* out) {
  return MatMul(x, w, M, N, K, transpose_x, transpose_w, out, device.parallel_for());
}
inline Status Conv2D(CpuContext& device, const Conv2DGeometry& g, const int16_t* x, const int16_t* w,
                     int64_t* out) {
  return Conv2D(g, x, w, out, device.parallel_for());
}
inline Status Conv2DBackpropInput(CpuContext& device, const Conv2DGeometry& g, const int16_t* w,
                                  const int16_t* dy, int64_t* dx) {
  return Conv2DBackpropInput(g, w, dy, dx, device.parallel_for());
}
inline Status Conv2DBackpropFilter(CpuContext& device, const Conv2DGeometry& g, const int16_t* x,
                                   const int16_t* dy, int64_t* dw) {
  return Conv2DBackpropFilter(g, x, dy, dw, device.parallel_for());
}

#if KERAS_INT_CUDA
inline Status MatMul(GpuContext& device, const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K,
                     bool transpose_x, bool transpose_w, int32_t* out) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::MatMulWorkspaceBytes(M, N, K), &workspace));
  return gpu::MatMul(device.gpu(), x, w, M, N, K, transpose_x, transpose_w, out, workspace);
}
inline Status BatchMatMul(GpuContext& device, const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N,
                          int64_t K, bool transpose_x, bool transpose_w, int32_t* out) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::MatMulWorkspaceBytes(M, N, K), &workspace));
  return gpu::BatchMatMul(device.gpu(), x, w, batch, M, N, K, transpose_x, transpose_w, out, workspace);
}
inline Status Conv2D(GpuContext& device, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
                     int32_t* out) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2DWorkspaceBytes(g), &workspace));
  return gpu::Conv2D(device.gpu(), g, x, w, out, workspace);
}
inline Status Conv2DBackpropInput(GpuContext& device, const Conv2DGeometry& g, const int8_t* w,
                                  const int8_t* dy, int32_t* dx) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2DBackpropInputWorkspaceBytes(g), &workspace));
  return gpu::Conv2DBackpropInput(device.gpu(), g, w, dy, dx, workspace);
}
inline Status Conv2DBackpropFilter(GpuContext& device, const Conv2DGeometry& g, const int8_t* x,
                                   const int8_t* dy, int32_t* dw) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2DBackpropFilterWorkspaceBytes(g), &workspace));
  return gpu::Conv2DBackpropFilter(device.gpu(), g, x, dy, dw, workspace);
}
inline Status MatMul(GpuContext& device, const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K,
                     bool transpose_x, bool transpose_w, int64_t* out) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::MatMul16WorkspaceBytes(M, N, K), &workspace));
  return gpu::MatMul(device.gpu(), x, w, M, N, K, transpose_x, transpose_w, out, workspace);
}
inline Status Conv2D(GpuContext& device, const Conv2DGeometry& g, const int16_t* x, const int16_t* w,
                     int64_t* out) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2D16WorkspaceBytes(g), &workspace));
  return gpu::Conv2D(device.gpu(), g, x, w, out, workspace);
}
inline Status Conv2DBackpropInput(GpuContext& device, const Conv2DGeometry& g, const int16_t* w,
                                  const int16_t* dy, int64_t* dx) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2DBackpropInput16WorkspaceBytes(g), &workspace));
  return gpu::Conv2DBackpropInput(device.gpu(), g, w, dy, dx, workspace);
}
inline Status Conv2DBackpropFilter(GpuContext& device, const Conv2DGeometry& g, const int16_t* x,
                                   const int16_t* dy, int64_t* dw) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::Conv2DBackpropFilter16WorkspaceBytes(g), &workspace));
  return gpu::Conv2DBackpropFilter(device.gpu(), g, x, dy, dw, workspace);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_GEMM_DEVICE_H_

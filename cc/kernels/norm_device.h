// Batch and layer normalization (cc/core/norm.h, cc/core/layer_norm.h;
// cc/gpu/norm.h) on either device. The moving-average update works on
// [channels] vectors in host memory on both.
#ifndef KERAS_INT_CC_KERNELS_NORM_DEVICE_H_
#define KERAS_INT_CC_KERNELS_NORM_DEVICE_H_

#include <cstdint>

#include "cc/core/layer_norm.h"
#include "cc/core/norm.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/norm.h"
#endif

namespace keras_int {

inline Status BatchNormTraining(CpuContext& device, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                                const NormParams& params, Rounding rounding, RoundingSeed seed, float* y,
                                int* y_exponent, int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean,
                                int* mean_exponent, int32_t* variance, int* variance_exponent) {
  return BatchNormTraining(q, rows, channels, x_exponent, params, rounding, seed, y, y_exponent, x_sum, inv_sqrt,
                           inv_shift, mean, mean_exponent, variance, variance_exponent, device.parallel_for());
}
inline Status BatchNormInference(CpuContext& device, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                                 const NormParams& params, const int32_t* moving_mean, int moving_mean_exponent,
                                 const int32_t* moving_variance, int moving_variance_exponent, Rounding rounding,
                                 RoundingSeed seed, float* y, int* y_exponent, int64_t* count, int64_t* inv_sqrt,
                                 int32_t* inv_shift) {
  return BatchNormInference(q, rows, channels, x_exponent, params, moving_mean, moving_mean_exponent, moving_variance,
                            moving_variance_exponent, rounding, seed, y, y_exponent, count, inv_sqrt, inv_shift,
                            device.parallel_for());
}
inline Status BatchNormFrozenGrad(CpuContext& device, const int8_t* err, int err_exponent, int64_t rows,
                                  int64_t channels, int x_exponent, const int64_t* count, const int64_t* inv_sqrt,
                                  const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, float* dx,
                                  int* dx_exponent) {
  return BatchNormFrozenGrad(err, err_exponent, rows, channels, x_exponent, count, inv_sqrt, inv_shift, gamma,
                             gamma_exponent, dx, dx_exponent, device.parallel_for());
}
inline Status BatchNormGrad(CpuContext& device, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                            int64_t channels, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                            const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent, int32_t* dgamma,
                            int32_t* dbeta) {
  return BatchNormGrad(err, err_exponent, q, rows, channels, x_exponent, x_sum, inv_sqrt, inv_shift, gamma,
                       gamma_exponent, dx, dx_exponent, dgamma, dbeta, device.parallel_for());
}
inline Status LayerNorm(CpuContext& device, const int8_t* q, int64_t rows, int64_t features, int x_exponent,
                        const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                        int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift) {
  return LayerNorm(q, rows, features, x_exponent, params, rounding, seed, y, y_exponent, x_sum, inv_sqrt, inv_shift,
                   device.parallel_for());
}
inline Status LayerNormGrad(CpuContext& device, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                            int64_t features, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                            const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, int dx_bits,
                            float* dx, int* dx_exponent, int32_t* dgamma, int32_t* dbeta) {
  return LayerNormGrad(err, err_exponent, q, rows, features, x_exponent, x_sum, inv_sqrt, inv_shift, gamma,
                       gamma_exponent, dx_bits, dx, dx_exponent, dgamma, dbeta, device.parallel_for());
}

#if KERAS_INT_CUDA
inline Status BatchNormTraining(GpuContext& device, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                                const NormParams& params, Rounding rounding, RoundingSeed seed, float* y,
                                int* y_exponent, int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean,
                                int* mean_exponent, int32_t* variance, int* variance_exponent) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::BatchNormWorkspaceBytes(channels), &workspace));
  return gpu::BatchNormTraining(device.gpu(), q, rows, channels, x_exponent, params, rounding, seed, y, y_exponent,
                                x_sum, inv_sqrt, inv_shift, mean, mean_exponent, variance, variance_exponent, workspace);
}
inline Status BatchNormInference(GpuContext& device, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                                 const NormParams& params, const int32_t* moving_mean, int moving_mean_exponent,
                                 const int32_t* moving_variance, int moving_variance_exponent, Rounding rounding,
                                 RoundingSeed seed, float* y, int* y_exponent, int64_t* count, int64_t* inv_sqrt,
                                 int32_t* inv_shift) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::BatchNormWorkspaceBytes(channels), &workspace));
  return gpu::BatchNormInference(device.gpu(), q, rows, channels, x_exponent, params, moving_mean,
                                 moving_mean_exponent, moving_variance, moving_variance_exponent, rounding, seed, y,
                                 y_exponent, count, inv_sqrt, inv_shift, workspace);
}
inline Status BatchNormFrozenGrad(GpuContext& device, const int8_t* err, int err_exponent, int64_t rows,
                                  int64_t channels, int x_exponent, const int64_t* count, const int64_t* inv_sqrt,
                                  const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, float* dx,
                                  int* dx_exponent) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::BatchNormWorkspaceBytes(channels), &workspace));
  return gpu::BatchNormFrozenGrad(device.gpu(), err, err_exponent, rows, channels, x_exponent, count, inv_sqrt,
                                  inv_shift, gamma, gamma_exponent, dx, dx_exponent, workspace);
}
inline Status BatchNormGrad(GpuContext& device, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                            int64_t channels, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                            const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent, int32_t* dgamma,
                            int32_t* dbeta) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::BatchNormWorkspaceBytes(channels), &workspace));
  return gpu::BatchNormGrad(device.gpu(), err, err_exponent, q, rows, channels, x_exponent, x_sum, inv_sqrt, inv_shift,
                            gamma, gamma_exponent, dx, dx_exponent, dgamma, dbeta, workspace);
}
inline Status LayerNorm(GpuContext& device, const int8_t* q, int64_t rows, int64_t features, int x_exponent,
                        const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                        int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::LayerNormWorkspaceBytes(rows, features), &workspace));
  return gpu::LayerNorm(device.gpu(), q, rows, features, x_exponent, params, rounding, seed, y, y_exponent, x_sum,
                        inv_sqrt, inv_shift, workspace);
}
inline Status LayerNormGrad(GpuContext& device, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                            int64_t features, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                            const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, int dx_bits,
                            float* dx, int* dx_exponent, int32_t* dgamma, int32_t* dbeta) {
  void* workspace;
  KERAS_INT_RETURN_IF_ERROR(device.Workspace(gpu::LayerNormWorkspaceBytes(rows, features), &workspace));
  return gpu::LayerNormGrad(device.gpu(), err, err_exponent, q, rows, features, x_exponent, x_sum, inv_sqrt,
                            inv_shift, gamma, gamma_exponent, dx_bits, dx, dx_exponent, dgamma, dbeta, workspace);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_NORM_DEVICE_H_

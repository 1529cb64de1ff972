// Batch and layer normalization on the GPU: the twins of cc/core/norm.h
// (training forward, inference forward, the backward pass and the frozen
// one; the moving-average update works on host memory and has no twin) and
// of cc/core/layer_norm.h.
//
// Every pointer is device memory, NormParams.gamma and .beta included;
// exponents are host ints. `workspace` is device memory of
// BatchNormWorkspaceBytes(channels) bytes (nullptr when that is 0), for the
// per-channel sums and constants; one call at a time may use it. Each call
// copies one small word block back to the host (the result exponent) and
// waits for the stream.
#ifndef KERAS_INT_CC_GPU_NORM_H_
#define KERAS_INT_CC_GPU_NORM_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/layer_norm.h"
#include "cc/core/norm.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

// Device workspace of the three functions below for `channels` channels.
size_t BatchNormWorkspaceBytes(int64_t channels);

Status BatchNormTraining(const Context& ctx, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                         const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                         int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean, int* mean_exponent,
                         int32_t* variance, int* variance_exponent, void* workspace);

// moving_variance < 0 is an error (checked on the device).
Status BatchNormInference(const Context& ctx, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                          const NormParams& params, const int32_t* moving_mean, int moving_mean_exponent,
                          const int32_t* moving_variance, int moving_variance_exponent, Rounding rounding,
                          RoundingSeed seed, float* y, int* y_exponent, int64_t* count, int64_t* inv_sqrt,
                          int32_t* inv_shift, void* workspace);

// The forward's x_sum, inv_sqrt and inv_shift are checked on the device
// (CheckNormSavedChannels' error).
Status BatchNormGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                     int64_t channels, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                     const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent,
                     int32_t* dgamma, int32_t* dbeta, void* workspace);

// count, inv_sqrt and inv_shift are checked on the device
// (CheckNormFrozenChannels' error).
Status BatchNormFrozenGrad(const Context& ctx, const int8_t* err, int err_exponent, int64_t rows, int64_t channels,
                           int x_exponent, const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent, void* workspace);

// Layer normalization (cc/core/layer_norm.h); the workspace holds the
// per-feature gradient sums and the per-row constants.
size_t LayerNormWorkspaceBytes(int64_t rows, int64_t features);

Status LayerNorm(const Context& ctx, const int8_t* q, int64_t rows, int64_t features, int x_exponent,
                 const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                 int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, void* workspace);

// The forward's per-row x_sum, inv_sqrt and inv_shift are checked on the
// device (LayerNormSavedRowError).
Status LayerNormGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                     int64_t features, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                     const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, int dx_bits, float* dx,
                     int* dx_exponent, int32_t* dgamma, int32_t* dbeta, void* workspace);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_NORM_H_

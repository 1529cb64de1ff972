// Batch normalization on int8 mantissas (docs/algorithms.md section 8):
// training forward with the batch's statistics, inference with moving
// statistics, the backward pass, and the moving-average update. Data are
// [rows, channels] row-major (NHWC flattened); everything is integer.
#ifndef KERAS_INT_CC_CORE_NORM_H_
#define KERAS_INT_CC_CORE_NORM_H_

#include <cstdint>

#include "cc/core/limits.h"
#include "cc/core/parallel.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"

namespace keras_int {

// The learned parameters and epsilon (m_eps * 2**e_eps).
struct NormParams {
  const int8_t* gamma;  // [channels], at gamma_exponent
  const int32_t* beta;  // [channels], at gamma_exponent
  int gamma_exponent;
  int64_t eps_mantissa;
  int eps_exponent;
};

// Checks the rows per channel (kNormMaxRows), epsilon's mantissa range and
// the statistic exponent range.
Status CheckNormRows(int64_t rows);
Status CheckNormEpsilon(int64_t mantissa, int exponent);
Status CheckNormStatisticExponent(const char* name, int64_t exponent);

// Training forward. q: [rows, channels] int8 at x_exponent. Outputs: the
// carrier y and its exponent; x_sum, inv_sqrt and inv_shift ([channels]:
// S1, r and k), which with q let the backward pass recompute xhat; the
// batch mean and variance ([channels] int32 mantissas and exponents).
Status BatchNormTraining(const int8_t* q, int64_t rows, int64_t channels, int x_exponent, const NormParams& params,
                         Rounding rounding, RoundingSeed seed, float* y, int* y_exponent, int64_t* x_sum,
                         int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean, int* mean_exponent,
                         int32_t* variance, int* variance_exponent, const ParallelFor& parallel_for = SerialFor);

// Inference forward with the moving statistics. Also outputs, per channel,
// the virtual count 2**j, r and k for the frozen backward pass.
Status BatchNormInference(const int8_t* q, int64_t rows, int64_t channels, int x_exponent, const NormParams& params,
                          const int32_t* moving_mean, int moving_mean_exponent, const int32_t* moving_variance,
                          int moving_variance_exponent, Rounding rounding, RoundingSeed seed, float* y,
                          int* y_exponent, int64_t* count, int64_t* inv_sqrt, int32_t* inv_shift,
                          const ParallelFor& parallel_for = SerialFor);

// Checks the forward's per-channel x_sum, inv_sqrt and inv_shift that the
// backward pass is given (NormSavedChannelValid); the error names the first
// channel that fails.
Status NormSavedChannelError(int64_t rows, int64_t channel, int64_t x_sum, int64_t inv_sqrt, int32_t inv_shift);
Status CheckNormSavedChannels(int64_t rows, int64_t channels, const int64_t* x_sum, const int64_t* inv_sqrt,
                              const int32_t* inv_shift);

// Backward: err (the quantized error, int8 at err_exponent), the forward's
// q, x_exponent, x_sum, inv_sqrt, inv_shift and gamma -> the error carrier
// dx (nearest) and its exponent, dgamma and dbeta (int32).
Status BatchNormGrad(const int8_t* err, int err_exponent, const int8_t* q, int64_t rows, int64_t channels,
                     int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                     const int8_t* gamma,
                     int gamma_exponent, float* dx, int* dx_exponent, int32_t* dgamma, int32_t* dbeta,
                     const ParallelFor& parallel_for = SerialFor);

// The backward pass of inference mode (a frozen layer): the statistics are
// constants, so dx = requantize_channels(err * gamma * rho) with rho the
// 16-bit rounding of count * r: BatchNormGrad's value with A = B = 0.
Status CheckNormFrozenChannels(int64_t channels, const int64_t* count, const int64_t* inv_sqrt,
                               const int32_t* inv_shift);
Status NormFrozenChannelError(int64_t channel, int64_t count, int64_t inv_sqrt, int32_t inv_shift);
Status BatchNormFrozenGrad(const int8_t* err, int err_exponent, int64_t rows, int64_t channels, int x_exponent,
                           const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent,
                           const ParallelFor& parallel_for = SerialFor);

// moving' = momentum * moving + (1 - momentum) * batch, momentum =
// p / 2**kNormMomentumBits, normalised to kNormStatisticBits.
Status NormMovingAverage(const int32_t* moving, int moving_exponent, const int32_t* batch, int batch_exponent,
                         int64_t channels, int64_t momentum, int32_t* out, int* out_exponent);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_NORM_H_

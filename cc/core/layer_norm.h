// Layer normalization on int8 mantissas (docs/algorithms.md section 9):
// each row of [rows, features] (the last axis) normalised over its
// features, with per-feature gamma and beta. It shares the statistics, the
// integer inverse square root, xhat and requantize_channels with batch
// normalization (norm_element.h); only the axis of the statistics differs.
#ifndef KERAS_INT_CC_CORE_LAYER_NORM_H_
#define KERAS_INT_CC_CORE_LAYER_NORM_H_

#include <cstdint>

#include "cc/core/norm.h"
#include "cc/core/parallel.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"

namespace keras_int {

// Checks the features per row and the rows (both at most kNormMaxRows: the
// row statistics are exact in int64 and the per-feature gradient sums fit
// int32).
Status CheckLayerNormShape(int64_t rows, int64_t features);

// Forward (the same in training and inference). q: [rows, features] int8
// at x_exponent; params.gamma, params.beta: [features]. Outputs the carrier
// y and its exponent, and per row x_sum, inv_sqrt and inv_shift (S1, r, k),
// from which the backward pass recomputes xhat.
Status LayerNorm(const int8_t* q, int64_t rows, int64_t features, int x_exponent, const NormParams& params,
                 Rounding rounding, RoundingSeed seed, float* y, int* y_exponent, int64_t* x_sum, int64_t* inv_sqrt,
                 int32_t* inv_shift, const ParallelFor& parallel_for = SerialFor);

// "dx_bits must be 8 or 16" unless it is.
Status CheckLayerNormGradBits(int dx_bits);

// The error for a row whose saved constants no forward pass produces
// (NormSavedChannelValid over `features` elements fails).
Status LayerNormSavedRowError(int64_t features, int64_t row, int64_t x_sum, int64_t inv_sqrt, int32_t inv_shift);

// Backward: err (int8 at err_exponent), the forward's q, x_exponent and per
// row x_sum, inv_sqrt, inv_shift (checked as batch norm's saved channels,
// with `features` for the rows), gamma -> the error carrier dx of dx_bits
// (8 or 16) mantissas (nearest) and its exponent, dgamma and dbeta (int32,
// [features]).
Status LayerNormGrad(const int8_t* err, int err_exponent, const int8_t* q, int64_t rows, int64_t features,
                     int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                     const int8_t* gamma, int gamma_exponent, int dx_bits, float* dx, int* dx_exponent,
                     int32_t* dgamma, int32_t* dbeta, const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_LAYER_NORM_H_

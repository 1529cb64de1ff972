// Integer softmax over the last axis (docs/algorithms.md section 10): a
// base-2 exponential with an 8-bit fraction table, an optional mask, a
// scale folded into the logits exactly (multiplier * 2**-shift), integer
// normalisation, and the integer backward pass. Data are [rows, n]
// row-major.
#ifndef KERAS_INT_CC_CORE_SOFTMAX_H_
#define KERAS_INT_CC_CORE_SOFTMAX_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"

namespace keras_int {

// The logits are multiplied by multiplier * 2**-shift (1 <= multiplier <
// 2**16, 0 <= shift <= 62): attention's 1 / sqrt(key_dim).
struct SoftmaxScale {
  int64_t multiplier = 1;
  int shift = 0;
};

Status CheckSoftmaxScale(const SoftmaxScale& scale);
// Rows of at most kSoftmaxMaxRow (2**21) entries: the int64 sums stay exact.
Status CheckSoftmaxRow(int64_t n);
// The forward's output exponent the backward pass accepts: [-22, 0].
Status CheckSoftmaxOutputExponent(int exponent);

// Forward: q [rows, n] int8 at `exponent`, mask [rows, n] (nonzero: keep;
// nullptr: keep all) -> P [rows, n] int32 at exponent -22 (a row with every
// entry masked is all zero). Requantizing P gives the probabilities.
Status SoftmaxProbabilities(const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n, int exponent,
                            const SoftmaxScale& scale, int32_t* probabilities,
                            const ParallelFor& parallel_for = SerialFor);

// Backward: err (int8 at err_exponent) and the forward's int8
// probabilities y at y_exponent -> the error carrier dx (nearest) and its
// exponent.
Status SoftmaxGrad(const int8_t* err, int err_exponent, const int8_t* y, int y_exponent, int64_t rows, int64_t n,
                   const SoftmaxScale& scale, float* dx, int* dx_exponent,
                   const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_SOFTMAX_H_

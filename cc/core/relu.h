// ReLU on float32 carriers, on their bit patterns: read as a signed integer
// a pattern is > 0 exactly when the value is positive, so the op is an
// integer test and a mask (no conversion to int8 and back). The gradient
// keeps one bit per element: bit i % 32 of word i / 32 is set when element
// i was positive (1/32 of the carrier's memory).
#ifndef KERAS_INT_CC_CORE_RELU_H_
#define KERAS_INT_CC_CORE_RELU_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// Words of the positive-bit mask of n elements.
constexpr int64_t ReluMaskWords(int64_t n) { return (n + 31) / 32; }

// y = x where x > 0, else +0.0; mask (ReluMaskWords(n) words) records
// x > 0. NaN or Inf is an error. y may be x (in place).
Status Relu(const float* x, int64_t n, float* y, uint32_t* mask, const ParallelFor& parallel_for = SerialFor);

// ReLU of n requantized carriers (finite by construction), as bit patterns
// in place, with their mask; `y` starts at a mask-word boundary (element
// 32 * k, `mask` pointing at word k). The fused epilogue of the layer ops.
void ReluCarrierBits(int32_t* y, int64_t n, uint32_t* mask);

// dx = dy where the mask bit is set, else +0.0. dx may be dy.
void ReluGrad(const float* dy, const uint32_t* mask, int64_t n, float* dx,
              const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_RELU_H_

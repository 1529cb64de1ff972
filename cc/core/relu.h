// ReLU on float32 carriers, on their bit patterns: read as a signed integer
// a pattern is > 0 exactly when the value is positive, so the op is an
// integer test and a mask (no conversion to int8 and back); the 1-byte mask
// is what the gradient keeps.
#ifndef KERAS_INT_CC_CORE_RELU_H_
#define KERAS_INT_CC_CORE_RELU_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// y = x where x > 0, else +0.0; positive = x > 0. NaN or Inf is an error.
// y may be x (in place); so may dx be dy below.
Status Relu(const float* x, int64_t n, float* y, bool* positive, const ParallelFor& parallel_for = SerialFor);

// dx = dy where positive, else +0.0.
void ReluGrad(const float* dy, const bool* positive, int64_t n, float* dx,
              const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_RELU_H_

// Integer GELU (docs/algorithms.md section 11) on int8 mantissas: the
// forward accumulator and the backward product, each from a 256-entry table
// of the per-mantissa values (gelu_element.h).
#ifndef KERAS_INT_CC_CORE_GELU_H_
#define KERAS_INT_CC_CORE_GELU_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// acc[i] = GeluValue(q[i], exponent), int32 at exponent - 17; requantizing
// it gives the output. acc may not alias q.
void GeluAccumulate(const int8_t* q, int64_t n, int exponent, int32_t* acc,
                    const ParallelFor& parallel_for = SerialFor);

// acc[i] = err[i] * GeluDerivative(x_q[i], x_exponent), int32 at
// err_exponent - 17 (|acc| < 2**25).
void GeluGradAccumulate(const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent, int32_t* acc,
                        const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GELU_H_

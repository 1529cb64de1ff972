// Integer Adam (docs/algorithms.md section 14): per-weight first and second
// moments of the per-step normalised gradient, bias-corrected, and a step
// m_hat / sqrt(v_hat) in weight units with an integer square root.
#ifndef KERAS_INT_CC_CORE_ADAM_H_
#define KERAS_INT_CC_CORE_ADAM_H_

#include <cstdint>

#include "cc/core/adam_element.h"
#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

struct AdamOptions {
  int64_t beta1 = 58982;  // round(0.9 * 2**16)
  int64_t beta2 = 65470;  // round(0.999 * 2**16)
  int step_shift = 0;     // a step of m_hat / sqrt(v_hat) = 1 moves a weight by 2**step_shift units
};

// beta1, beta2 in [0, 2**16 - 1]; step_shift in [-16, 16].
Status CheckAdamOptions(const AdamOptions& options);

// The per-call constants for step t >= 1 (the t-th update) and the
// gradient's bit length: beta**t by square-and-multiply in Q30.
Status MakeAdamStep(int gradient_bits, int64_t t, const AdamOptions& options, AdamStep* step);

// Updates weights w (int8, int16 weights or masters, int32 biases), m and v
// (int32) in place with the gradient g (int32, or int64 from the DFP16
// products: G) of step t.
template <typename T, typename G>
Status IntegerAdamUpdate(T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options, const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ADAM_H_

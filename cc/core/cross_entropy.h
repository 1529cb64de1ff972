// NITI's integer softmax cross-entropy gradient (spec section 4). The
// per-row arithmetic lives in cross_entropy_element.h (CrossEntropyGradRow),
// shared with the CUDA kernel.
#ifndef KERAS_INT_CC_CORE_CROSS_ENTROPY_H_
#define KERAS_INT_CC_CORE_CROSS_ENTROPY_H_

#include <cstdint>

#include "cc/core/limits.h"
#include "cc/core/rounding.h"

namespace keras_int {

// err[b, :] ~= round((softmax(q[b, :] * 2**e) - onehot(labels[b])) * 2**(bits - 1)),
// T = int8_t or int16_t (DFP16) for the logits and the error.
// labels must already be checked to lie in [0, classes), and classes to be
// at most kCrossEntropyMaxClasses.
template <typename T>
void SoftmaxCrossEntropyGrad(const T* logits, int64_t batch, int64_t classes, int exponent, const int64_t* labels,
                             Rounding rounding, RoundingSeed seed, T* err);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_CROSS_ENTROPY_H_

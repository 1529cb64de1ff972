// NITI's integer softmax cross-entropy gradient (spec section 4).
#ifndef KERAS_INT_CC_CORE_CROSS_ENTROPY_H_
#define KERAS_INT_CC_CORE_CROSS_ENTROPY_H_

#include <cstdint>

#include "cc/core/dfp.h"

namespace keras_int {

// Exponent of the error the gradient produces: its values approximate
// softmax - onehot.
constexpr int kCrossEntropyErrorExponent = -7;
// Logit exponents below this are first rounded to it (the logits are then
// below 2**-13, where the softmax is uniform to within int8 precision).
constexpr int kCrossEntropyMinExponent = -20;

// err[b, :] ~= round((softmax(q[b, :] * 2**e) - onehot(labels[b])) * 2**7).
// labels must already be checked to lie in [0, classes).
void SoftmaxCrossEntropyGrad(const int8_t* logits, int64_t batch, int64_t classes, int exponent,
                             const int64_t* labels, Rounding rounding, RoundingSeed seed,
                             int8_t* err);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_CROSS_ENTROPY_H_

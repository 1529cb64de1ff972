#include "cc/core/cross_entropy.h"

#include "cc/core/cross_entropy_element.h"

namespace keras_int {

void SoftmaxCrossEntropyGrad(const int8_t* logits, int64_t batch, int64_t classes, int exponent,
                             const int64_t* labels, Rounding rounding, RoundingSeed seed,
                             int8_t* err) {
  for (int64_t b = 0; b < batch; ++b) {
    CrossEntropyGradRow(logits + b * classes, classes, exponent, labels[b], rounding, seed,
                        static_cast<uint64_t>(b * classes), err + b * classes);
  }
}

}  // namespace keras_int

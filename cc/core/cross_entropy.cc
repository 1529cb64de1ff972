#include "cc/core/cross_entropy.h"

#include "cc/core/cross_entropy_element.h"

namespace keras_int {

template <typename T>
void SoftmaxCrossEntropyGrad(const T* logits, int64_t batch, int64_t classes, int exponent, const int64_t* labels,
                             Rounding rounding, RoundingSeed seed, T* err) {
  for (int64_t b = 0; b < batch; ++b) {
    CrossEntropyGradRow(logits + b * classes, classes, exponent, labels[b], rounding, seed,
                        static_cast<uint64_t>(b * classes), err + b * classes);
  }
}

template void SoftmaxCrossEntropyGrad<int8_t>(const int8_t*, int64_t, int64_t, int, const int64_t*, Rounding,
                                              RoundingSeed, int8_t*);
template void SoftmaxCrossEntropyGrad<int16_t>(const int16_t*, int64_t, int64_t, int, const int64_t*, Rounding,
                                               RoundingSeed, int16_t*);

}  // namespace keras_int

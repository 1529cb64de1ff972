// The integer cross-entropy gradient, SGD and Adam on the GPU: the twins of
// cc/core/cross_entropy.h, sgd.h and adam.h.
#ifndef KERAS_INT_CC_GPU_TRAINING_H_
#define KERAS_INT_CC_GPU_TRAINING_H_

#include <cstdint>

#include "cc/core/adam.h"
#include "cc/core/rounding.h"
#include "cc/core/sgd.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

// Labels outside [0, classes) are an error (checked on the device).
// T: int8_t, or int16_t (DFP16) logits and error.
template <typename T, typename Label>
Status SoftmaxCrossEntropyGrad(const Context& ctx, const T* logits, int64_t batch, int64_t classes, int exponent,
                               const Label* labels, Rounding rounding, RoundingSeed seed, T* err);
template <typename T, typename G>
Status IntegerSgdUpdate(const Context& ctx, T* w, const G* g, int64_t n, const SgdOptions& options,
                        T* momentum_buffer);
// Copies the gradient's bit length back to the host (one word).
template <typename T, typename G>
Status IntegerAdamUpdate(const Context& ctx, T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_TRAINING_H_

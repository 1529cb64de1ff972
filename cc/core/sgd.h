// NITI's integer SGD update (spec section 6).
#ifndef KERAS_INT_CC_CORE_SGD_H_
#define KERAS_INT_CC_CORE_SGD_H_

#include <cstdint>
#include <climits>

#include "cc/core/status.h"

namespace keras_int {

struct SgdOptions {
  int mu = 5;             // update bit width: the normalised step size
  int momentum = 0;       // in sixteenths, 0..16; 0 disables the buffer
  int weight_decay = 0;   // adds weight_decay * w * 2**(b(g) - 15) to g before the shift
};

// mu in [1, 30], momentum in [0, 16], weight_decay in [0, 1024].
Status CheckSgdOptions(const SgdOptions& options);

// Weight decay on a `bits`-bit gradient of weights below `limit` stays
// within int64 (SgdDecayFits), or an error saying it would not.
Status CheckSgdDecay(int weight_decay, int64_t limit, int bits);

// The limit of a weight of type T: +-127, +-32767, +-(2**31 - 1).
template <typename T>
constexpr int64_t SgdWeightLimit() {
  return sizeof(T) == 1 ? 127 : sizeof(T) == 2 ? 32767 : INT32_MAX;
}

// Updates weights w (int8; int16 for 16-bit weights or masters; int32 biases) in place
// with the gradient g (int32, or int64 from the DFP16 products, G);
// `momentum_buffer` (same type as w, may be null when options.momentum == 0)
// is updated in place too. An all-zero gradient changes nothing.
template <typename T, typename G>
Status IntegerSgdUpdate(T* w, const G* g, int64_t n, const SgdOptions& options, T* momentum_buffer);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_SGD_H_

// One weight of the integer SGD step (spec section 6), shared by the CPU
// core (sgd.cc) and the CUDA kernel (cc/gpu/training.cu.cc).
#ifndef KERAS_INT_CC_CORE_SGD_ELEMENT_H_
#define KERAS_INT_CC_CORE_SGD_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/rounding.h"

namespace keras_int {

// The gradient of one weight with weight decay folded in: g + decay * w *
// 2**(bits - 15), where bits = b(g) of the whole gradient.
// int64 gradients (the DFP16 products) are checked by SgdDecayFits first.
KI_HOST_DEVICE int64_t SgdDecayedGradient(int64_t g, int64_t w, int weight_decay, int bits) {
  if (weight_decay == 0) return g;
  const int shift = bits - 15;
  const int64_t decay = int64_t{weight_decay} * w;
  return g + (shift >= 0 ? decay * (int64_t{1} << shift)
                         : RoundShift64(decay, -shift, Rounding::kNearest, 0));
}

// Whether g + decay * w * 2**(bits - 15) stays within int64 for every weight
// below `limit` and every gradient of `bits` bits (always for int32 gradients).
KI_HOST_DEVICE bool SgdDecayFits(int weight_decay, int64_t limit, int bits) {
  return weight_decay == 0 || BitLength64(static_cast<uint64_t>(weight_decay) * static_cast<uint64_t>(limit)) +
                                      (bits > 15 ? bits - 15 : 0) <= 61;
}

// Applies the normalised step (shift = b(step) - mu; pseudo-stochastic when
// shift >= 1) with optional momentum (in sixteenths) to one weight.
KI_HOST_DEVICE void SgdApply(int64_t step, int shift, int momentum, int64_t limit, int64_t* w,
                             int64_t* momentum_value) {
  int64_t s = shift >= 1 ? RoundShift64(step, shift, Rounding::kPseudoStochastic, 0) : step;
  if (momentum > 0) {
    const int64_t decayed = RoundShift64(*momentum_value * momentum, 4, Rounding::kTruncate, 0);
    s = Clip64(decayed + s, limit);
    *momentum_value = s;
  }
  *w = Clip64(*w - s, limit);
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_SGD_ELEMENT_H_

#include "cc/core/sgd.h"

#include <string>
#include <type_traits>

#include "cc/core/dfp.h"
#include "cc/core/host_device.h"
#include "cc/core/rounding.h"
#include "cc/core/sgd_element.h"

namespace keras_int {

Status CheckSgdOptions(const SgdOptions& options) {
  if (options.mu < 1 || options.mu > 30) {
    return Status::Error("mu (update bit width) " + std::to_string(options.mu) +
                         " is out of range [1, 30]");
  }
  if (options.momentum < 0 || options.momentum > 16) {
    return Status::Error("momentum " + std::to_string(options.momentum) +
                         " (in sixteenths) is out of range [0, 16]");
  }
  if (options.weight_decay < 0 || options.weight_decay > 1024) {
    return Status::Error("weight_decay " + std::to_string(options.weight_decay) +
                         " is out of range [0, 1024]");
  }
  return Status::OK();
}

Status CheckSgdDecay(int weight_decay, int64_t limit, int bits) {
  if (SgdDecayFits(weight_decay, limit, bits)) return Status::OK();
  return Status::Error("sgd_update: weight_decay " + std::to_string(weight_decay) + " on a " + std::to_string(bits) +
                       "-bit gradient would leave int64");
}

namespace {

// The plain update (no weight decay, no momentum), one pass: the step is the
// gradient itself, shifted pseudo-stochastically by `shift` when >= 1. Values
// and restrict pointers so that it vectorises (an int8 store could
// otherwise alias anything); the same arithmetic as SgdApply.
template <typename T>
void PlainSgdRange(T* __restrict w, const int32_t* __restrict g, int64_t n, int shift) {
  using Wide = std::conditional_t<sizeof(T) < 4, int32_t, int64_t>;  // |w - step| fits
  constexpr Wide kLimit = static_cast<Wide>(SgdWeightLimit<T>());
  for (int64_t i = 0; i < n; ++i) {
    const Wide step = shift >= 1 ? ShiftAndClipElement<Rounding::kPseudoStochastic>(g[i], shift, 0, 0xFFFFFFFFu)
                                 : g[i];
    const Wide weight = static_cast<Wide>(w[i]) - step;
    w[i] = static_cast<T>(weight > kLimit ? kLimit : weight < -kLimit ? -kLimit : weight);
  }
}
KI_VECTOR_CLONES void PlainSgd(int8_t* __restrict w, const int32_t* __restrict g, int64_t n, int shift) {
  PlainSgdRange(w, g, n, shift);
}
KI_VECTOR_CLONES void PlainSgd(int16_t* __restrict w, const int32_t* __restrict g, int64_t n, int shift) {
  PlainSgdRange(w, g, n, shift);
}
KI_VECTOR_CLONES void PlainSgd(int32_t* __restrict w, const int32_t* __restrict g, int64_t n, int shift) {
  PlainSgdRange(w, g, n, shift);
}

}  // namespace

template <typename T, typename G>
Status IntegerSgdUpdate(T* w, const G* g, int64_t n, const SgdOptions& options, T* momentum_buffer) {
  constexpr int64_t kLimit = SgdWeightLimit<T>();
  KERAS_INT_RETURN_IF_ERROR(CheckSgdOptions(options));
  if (options.momentum > 0 && momentum_buffer == nullptr && n > 0) {
    return Status::Error("momentum > 0 needs a momentum buffer");
  }
  uint64_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= Magnitude64(g[i]);
  const int bits = BitLength64(any);
  if (bits == 0) return Status::OK();
  KERAS_INT_RETURN_IF_ERROR(CheckSgdDecay(options.weight_decay, kLimit, bits));
  if constexpr (std::is_same_v<G, int32_t>) {
    if (options.weight_decay == 0 && options.momentum == 0) {
      // The decayed gradient is the gradient: its bit length is `bits`.
      PlainSgd(w, g, n, bits - options.mu);
      return Status::OK();
    }
  }

  // Two passes: the bit length of the decayed gradient sets the shift, then
  // each weight takes its step (recomputed, so no buffer is needed).
  uint64_t any64 = 0;
  for (int64_t i = 0; i < n; ++i) {
    any64 |= Magnitude64(SgdDecayedGradient(g[i], w[i], options.weight_decay, bits));
  }
  const int shift = BitLength64(any64) - options.mu;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t step = SgdDecayedGradient(g[i], w[i], options.weight_decay, bits);
    int64_t weight = w[i];
    int64_t buffer = options.momentum > 0 ? momentum_buffer[i] : 0;
    SgdApply(step, shift, options.momentum, kLimit, &weight, &buffer);
    w[i] = static_cast<T>(weight);
    if (options.momentum > 0) momentum_buffer[i] = static_cast<T>(buffer);
  }
  return Status::OK();
}

#define KI_INSTANTIATE_SGD(T, G) \
  template Status IntegerSgdUpdate<T, G>(T*, const G*, int64_t, const SgdOptions&, T*)
KI_INSTANTIATE_SGD(int8_t, int32_t);
KI_INSTANTIATE_SGD(int16_t, int32_t);
KI_INSTANTIATE_SGD(int32_t, int32_t);
KI_INSTANTIATE_SGD(int8_t, int64_t);
KI_INSTANTIATE_SGD(int16_t, int64_t);
KI_INSTANTIATE_SGD(int32_t, int64_t);
#undef KI_INSTANTIATE_SGD

}  // namespace keras_int

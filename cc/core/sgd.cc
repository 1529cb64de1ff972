#include "cc/core/sgd.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cc/core/dfp.h"

namespace keras_int {

namespace {

int BitLength64(uint64_t v) { return v == 0 ? 0 : 64 - __builtin_clzll(v); }

uint64_t Magnitude64(int64_t v) {
  return v < 0 ? static_cast<uint64_t>(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
}

}  // namespace

template <typename T>
Status IntegerSgdUpdate(T* w, const int32_t* g, int64_t n, const SgdOptions& options,
                        T* momentum_buffer) {
  constexpr int64_t kLimit = sizeof(T) == 1 ? 127 : sizeof(T) == 2 ? 32767 : INT32_MAX;
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
  if (options.momentum > 0 && momentum_buffer == nullptr && n > 0) {
    return Status::Error("momentum > 0 needs a momentum buffer");
  }
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= Magnitude(g[i]);
  const int bits = BitLength(any);
  if (bits == 0) return Status::OK();

  std::vector<int64_t> step(g, g + n);
  if (options.weight_decay > 0) {
    // Decay at 2**-15 of the gradient's scale relative to a full-scale weight.
    const int shift = bits - 15;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t decay = int64_t{options.weight_decay} * w[i];
      step[i] += shift >= 0 ? decay * (int64_t{1} << shift)
                            : RoundShift64(decay, -shift, Rounding::kNearest, 0);
    }
  }
  uint64_t any64 = 0;
  for (int64_t i = 0; i < n; ++i) any64 |= Magnitude64(step[i]);
  const int shift = BitLength64(any64) - options.mu;
  if (shift >= 1) {
    for (int64_t i = 0; i < n; ++i) {
      step[i] = RoundShift64(step[i], shift, Rounding::kPseudoStochastic, 0);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t s = step[i];
    if (options.momentum > 0) {
      const int64_t decayed = RoundShift64(int64_t{momentum_buffer[i]} * options.momentum, 4,
                                           Rounding::kTruncate, 0);
      s = std::min(std::max(decayed + s, -kLimit), kLimit);
      momentum_buffer[i] = static_cast<T>(s);
    }
    w[i] = static_cast<T>(std::min(std::max(int64_t{w[i]} - s, -kLimit), kLimit));
  }
  return Status::OK();
}

template Status IntegerSgdUpdate<int8_t>(int8_t*, const int32_t*, int64_t, const SgdOptions&,
                                         int8_t*);
template Status IntegerSgdUpdate<int16_t>(int16_t*, const int32_t*, int64_t, const SgdOptions&,
                                          int16_t*);
template Status IntegerSgdUpdate<int32_t>(int32_t*, const int32_t*, int64_t, const SgdOptions&,
                                          int32_t*);

}  // namespace keras_int

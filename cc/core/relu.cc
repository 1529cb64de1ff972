#include "cc/core/relu.h"

#include <algorithm>
#include <atomic>

#include "cc/core/host_device.h"

namespace keras_int {

namespace {

// One mask word: elements [0, count) of a 32-element group, count <= 32.
// Values and a restrict mask: a store could otherwise alias anything the
// caller's lambda captured, and nothing would vectorise. `out` may be `in`
// (the kernels forward their input buffer): element k is read before it is
// written, so iterations are independent, as ivdep tells the vectoriser.
inline uint32_t ReluWord(const int32_t* in, int count, int32_t* out, int32_t* special) {
  uint32_t bits = 0;
  int32_t bad = 0;
#pragma GCC ivdep
  for (int k = 0; k < count; ++k) {
    const int32_t b = in[k];
    bad |= static_cast<int32_t>((b & 0x7F800000) == 0x7F800000);
    bits |= static_cast<uint32_t>(b > 0) << k;
    out[k] = b & -static_cast<int32_t>(b > 0);
  }
  *special |= bad;
  return bits;
}

// Elements [0, n) from a word boundary; returns nonzero when a pattern is
// NaN or Inf.
KI_VECTOR_CLONES int32_t ReluRange(const int32_t* in, int64_t n, int32_t* out, uint32_t* __restrict mask) {
  int32_t special = 0;
  const int64_t full = n / 32;
  for (int64_t w = 0; w < full; ++w) mask[w] = ReluWord(in + 32 * w, 32, out + 32 * w, &special);
  if (n % 32) mask[full] = ReluWord(in + 32 * full, static_cast<int>(n % 32), out + 32 * full, &special);
  return special;
}

inline void ReluGradWord(const int32_t* in, uint32_t bits, int count, int32_t* out) {
#pragma GCC ivdep
  for (int k = 0; k < count; ++k) out[k] = in[k] & -static_cast<int32_t>((bits >> k) & 1u);
}

KI_VECTOR_CLONES void ReluGradRange(const int32_t* in, const uint32_t* __restrict mask, int64_t n, int32_t* out) {
  const int64_t full = n / 32;
  for (int64_t w = 0; w < full; ++w) ReluGradWord(in + 32 * w, mask[w], 32, out + 32 * w);
  if (n % 32) ReluGradWord(in + 32 * full, mask[full], static_cast<int>(n % 32), out + 32 * full);
}

// Runs fn(first element, element count, first word) over word-aligned
// shards of n elements.
template <typename Fn>
void ForWords(int64_t n, const ParallelFor& parallel_for, Fn fn) {
  parallel_for(ReluMaskWords(n), 64, [&](int64_t begin, int64_t end) {
    fn(32 * begin, std::min(n, 32 * end) - 32 * begin, begin);
  });
}

}  // namespace

Status Relu(const float* x, int64_t n, float* y, uint32_t* mask, const ParallelFor& parallel_for) {
  const int32_t* in = reinterpret_cast<const int32_t*>(x);
  int32_t* out = reinterpret_cast<int32_t*>(y);
  std::atomic<bool> bad{false};
  ForWords(n, parallel_for, [&](int64_t first, int64_t count, int64_t word) {
    if (ReluRange(in + first, count, out + first, mask + word)) bad = true;
  });
  return bad ? Status::Error("relu: input contains NaN or Inf") : Status::OK();
}

void ReluCarrierBits(int32_t* y, int64_t n, uint32_t* mask) { ReluRange(y, n, y, mask); }

void ReluGrad(const float* dy, const uint32_t* mask, int64_t n, float* dx, const ParallelFor& parallel_for) {
  const int32_t* in = reinterpret_cast<const int32_t*>(dy);
  int32_t* out = reinterpret_cast<int32_t*>(dx);
  ForWords(n, parallel_for, [&](int64_t first, int64_t count, int64_t word) {
    ReluGradRange(in + first, mask + word, count, out + first);
  });
}

}  // namespace keras_int

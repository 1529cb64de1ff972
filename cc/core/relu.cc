#include "cc/core/relu.h"

#include <atomic>

#include "cc/core/scalar.h"

namespace keras_int {

namespace {

// Values, and a restrict mask: a bool store could otherwise alias anything
// the caller's lambda captured, and nothing would vectorise. `out` may be
// `in` (the kernels forward their input buffer): element i is read before it
// is written, so iterations are independent, as ivdep tells the vectoriser.
// Returns nonzero when a pattern is NaN or Inf.
KI_VECTOR_CLONES int32_t ReluRange(const int32_t* in, int64_t n, int32_t* out, bool* __restrict positive) {
  int32_t special = 0;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = in[i];
    special |= static_cast<int32_t>((b & 0x7F800000) == 0x7F800000);
    positive[i] = b > 0;
    out[i] = b & -static_cast<int32_t>(b > 0);
  }
  return special;
}

KI_VECTOR_CLONES void ReluGradRange(const int32_t* in, const bool* __restrict positive, int64_t n, int32_t* out) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] & -static_cast<int32_t>(positive[i]);
}

}  // namespace

Status Relu(const float* x, int64_t n, float* y, bool* positive, const ParallelFor& parallel_for) {
  const int32_t* in = reinterpret_cast<const int32_t*>(x);
  int32_t* out = reinterpret_cast<int32_t*>(y);
  std::atomic<bool> bad{false};
  parallel_for(n, 2, [&](int64_t begin, int64_t end) {
    if (ReluRange(in + begin, end - begin, out + begin, positive + begin)) bad = true;
  });
  return bad ? Status::Error("relu: input contains NaN or Inf") : Status::OK();
}

void ReluGrad(const float* dy, const bool* positive, int64_t n, float* dx, const ParallelFor& parallel_for) {
  const int32_t* in = reinterpret_cast<const int32_t*>(dy);
  int32_t* out = reinterpret_cast<int32_t*>(dx);
  parallel_for(n, 2, [&](int64_t begin, int64_t end) {
    ReluGradRange(in + begin, positive + begin, end - begin, out + begin);
  });
}

}  // namespace keras_int

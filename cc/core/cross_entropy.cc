#include "cc/core/cross_entropy.h"

#include <algorithm>
#include <vector>

namespace keras_int {

namespace {

// log2(e) ~= 47274 / 2**15: multiplying by it turns e**z into 2**(z log2 e).
constexpr int64_t kLog2E = 47274;
constexpr int kLog2EShift = 15;

// Unnormalised softmax numerators p[i] of one row, all integers.
void Numerators(const int8_t* q, int64_t classes, int exponent, int64_t* p) {
  if (exponent <= -7) {
    // Small logits: second-order Taylor form of e**x scaled by 2**(1 - 2e),
    //   2**(1-2e) + q 2**(1-e) + q**2  (always positive).
    const int e = std::max(exponent, kCrossEntropyMinExponent);
    const int shift = e - exponent;
    for (int64_t i = 0; i < classes; ++i) {
      const int64_t v = RoundShift(q[i], shift, Rounding::kNearest, 0);
      p[i] = (int64_t{1} << (1 - 2 * e)) + v * (int64_t{1} << (1 - e)) + v * v;
    }
    return;
  }
  // Base-2 exponent s = q * log2(e) * 2**e as an integer (shifts on the
  // magnitude), moved so that the row maximum is 10; p = 2**s - 1.
  const int shift = exponent - kLog2EShift;
  int64_t s_max = INT64_MIN;
  for (int64_t i = 0; i < classes; ++i) {
    const int64_t v = q[i] * kLog2E;
    // A left shift beyond 32 changes nothing: differences already exceed 10.
    p[i] = shift >= 0 ? v * (int64_t{1} << std::min(shift, 32))
                      : RoundShift64(v, -shift, Rounding::kTruncate, 0);
    s_max = std::max(s_max, p[i]);
  }
  for (int64_t i = 0; i < classes; ++i) {
    const int64_t s = std::max<int64_t>(p[i] - (s_max - 10), 0);
    p[i] = (int64_t{1} << s) - 1;
  }
}

}  // namespace

void SoftmaxCrossEntropyGrad(const int8_t* logits, int64_t batch, int64_t classes, int exponent,
                             const int64_t* labels, Rounding rounding, RoundingSeed seed,
                             int8_t* err) {
  std::vector<int64_t> p(classes);
  for (int64_t b = 0; b < batch; ++b) {
    Numerators(logits + b * classes, classes, exponent, p.data());
    int64_t sum = 0;
    for (int64_t i = 0; i < classes; ++i) sum += p[i];
    // Softmax * 2**11 by integer division, then minus the one-hot row.
    int64_t total = 0;
    for (int64_t i = 0; i < classes; ++i) {
      p[i] = (p[i] << 11) / sum;
      total += p[i];
    }
    p[labels[b]] -= total;
    for (int64_t i = 0; i < classes; ++i) {
      const int64_t index = b * classes + i;
      const uint32_t random = rounding == Rounding::kStochastic
                                  ? StochasticWord(seed.key, seed.step, static_cast<uint64_t>(index))
                                  : 0;
      const int64_t v = RoundShift64(p[i], 4, rounding, random);
      err[index] = static_cast<int8_t>(std::min<int64_t>(std::max<int64_t>(v, -127), 127));
    }
  }
}

}  // namespace keras_int

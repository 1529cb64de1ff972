#include "cc/core/adam.h"

#include <algorithm>
#include <string>

#include "cc/core/dfp.h"
#include "cc/core/sgd.h"

namespace keras_int {

namespace {

// beta**t in Q30: square-and-multiply from t's lowest bit, each product
// rounded (nearest) back to Q30.
int64_t PowerQ30(int64_t beta, int64_t t) {
  const int bits = kAdamCorrectionBits;
  int64_t result = int64_t{1} << bits;
  int64_t base = beta << (bits - kAdamBetaBits);
  for (; t > 0 && result != 0; t >>= 1) {
    if (t & 1) result = RoundShift64(result * base, bits, Rounding::kNearest, 0);
    base = RoundShift64(base * base, bits, Rounding::kNearest, 0);
  }
  return result;
}

}  // namespace

Status CheckAdamOptions(const AdamOptions& options) {
  const int64_t beta_max = (int64_t{1} << kAdamBetaBits) - 1;
  if (options.beta1 < 0 || options.beta1 > beta_max || options.beta2 < 0 || options.beta2 > beta_max) {
    return Status::Error("adam_update: beta_1 " + std::to_string(options.beta1) + " and beta_2 " +
                         std::to_string(options.beta2) + " must be in [0, " + std::to_string(beta_max) +
                         "] (sixteen fraction bits, below 1)");
  }
  if (options.step_shift < -16 || options.step_shift > 16) {
    return Status::Error("adam_update: step_shift " + std::to_string(options.step_shift) +
                         " is out of range [-16, 16]");
  }
  return Status::OK();
}

Status MakeAdamStep(int gradient_bits, int64_t t, const AdamOptions& options, AdamStep* step) {
  KERAS_INT_RETURN_IF_ERROR(CheckAdamOptions(options));
  if (t < 1) return Status::Error("adam_update: step " + std::to_string(t) + " must be >= 1");
  step->gradient_shift = gradient_bits - kAdamGradientBits;
  step->correction1 = (int64_t{1} << kAdamCorrectionBits) - PowerQ30(options.beta1, t);
  step->correction2 = (int64_t{1} << kAdamCorrectionBits) - PowerQ30(options.beta2, t);
  step->step_shift = options.step_shift;
  return Status::OK();
}

template <typename T, typename G>
Status IntegerAdamUpdate(T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options, const ParallelFor& parallel_for) {
  AdamStep step;
  KERAS_INT_RETURN_IF_ERROR(MakeAdamStep(MaxBitLength(g, n), t, options, &step));
  const int64_t limit = SgdWeightLimit<T>();
  parallel_for(n, 40, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t gn = AdamNormalizedGradient(g[i], step.gradient_shift);
      const int64_t m1 = AdamMoment(m[i], gn, options.beta1);
      const int64_t v1 = AdamMoment(v[i], gn * gn, options.beta2);
      m[i] = static_cast<int32_t>(m1);
      v[i] = static_cast<int32_t>(v1);
      w[i] = static_cast<T>(Clip64(int64_t{w[i]} - AdamStepValue(m1, v1, step), limit));
    }
  });
  return Status::OK();
}

#define KI_INSTANTIATE_ADAM(T, G)                                                                       \
  template Status IntegerAdamUpdate<T, G>(T*, const G*, int32_t*, int32_t*, int64_t, int64_t, const AdamOptions&, \
                                          const ParallelFor&)
KI_INSTANTIATE_ADAM(int8_t, int32_t);
KI_INSTANTIATE_ADAM(int16_t, int32_t);
KI_INSTANTIATE_ADAM(int32_t, int32_t);
KI_INSTANTIATE_ADAM(int8_t, int64_t);
KI_INSTANTIATE_ADAM(int16_t, int64_t);
KI_INSTANTIATE_ADAM(int32_t, int64_t);
#undef KI_INSTANTIATE_ADAM

}  // namespace keras_int

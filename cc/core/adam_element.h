// One weight of the integer Adam step (docs/algorithms.md section 14),
// shared by the CPU core (adam.cc) and the CUDA kernel
// (cc/gpu/training.cu.cc).
#ifndef KERAS_INT_CC_CORE_ADAM_ELEMENT_H_
#define KERAS_INT_CC_CORE_ADAM_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/norm_element.h"
#include "cc/core/rounding.h"

namespace keras_int {

// The gradient is normalised to this many bits per step; m then stays
// within +-2**15 and v within [0, 2**30].
constexpr int kAdamGradientBits = 15;
// Fraction bits of the betas (as batch norm's momentum) and of the bias
// corrections (beta**t and 1 - beta**t).
constexpr int kAdamBetaBits = 16;
constexpr int kAdamCorrectionBits = 30;
// Fraction bits of the step before its pseudo-stochastic rounding.
constexpr int kAdamStepFractionBits = 24;

// The per-call constants: the gradient's normalising shift (left when
// negative), the bias corrections 1 - beta**t (Q30) and the step shift.
struct AdamStep {
  int gradient_shift;
  int64_t correction1;  // 2**30 - beta1**t, in (0, 2**30]
  int64_t correction2;  // 2**30 - beta2**t, in (0, 2**30]
  int step_shift;       // log2 of a full step, in weight units
};

// g normalised to kAdamGradientBits: round_shift(g, s, nearest) for s > 0,
// g * 2**-s otherwise (exact).
// (int64 g: the DFP16 products; s <= 0 only when g has at most 15 bits.)
KI_HOST_DEVICE int64_t AdamNormalizedGradient(int64_t g, int shift) {
  return shift > 0 ? RoundShift64(g, shift, Rounding::kNearest, 0) : g * (int64_t{1} << -shift);
}

// m' = round_shift(b1 * m + (2**16 - b1) * g, 16, nearest) and v' likewise
// with g**2.
KI_HOST_DEVICE int64_t AdamMoment(int64_t moment, int64_t value, int64_t beta) {
  return RoundShift64(beta * moment + ((int64_t{1} << kAdamBetaBits) - beta) * value, kAdamBetaBits,
                      Rounding::kNearest, 0);
}

// The step in weight units: u = m_hat / (isqrt(v_hat) + 1) with m_hat = m *
// 2**30 / c1, v_hat = v * 2**30 / c2 (floor divisions), then u * 2**k with
// 24 fraction bits, rounded pseudo-stochastically: sign(m) *
// round_shift(floor(|m_hat| * 2**24 / (isqrt(v_hat) + 1)), 24 - k).
KI_HOST_DEVICE int64_t AdamStepValue(int64_t m, int64_t v, const AdamStep& step) {
  if (m == 0) return 0;
  const uint64_t m_hat = (Magnitude64(m) << kAdamCorrectionBits) / static_cast<uint64_t>(step.correction1);
  const uint64_t v_hat = (static_cast<uint64_t>(v) << kAdamCorrectionBits) / static_cast<uint64_t>(step.correction2);
  const uint64_t denominator = IntegerSqrt(v_hat) + 1;
  const int64_t fraction = static_cast<int64_t>((m_hat << kAdamStepFractionBits) / denominator);
  const int64_t size = RoundShift64(fraction, kAdamStepFractionBits - step.step_shift, Rounding::kPseudoStochastic, 0);
  return m < 0 ? -size : size;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_ADAM_ELEMENT_H_

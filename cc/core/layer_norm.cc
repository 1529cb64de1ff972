#include "cc/core/layer_norm.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "cc/core/limits.h"
#include "cc/core/norm_element.h"
#include "cc/core/norm_emit.h"

namespace keras_int {

Status CheckLayerNormShape(int64_t rows, int64_t features) {
  if (features > kNormMaxRows || rows > kNormMaxRows) {
    return Status::Error("layer_norm: " + std::to_string(rows) + " rows of " + std::to_string(features) +
                         " features, more than the " + std::to_string(kNormMaxRows) +
                         " of either whose sums are exact");
  }
  return Status::OK();
}

Status CheckLayerNormGradBits(int dx_bits) {
  if (dx_bits == 8 || dx_bits == 16) return Status::OK();
  return Status::Error("layer_norm_grad: dx_bits must be 8 or 16, got " + std::to_string(dx_bits));
}

Status LayerNormSavedRowError(int64_t features, int64_t row, int64_t x_sum, int64_t inv_sqrt, int32_t inv_shift) {
  return Status::Error("layer_norm_grad: row " + std::to_string(row) + " has x_sum " + std::to_string(x_sum) +
                       ", inv_sqrt " + std::to_string(inv_sqrt) + ", inv_shift " + std::to_string(inv_shift) +
                       ", which no forward pass over " + std::to_string(features) +
                       " features produces (|x_sum| <= 128 * features, 0 <= inv_sqrt <= " +
                       std::to_string(kNormMaxInverseSqrt) + ", 0 <= inv_shift <= 30)");
}

Status LayerNorm(const int8_t* q, int64_t rows, int64_t features, int x_exponent, const NormParams& params,
                 Rounding rounding, RoundingSeed seed, float* y, int* y_exponent, int64_t* x_sum, int64_t* inv_sqrt,
                 int32_t* inv_shift, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormShape(rows, features));
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  *y_exponent = 0;
  if (features == 0) {
    std::fill(x_sum, x_sum + rows, 0);
    std::fill(inv_sqrt, inv_sqrt + rows, 0);
    std::fill(inv_shift, inv_shift + rows, 0);
    return Status::OK();
  }
  // One pass per row: the row's statistics (S1, S2 exact in int64), its
  // constants, the accumulators gamma * xhat + beta (kept for the emit) and
  // their largest magnitude for the exponent.
  std::vector<uint64_t> largest(static_cast<size_t>(rows), 0);
  std::vector<int64_t> acc(static_cast<size_t>(rows * features));
  parallel_for(rows, features * 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* row = q + r * features;
      int64_t s1 = 0, s2 = 0;
      for (int64_t c = 0; c < features; ++c) {
        const int32_t v = row[c];
        s1 += v;
        s2 += v * v;
      }
      const NormChannel ch = MakeNormChannel(features, s1, features * s2 - s1 * s1, params.eps_mantissa,
                                             params.eps_exponent, x_exponent);
      x_sum[r] = ch.sum;
      inv_sqrt[r] = ch.inv_sqrt;
      inv_shift[r] = ch.inv_shift;
      int64_t* row_acc = acc.data() + r * features;
      uint64_t m = 0;
      for (int64_t c = 0; c < features; ++c) {
        row_acc[c] = NormOutput(NormXhat(row[c], ch), params.gamma[c], params.beta[c]);
        m = std::max(m, Magnitude64(row_acc[c]));
      }
      largest[r] = m;
    }
  });
  const int acc_exponent = params.gamma_exponent - kNormFractionBits;
  const int position = norm_internal::LargestPosition(largest, [&](int64_t) { return acc_exponent; });
  return norm_internal::EmitRequantized(
      "layer_norm", rows, features, position, 8, [&](int64_t, int64_t) { return acc_exponent; }, rounding, seed,
      parallel_for, [&](int64_t r, int64_t c) { return acc[r * features + c]; }, y, y_exponent);
}

Status LayerNormGrad(const int8_t* err, int err_exponent, const int8_t* q, int64_t rows, int64_t features,
                     int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                     const int8_t* gamma, int gamma_exponent, int dx_bits, float* dx, int* dx_exponent,
                     int32_t* dgamma, int32_t* dbeta, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormShape(rows, features));
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormGradBits(dx_bits));
  *dx_exponent = 0;
  if (features == 0) return Status::OK();
  for (int64_t r = 0; r < rows; ++r) {
    if (!NormSavedChannelValid(features, x_sum[r], inv_sqrt[r], inv_shift[r])) {
      return LayerNormSavedRowError(features, r, x_sum[r], inv_sqrt[r], inv_shift[r]);
    }
  }
  // Per row: A = sum(err * gamma), B = sum(err * gamma * xhat), then the
  // row's constants (MakeNormGradChannel with gamma 1: gamma is inside the
  // sums) and the largest |value|. Per feature: dbeta = sum(err) and
  // B_c = sum(err * xhat) over the rows, per shard, added under a lock
  // (exact integer sums in any order).
  std::vector<NormGradChannel> constants(static_cast<size_t>(rows));
  std::vector<uint64_t> largest(static_cast<size_t>(rows), 0);
  std::vector<int64_t> values(static_cast<size_t>(rows * features));  // kept for the emit
  std::vector<int64_t> sum_err(static_cast<size_t>(features), 0), sum_err_xhat(static_cast<size_t>(features), 0);
  std::mutex mutex;
  parallel_for(rows, features * 40, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> part_err(static_cast<size_t>(features), 0), part_err_xhat(static_cast<size_t>(features), 0);
    std::vector<int32_t> xhat(static_cast<size_t>(features));
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* e = err + r * features;
      const NormChannel ch{features, x_sum[r], inv_sqrt[r], inv_shift[r]};
      int64_t sum_a = 0, sum_b = 0;
      for (int64_t c = 0; c < features; ++c) {
        xhat[c] = NormXhat(q[r * features + c], ch);
        const int64_t g = int64_t{e[c]} * gamma[c];
        sum_a += g;
        sum_b += g * xhat[c];  // |g * xhat| < 2**34; |B| < features * 2**34 (spec)
        part_err[c] += e[c];
        part_err_xhat[c] += int64_t{e[c]} * xhat[c];
      }
      const NormGradChannel k = MakeNormGradChannel(sum_a, sum_b, features, inv_sqrt[r], inv_shift[r], 1,
                                                    gamma_exponent, x_exponent, err_exponent);
      constants[r] = k;
      int64_t* row_values = values.data() + r * features;
      uint64_t m = 0;
      for (int64_t c = 0; c < features; ++c) {
        row_values[c] = NormGradValue(int32_t{e[c]} * gamma[c], xhat[c], k.a, k.b, k.gamma_rho);
        m = std::max(m, Magnitude64(row_values[c]));
      }
      largest[r] = m;
    }
    std::lock_guard<std::mutex> lock(mutex);
    for (int64_t c = 0; c < features; ++c) {
      sum_err[c] += part_err[c];
      sum_err_xhat[c] += part_err_xhat[c];
    }
  });
  int b_bits = 0;
  for (int64_t c = 0; c < features; ++c) b_bits = std::max(b_bits, BitLength64(Magnitude64(sum_err_xhat[c])));
  const int h = NormGammaGradientShift(b_bits);
  for (int64_t c = 0; c < features; ++c) {
    dbeta[c] = static_cast<int32_t>(sum_err[c]);  // |sum| <= 128 * kNormMaxRows = 2**30
    dgamma[c] = NormGammaGradient(sum_err_xhat[c], h);
  }
  if (rows == 0) return Status::OK();
  const int position = norm_internal::LargestPosition(largest, [&](int64_t r) { return constants[r].exponent; });
  return norm_internal::EmitRequantized(
      "layer_norm_grad", rows, features, position, dx_bits, [&](int64_t r, int64_t) { return constants[r].exponent; },
      Rounding::kNearest, RoundingSeed{}, parallel_for, [&](int64_t r, int64_t c) { return values[r * features + c]; },
      dx, dx_exponent);
}

}  // namespace keras_int

#include "cc/core/layer_norm.h"

#include <algorithm>
#include <memory>
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

namespace {

// The row loops below are compiled for AVX2 and baseline (KI_VECTOR_CLONES)
// and written to vectorise: NormXhat's |count * q - sum| <= 255 * count
// fits 32 bits (count <= kNormMaxRows = 2**23) and r < 2**32, so |d| * r
// is one 32 x 32 -> 64-bit multiply, which NormXhat's int64 operands hide
// from the vectoriser. Largest magnitudes are ORed: the OR has the bit
// length of the maximum, which is all that requantize_channels reads.

// NormXhat for a layer-norm row (the same bits under the bounds above;
// shift = 61 - k - F >= 23).
inline int32_t RowXhat(int8_t q, int32_t count, int32_t sum, uint32_t inv_sqrt, int shift, uint64_t half) {
  const int32_t d = count * q - sum;
  const uint32_t magnitude = d < 0 ? 0u - static_cast<uint32_t>(d) : static_cast<uint32_t>(d);
  uint64_t rounded = (uint64_t{magnitude} * inv_sqrt + half) >> shift;
  rounded = rounded > 0x7fffffff ? 0x7fffffff : rounded;
  const int32_t m = static_cast<int32_t>(rounded);
  return d < 0 ? -m : m;
}

// S1 = sum(q) and S2 = sum(q**2) of a row.
KI_VECTOR_CLONES void RowSums(const int8_t* __restrict q, int64_t features, int64_t* s1, int64_t* s2) {
  int64_t a = 0, b = 0;
  for (int64_t c = 0; c < features; ++c) {
    const int32_t v = q[c];
    a += v;
    b += v * v;
  }
  *s1 = a;
  *s2 = b;
}

// The forward accumulators gamma * xhat + beta of a row; returns the OR of
// their magnitudes.
KI_VECTOR_CLONES uint64_t RowOutput(const int8_t* __restrict q, int64_t features, int32_t count, int32_t sum,
                                    uint32_t inv_sqrt, int shift, const int8_t* __restrict gamma,
                                    const int32_t* __restrict beta, int64_t* __restrict acc) {
  const uint64_t half = uint64_t{1} << (shift - 1);
  uint64_t any = 0;
  for (int64_t c = 0; c < features; ++c) {
    const int64_t a = int64_t{gamma[c]} * RowXhat(q[c], count, sum, inv_sqrt, shift, half) + beta[c];
    acc[c] = a;
    any |= Magnitude64(a);
  }
  return any;
}

// The backward sums of a row: its xhat, A = sum(err * gamma) and B =
// sum(err * gamma * xhat) (|err * gamma * xhat| < 2**34), and per feature
// err and err * xhat added into the shard's sums.
KI_VECTOR_CLONES void RowGradSums(const int8_t* __restrict err, const int8_t* __restrict q,
                                  const int8_t* __restrict gamma, int64_t features, int32_t count, int32_t sum,
                                  uint32_t inv_sqrt, int shift, int32_t* __restrict xhat,
                                  int64_t* __restrict part_err, int64_t* __restrict part_err_xhat, int64_t* sum_a,
                                  int64_t* sum_b) {
  const uint64_t half = uint64_t{1} << (shift - 1);
  int64_t a = 0, b = 0;
  for (int64_t c = 0; c < features; ++c) {
    const int32_t x = RowXhat(q[c], count, sum, inv_sqrt, shift, half);
    const int32_t g = int32_t{err[c]} * gamma[c];
    xhat[c] = x;
    a += g;
    b += int64_t{g} * x;
    part_err[c] += err[c];
    part_err_xhat[c] += int64_t{err[c]} * x;
  }
  *sum_a = a;
  *sum_b = b;
}

// NormGradValue for a row whose b fits 32 bits (as the spec's bound,
// |b| < 2**23, has it): ((err * gamma) << F - a - round_shift(xhat * b, F,
// nearest)) * rho; returns the OR of the magnitudes.
KI_VECTOR_CLONES uint64_t RowGradValues(const int8_t* __restrict err, const int8_t* __restrict gamma,
                                        const int32_t* __restrict xhat, int64_t features, int64_t a, int32_t b,
                                        int64_t rho, int64_t* __restrict values) {
  uint64_t any = 0;
  for (int64_t c = 0; c < features; ++c) {
    const int64_t product = int64_t{xhat[c]} * b;
    const int64_t sign = product >> 63;  // 0 or -1: the sign by arithmetic, not a branch
    const int64_t magnitude = (product ^ sign) - sign;
    const int64_t shifted = (magnitude + (int64_t{1} << (kNormFractionBits - 1))) >> kNormFractionBits;
    const int64_t rounded = (shifted ^ sign) - sign;  // round_shift(product, F, nearest)
    const int64_t bracket = int64_t{int32_t{err[c]} * gamma[c]} * (int64_t{1} << kNormFractionBits) - (a + rounded);
    const int64_t v = bracket * rho;
    values[c] = v;
    any |= Magnitude64(v);
  }
  return any;
}

}  // namespace

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
  // Every element is written before the emit reads it: no zero fill.
  const std::unique_ptr<int64_t[]> acc(new int64_t[static_cast<size_t>(rows * features)]);
  const int32_t count = static_cast<int32_t>(features);
  parallel_for(rows, features * 6 + 200, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* row = q + r * features;
      int64_t s1, s2;
      RowSums(row, features, &s1, &s2);
      const NormChannel ch = MakeNormChannel(features, s1, features * s2 - s1 * s1, params.eps_mantissa,
                                             params.eps_exponent, x_exponent);
      x_sum[r] = ch.sum;
      inv_sqrt[r] = ch.inv_sqrt;
      inv_shift[r] = ch.inv_shift;
      largest[r] = RowOutput(row, features, count, static_cast<int32_t>(ch.sum), static_cast<uint32_t>(ch.inv_sqrt),
                             61 - ch.inv_shift - kNormFractionBits, params.gamma, params.beta,
                             acc.get() + r * features);
    }
  });
  const int acc_exponent = params.gamma_exponent - kNormFractionBits;
  const int position = norm_internal::LargestPosition(largest, [&](int64_t) { return acc_exponent; });
  return norm_internal::EmitRowsRequantized(
      "layer_norm", rows, features, position, 8, [&](int64_t) { return acc_exponent; }, rounding, seed,
      parallel_for, acc.get(), y, y_exponent);
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
  // Kept for the emit; every element is written first (no zero fill).
  const std::unique_ptr<int64_t[]> values(new int64_t[static_cast<size_t>(rows * features)]);
  std::vector<int64_t> sum_err(static_cast<size_t>(features), 0), sum_err_xhat(static_cast<size_t>(features), 0);
  std::mutex mutex;
  const int32_t count = static_cast<int32_t>(features);
  parallel_for(rows, features * 12 + 200, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> part_err(static_cast<size_t>(features), 0), part_err_xhat(static_cast<size_t>(features), 0);
    std::vector<int32_t> xhat(static_cast<size_t>(features));
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* e = err + r * features;
      int64_t sum_a, sum_b;
      // NormSavedChannelValid above: |S1| <= 128 * count and r < 2**32.
      RowGradSums(e, q + r * features, gamma, features, count, static_cast<int32_t>(x_sum[r]),
                  static_cast<uint32_t>(inv_sqrt[r]), 61 - inv_shift[r] - kNormFractionBits, xhat.data(),
                  part_err.data(), part_err_xhat.data(), &sum_a, &sum_b);
      const NormGradChannel k = MakeNormGradChannel(sum_a, sum_b, features, inv_sqrt[r], inv_shift[r], 1,
                                                    gamma_exponent, x_exponent, err_exponent);
      constants[r] = k;
      int64_t* row_values = values.get() + r * features;
      if (k.b == static_cast<int32_t>(k.b)) {
        largest[r] = RowGradValues(e, gamma, xhat.data(), features, k.a, static_cast<int32_t>(k.b), k.gamma_rho,
                                   row_values);
      } else {  // only saved statistics that no forward pass of this q produced get here
        uint64_t any = 0;
        for (int64_t c = 0; c < features; ++c) {
          row_values[c] = NormGradValue(int32_t{e[c]} * gamma[c], xhat[c], k.a, k.b, k.gamma_rho);
          any |= Magnitude64(row_values[c]);
        }
        largest[r] = any;
      }
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
  return norm_internal::EmitRowsRequantized(
      "layer_norm_grad", rows, features, position, dx_bits, [&](int64_t r) { return constants[r].exponent; },
      Rounding::kNearest, RoundingSeed{}, parallel_for, values.get(), dx, dx_exponent);
}

}  // namespace keras_int

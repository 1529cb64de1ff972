#include "cc/core/norm.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/host_device.h"
#include "cc/core/norm_element.h"
#include "cc/core/norm_emit.h"
#include "cc/core/norm_rows.h"

namespace keras_int {

namespace {

// The portable statistics loop (norm_rows.h) built twice, for AVX2 and the
// baseline, one picked when the library loads: a CPU with AVX2 but not
// AVX-512 runs it 8 int32 lanes wide. Same bits either way. (The lookup
// and backward loops gain nothing so: GCC does not vectorise their table
// reads with AVX2's gathers.)
KI_VECTOR_CLONES void ScanRowsPortable(const int8_t* q, int64_t begin, int64_t end, int64_t channels,
                                       int32_t* sums) {
  norm_internal::ScanRows<0>(q, begin, end, channels, sums);
}

// Rows per block of the per-channel reductions: blocks are fixed by the
// shape (not by the thread pool), so the int64 partial sums, added in
// block order, give the same result on any number of threads (they are
// exact anyway).
int64_t BlockRows(int64_t channels) { return std::max<int64_t>(1, (int64_t{1} << 14) / channels); }

// Each channel's smallest and largest mantissa (inference), or also the
// sums S1 and S2 (training), in one pass over q.
struct ChannelExtremes {
  std::vector<int64_t> s1, s2;
  std::vector<int8_t> low, high;
};

ChannelExtremes ScanChannels(const int8_t* q, int64_t rows, int64_t channels, bool sums,
                             const ParallelFor& parallel_for) {
  const int64_t block_rows = BlockRows(channels);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  const size_t n = static_cast<size_t>(blocks * channels);
  std::vector<int64_t> s1(sums ? n : 0, 0), s2(sums ? n : 0, 0);
  std::vector<int8_t> low(n, 127), high(n, -128);
  const bool avx512 = norm_internal::NormAvx512Available();
  parallel_for(blocks, block_rows * channels * 4, [&](int64_t begin, int64_t end) {
    // A block's sums in int32 (at most 2**14 rows: |S1| <= 2**21, S2 <= 2**28).
    std::vector<int32_t> block(static_cast<size_t>(4 * channels));
    int32_t* lo = block.data() + 2 * channels;
    int32_t* hi = lo + channels;
    for (int64_t b = begin; b < end; ++b) {
      std::fill(block.begin(), block.begin() + 2 * channels, 0);
      std::fill(lo, lo + channels, 127);
      std::fill(hi, hi + channels, -128);
      const int64_t row_end = std::min(rows, (b + 1) * block_rows);
      (avx512 ? norm_internal::ScanRows<1> : ScanRowsPortable)(q, b * block_rows, row_end, channels,
                                                                          block.data());
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t j = b * channels + c;
        low[j] = static_cast<int8_t>(lo[c]);
        high[j] = static_cast<int8_t>(hi[c]);
        if (sums) {
          s1[j] = block[c];
          s2[j] = block[channels + c];
        }
      }
    }
  });
  ChannelExtremes out{std::vector<int64_t>(sums ? channels : 0, 0), std::vector<int64_t>(sums ? channels : 0, 0),
                      std::vector<int8_t>(static_cast<size_t>(channels), 127),
                      std::vector<int8_t>(static_cast<size_t>(channels), -128)};
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t j = b * channels + c;
      out.low[c] = std::min(out.low[c], low[j]);
      out.high[c] = std::max(out.high[c], high[j]);
      if (sums) {
        out.s1[c] += s1[j];
        out.s2[c] += s2[j];
      }
    }
  }
  return out;
}

// Normalises q with the per-channel constants and emits the carrier y in
// one pass. The output exponent needs
// no pass of its own: gamma * xhat + beta is affine in xhat, which is
// monotone in q, so each channel's largest |acc| is at its smallest or
// largest q.
Status NormalizeAndEmit(const int8_t* q, int64_t rows, int64_t channels, const NormParams& params,
                        const std::vector<NormChannel>& stats, const ChannelExtremes& extremes, Rounding rounding,
                        RoundingSeed seed, float* y, int* y_exponent, const ParallelFor& parallel_for) {
  const std::vector<int> exponents(static_cast<size_t>(channels), params.gamma_exponent - kNormFractionBits);
  std::vector<uint64_t> largest(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    largest[c] = std::max(
        Magnitude64(NormOutput(NormXhat(extremes.low[c], stats[c]), params.gamma[c], params.beta[c])),
        Magnitude64(NormOutput(NormXhat(extremes.high[c], stats[c]), params.gamma[c], params.beta[c])));
  }
  auto value = [&](int64_t r, int64_t c) {
    return NormOutput(NormXhat(q[r * channels + c], stats[c]), params.gamma[c], params.beta[c]);
  };
  const int position = norm_internal::LargestPosition(largest, [&](int64_t c) { return exponents[c]; });
  if (position != kNoValuePosition && rounding != Rounding::kStochastic) {
    // Without random words the output of an element depends only on its
    // channel and its mantissa: 255 values per channel, computed once with
    // the same element functions, then looked up.
    const int exponent = position - 7;
    KERAS_INT_RETURN_IF_ERROR(CheckExponent("batch_norm: result exponent", exponent, kMinExponent, kMaxExponent));
    *y_exponent = exponent;
    const float scale = PowerOfTwo(exponent);
    std::vector<float> y_table(static_cast<size_t>(channels * 256));
    for (int64_t c = 0; c < channels; ++c) {
      for (int v = -128; v < 128; ++v) {
        const int64_t acc = NormOutput(NormXhat(static_cast<int8_t>(v), stats[c]), params.gamma[c], params.beta[c]);
        y_table[c * 256 + (v + 128)] =
            static_cast<float>(RequantizeValue(acc, exponents[c], exponent, rounding, 0u)) * scale;
      }
    }
    const bool avx512 = norm_internal::NormAvx512Available();
    parallel_for(rows, channels * 2, [&](int64_t begin, int64_t end) {
      (avx512 ? norm_internal::LookupRows<1> : norm_internal::LookupRows<0>)(q, begin, end, channels, y_table.data(),
                                                                              y);
    });
    return Status::OK();
  }
  return norm_internal::EmitRequantized(
      "batch_norm", rows, channels, position, 8, [&](int64_t, int64_t c) { return exponents[c]; }, rounding, seed,
      parallel_for, value, y, y_exponent);
}

// The errors of the elements of one (channel, mantissa) bin: their sum
// (|sum| <= 128 * kNormMaxRows = 2**30) and extremes (low > high: none).
struct ErrorBin {
  int32_t sum = 0;
  int8_t low = 127, high = -128;
};

// err binned by channel and q: bin c * 256 + q + 128. Each shard bins its
// rows into its own bins and adds them to the total under a lock: integer
// sums, minima and maxima are exact in any order, so the result does not
// depend on the shards.
std::vector<ErrorBin> BinErrors(const int8_t* err, const int8_t* q, int64_t rows, int64_t channels,
                                const ParallelFor& parallel_for) {
  const size_t count = static_cast<size_t>(channels * 256);
  std::vector<ErrorBin> total(count);
  std::mutex mutex;
  parallel_for(rows, channels * 6, [&](int64_t begin, int64_t end) {
    std::vector<ErrorBin> bins(count);
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* e = err + r * channels;
      const int8_t* m = q + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        ErrorBin& bin = bins[c * 256 + (m[c] + 128)];
        bin.sum += e[c];
        bin.low = std::min(bin.low, e[c]);
        bin.high = std::max(bin.high, e[c]);
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t j = 0; j < count; ++j) {
      total[j].sum += bins[j].sum;
      total[j].low = std::min(total[j].low, bins[j].low);
      total[j].high = std::max(total[j].high, bins[j].high);
    }
  });
  return total;
}

// requantize_channels (nearest) of the backward values err * unit[c] -
// term[c * 256 + q + 128], whose exponents and largest magnitudes per
// channel are given: the output exponent, then one vectorised pass.
Status EmitGradChannels(const int8_t* err, const int8_t* q, int64_t rows, int64_t channels,
                        const std::vector<int>& exponents, const std::vector<uint64_t>& largest,
                        std::vector<int64_t>* unit_in, std::vector<int64_t>* term_in, const ParallelFor& parallel_for,
                        float* dx, int* dx_exponent) {
  std::vector<int64_t>& unit = *unit_in;
  std::vector<int64_t>& term = *term_in;
  const int position = norm_internal::LargestPosition(largest, [&](int64_t c) { return exponents[c]; });
  if (position == kNoValuePosition) {
    parallel_for(rows * channels, 1, [&](int64_t begin, int64_t end) { std::fill(dx + begin, dx + end, 0.0f); });
    return Status::OK();
  }
  const int exponent = position - 7;
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("batch_norm_grad: result exponent", exponent, kMinExponent, kMaxExponent));
  *dx_exponent = exponent;
  // requantize_channels with nearest, branch-free per element: a channel
  // with s = exponent - e_c <= 0 shifts left by -s (exact, below 2**7),
  // one with 0 < s < 64 rounds right by s, one with s >= 64 is all zero.
  std::vector<uint64_t> left(static_cast<size_t>(channels), 0), right(static_cast<size_t>(channels), 0),
      half(static_cast<size_t>(channels), 0);
  for (int64_t c = 0; c < channels; ++c) {
    const int s = exponent - exponents[c];
    if (s >= 64) {
      unit[c] = 0;
      std::fill(term.begin() + c * 256, term.begin() + (c + 1) * 256, 0);
    } else if (s > 0) {
      right[c] = static_cast<uint64_t>(s);
      half[c] = uint64_t{1} << (s - 1);
    } else {
      left[c] = static_cast<uint64_t>(-s);
    }
  }
  const float scale = PowerOfTwo(exponent);
  const auto emit = norm_internal::NormAvx512Available() ? norm_internal::GradEmitRows<1>
                    : norm_internal::NormAvx2Available()   ? norm_internal::GradEmitRows<2>
                                                           : norm_internal::GradEmitRows<0>;
  parallel_for(rows, channels * 4, [&](int64_t begin, int64_t end) {
    emit(err, q, begin, end, channels, unit.data(), term.data(), left.data(), half.data(), right.data(), scale, dx);
  });
  return Status::OK();
}

}  // namespace

namespace norm_internal {

bool NormAvx512Available() {
  static const bool available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return available;
}

bool NormAvx2Available() {
  static const bool available = __builtin_cpu_supports("avx2");
  return available;
}

}  // namespace norm_internal

Status CheckNormRows(int64_t rows) {
  if (rows > kNormMaxRows) {
    return Status::Error("batch_norm: " + std::to_string(rows) + " rows per channel, more than the " +
                         std::to_string(kNormMaxRows) + " whose statistics are exact in int64");
  }
  return Status::OK();
}

Status CheckNormEpsilon(int64_t mantissa, int exponent) {
  if (mantissa < (int64_t{1} << (kNormEpsilonBits - 1)) || mantissa >= (int64_t{1} << kNormEpsilonBits)) {
    return Status::Error("batch_norm: epsilon mantissa " + std::to_string(mantissa) + " is out of range [2**" +
                         std::to_string(kNormEpsilonBits - 1) + ", 2**" + std::to_string(kNormEpsilonBits) + ")");
  }
  return CheckExponent("batch_norm: epsilon exponent", exponent, kMinAccExponent, kMaxAccExponent);
}

Status CheckNormStatisticExponent(const char* name, int64_t exponent) {
  return CheckExponent(name, exponent, -kNormStatisticExponentLimit, kNormStatisticExponentLimit);
}

Status BatchNormTraining(const int8_t* q, int64_t rows, int64_t channels, int x_exponent, const NormParams& params,
                         Rounding rounding, RoundingSeed seed, float* y, int* y_exponent, int64_t* x_sum,
                         int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean, int* mean_exponent,
                         int32_t* variance, int* variance_exponent, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  *mean_exponent = x_exponent - 23;
  *variance_exponent = 2 * x_exponent - 16;
  *y_exponent = 0;
  if (channels == 0) return Status::OK();
  if (rows == 0) {
    std::fill(x_sum, x_sum + channels, 0);
    std::fill(inv_sqrt, inv_sqrt + channels, 0);
    std::fill(inv_shift, inv_shift + channels, 0);
    std::fill(mean, mean + channels, 0);
    std::fill(variance, variance + channels, 0);
    return Status::OK();
  }
  // S1 and S2 per channel (int64, exact: |S1| < 2**30, S2 < 2**37), and
  // the extremes of q.
  const ChannelExtremes extremes = ScanChannels(q, rows, channels, /*sums=*/true, parallel_for);
  std::vector<NormChannel> stats(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    stats[c] = MakeTrainingChannel(rows, extremes.s1[c], extremes.s2[c], params.eps_mantissa, params.eps_exponent,
                                   x_exponent, &mean[c], &variance[c]);
    x_sum[c] = extremes.s1[c];
    inv_sqrt[c] = stats[c].inv_sqrt;
    inv_shift[c] = stats[c].inv_shift;
  }
  return NormalizeAndEmit(q, rows, channels, params, stats, extremes, rounding, seed, y, y_exponent, parallel_for);
}

Status BatchNormInference(const int8_t* q, int64_t rows, int64_t channels, int x_exponent, const NormParams& params,
                          const int32_t* moving_mean, int moving_mean_exponent, const int32_t* moving_variance,
                          int moving_variance_exponent, Rounding rounding, RoundingSeed seed, float* y,
                          int* y_exponent, int64_t* count, int64_t* inv_sqrt, int32_t* inv_shift,
                          const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  KERAS_INT_RETURN_IF_ERROR(CheckNormStatisticExponent("batch_norm: moving_mean_exponent", moving_mean_exponent));
  KERAS_INT_RETURN_IF_ERROR(
      CheckNormStatisticExponent("batch_norm: moving_variance_exponent", moving_variance_exponent));
  *y_exponent = 0;
  if (channels == 0 || rows == 0) return Status::OK();
  std::vector<NormChannel> stats(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    if (moving_variance[c] < 0) {
      return Status::Error("batch_norm: moving_variance must be >= 0, got " + std::to_string(moving_variance[c]) +
                           " in channel " + std::to_string(c));
    }
    stats[c] = MakeInferenceChannel(moving_mean[c], moving_mean_exponent, moving_variance[c],
                                    moving_variance_exponent, params.eps_mantissa, params.eps_exponent, x_exponent);
    count[c] = stats[c].count;
    inv_sqrt[c] = stats[c].inv_sqrt;
    inv_shift[c] = stats[c].inv_shift;
  }
  const ChannelExtremes extremes = ScanChannels(q, rows, channels, /*sums=*/false, parallel_for);
  return NormalizeAndEmit(q, rows, channels, params, stats, extremes, rounding, seed, y, y_exponent, parallel_for);
}

Status NormSavedChannelError(int64_t rows, int64_t channel, int64_t x_sum, int64_t inv_sqrt, int32_t inv_shift) {
  return Status::Error("batch_norm_grad: channel " + std::to_string(channel) + " has x_sum " + std::to_string(x_sum) +
                       ", inv_sqrt " + std::to_string(inv_sqrt) + ", inv_shift " + std::to_string(inv_shift) +
                       ": not what the forward pass gives for " + std::to_string(rows) +
                       " rows (|x_sum| <= 128 * rows, 0 <= inv_sqrt <= " + std::to_string(kNormMaxInverseSqrt) +
                       ", 0 <= inv_shift <= 30)");
}

Status CheckNormSavedChannels(int64_t rows, int64_t channels, const int64_t* x_sum, const int64_t* inv_sqrt,
                              const int32_t* inv_shift) {
  for (int64_t c = 0; c < channels; ++c) {
    if (!NormSavedChannelValid(rows, x_sum[c], inv_sqrt[c], inv_shift[c])) {
      return NormSavedChannelError(rows, c, x_sum[c], inv_sqrt[c], inv_shift[c]);
    }
  }
  return Status::OK();
}

Status BatchNormGrad(const int8_t* err, int err_exponent, const int8_t* q, int64_t rows, int64_t channels,
                     int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                     const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent, int32_t* dgamma,
                     int32_t* dbeta, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  *dx_exponent = 0;
  if (channels == 0) return Status::OK();
  if (rows == 0) {
    std::fill(dgamma, dgamma + channels, 0);
    std::fill(dbeta, dbeta + channels, 0);
    return Status::OK();
  }
  KERAS_INT_RETURN_IF_ERROR(CheckNormSavedChannels(rows, channels, x_sum, inv_sqrt, inv_shift));
  // xhat is a function of the channel and the mantissa q, so an element's
  // value depends only on its channel, q and err: one pass bins the errors
  // by (channel, q), which gives A, B and each channel's largest |value|
  // (at the extreme errors of a bin) from 256 bins per channel; a second
  // pass emits dx.
  const std::vector<ErrorBin> bins = BinErrors(err, q, rows, channels, parallel_for);
  std::vector<int32_t> xhat(static_cast<size_t>(channels * 256));
  std::vector<int64_t> sum_a(static_cast<size_t>(channels), 0), sum_b(static_cast<size_t>(channels), 0);
  int b_bits = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const NormChannel channel{rows, x_sum[c], inv_sqrt[c], inv_shift[c]};
    for (int v = 0; v < 256; ++v) {
      const int64_t j = c * 256 + v;
      xhat[j] = NormXhat(static_cast<int8_t>(v - 128), channel);
      sum_a[c] += bins[j].sum;                     // |A| < 2**30
      sum_b[c] += int64_t{bins[j].sum} * xhat[j];  // each term and B below 2**50 (spec)
    }
    b_bits = std::max(b_bits, BitLength64(Magnitude64(sum_b[c])));
  }
  const int h = NormGammaGradientShift(b_bits);
  // Per channel: value = err * unit - term[q] (= NormGradValue, exactly:
  // each product fits int64 as the value does), its exponent, and its
  // largest magnitude.
  std::vector<int64_t> unit(static_cast<size_t>(channels)), term(static_cast<size_t>(channels * 256));
  std::vector<int> exponents(static_cast<size_t>(channels));
  std::vector<uint64_t> largest(static_cast<size_t>(channels), 0);
  for (int64_t c = 0; c < channels; ++c) {
    dbeta[c] = static_cast<int32_t>(sum_a[c]);
    dgamma[c] = NormGammaGradient(sum_b[c], h);
    const NormGradChannel g = MakeNormGradChannel(sum_a[c], sum_b[c], rows, inv_sqrt[c], inv_shift[c], gamma[c],
                                                  gamma_exponent, x_exponent, err_exponent);
    exponents[c] = g.exponent;
    unit[c] = g.gamma_rho * (int64_t{1} << kNormFractionBits);
    for (int v = 0; v < 256; ++v) {
      const int64_t j = c * 256 + v;
      term[j] = NormGradTerm(xhat[j], g.a, g.b) * g.gamma_rho;
      if (bins[j].low > bins[j].high) continue;  // no element
      largest[c] = std::max({largest[c], Magnitude64(NormGradValue(bins[j].low, xhat[j], g.a, g.b, g.gamma_rho)),
                             Magnitude64(NormGradValue(bins[j].high, xhat[j], g.a, g.b, g.gamma_rho))});
    }
  }
  return EmitGradChannels(err, q, rows, channels, exponents, largest, &unit, &term, parallel_for, dx, dx_exponent);
}

Status NormFrozenChannelError(int64_t channel, int64_t count, int64_t inv_sqrt, int32_t inv_shift) {
  return Status::Error("batch_norm_frozen_grad: channel " + std::to_string(channel) + " has count " +
                       std::to_string(count) + ", inv_sqrt " + std::to_string(inv_sqrt) + ", inv_shift " +
                       std::to_string(inv_shift) + ": not what the inference pass gives (count a power of two in "
                       "[1, 2**23], 0 <= inv_sqrt <= " + std::to_string(kNormMaxInverseSqrt) +
                       ", 0 <= inv_shift <= 30)");
}

Status CheckNormFrozenChannels(int64_t channels, const int64_t* count, const int64_t* inv_sqrt,
                               const int32_t* inv_shift) {
  for (int64_t c = 0; c < channels; ++c) {
    if (!NormFrozenChannelValid(count[c], inv_sqrt[c], inv_shift[c])) {
      return NormFrozenChannelError(c, count[c], inv_sqrt[c], inv_shift[c]);
    }
  }
  return Status::OK();
}

Status BatchNormFrozenGrad(const int8_t* err, int err_exponent, int64_t rows, int64_t channels, int x_exponent,
                           const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent,
                           const ParallelFor& parallel_for) {
  *dx_exponent = 0;
  if (channels == 0 || rows == 0) return Status::OK();
  KERAS_INT_RETURN_IF_ERROR(CheckNormFrozenChannels(channels, count, inv_sqrt, inv_shift));
  // Each channel's largest |value| is at its smallest or largest error.
  const ChannelExtremes extremes = ScanChannels(err, rows, channels, /*sums=*/false, parallel_for);
  std::vector<int64_t> unit(static_cast<size_t>(channels)), term(static_cast<size_t>(channels * 256), 0);
  std::vector<int> exponents(static_cast<size_t>(channels));
  std::vector<uint64_t> largest(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const NormGradChannel g = MakeNormGradChannel(0, 0, count[c], inv_sqrt[c], inv_shift[c], gamma[c], gamma_exponent,
                                                  x_exponent, err_exponent);
    exponents[c] = g.exponent;
    unit[c] = g.gamma_rho * (int64_t{1} << kNormFractionBits);
    largest[c] = std::max(Magnitude64(NormGradValue(extremes.low[c], 0, 0, 0, g.gamma_rho)),
                          Magnitude64(NormGradValue(extremes.high[c], 0, 0, 0, g.gamma_rho)));
  }
  // term is all zero: err itself stands in for q.
  return EmitGradChannels(err, err, rows, channels, exponents, largest, &unit, &term, parallel_for, dx, dx_exponent);
}

Status NormMovingAverage(const int32_t* moving, int moving_exponent, const int32_t* batch, int batch_exponent,
                         int64_t channels, int64_t momentum, int32_t* out, int* out_exponent) {
  constexpr int64_t kOne = int64_t{1} << kNormMomentumBits;
  if (momentum < 0 || momentum > kOne) {
    return Status::Error("moving_average: momentum " + std::to_string(momentum) + " is out of range [0, 2**" +
                         std::to_string(kNormMomentumBits) + "]");
  }
  KERAS_INT_RETURN_IF_ERROR(CheckNormStatisticExponent("moving_average: moving_exponent", moving_exponent));
  KERAS_INT_RETURN_IF_ERROR(CheckNormStatisticExponent("moving_average: batch_exponent", batch_exponent));
  bool moving_zero = true, batch_zero = true;
  for (int64_t c = 0; c < channels; ++c) {
    moving_zero = moving_zero && moving[c] == 0;
    batch_zero = batch_zero && batch[c] == 0;
  }
  // An all-zero tensor's exponent carries no information (spec section 3).
  const int e = moving_zero ? batch_exponent
                            : (batch_zero ? moving_exponent : std::max(moving_exponent, batch_exponent));
  std::vector<int64_t> mixed(static_cast<size_t>(channels));
  int bits = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t m = NormAlignStatistic(moving[c], moving_exponent, e);
    const int64_t b = NormAlignStatistic(batch[c], batch_exponent, e);
    mixed[c] = RoundShift64(momentum * m + (kOne - momentum) * b, kNormMomentumBits, Rounding::kNearest, 0);
    bits = std::max(bits, BitLength64(Magnitude64(mixed[c])));
  }
  if (bits == 0) {
    std::fill(out, out + channels, 0);
    *out_exponent = 0;
    return Status::OK();
  }
  const int shift = bits - kNormStatisticBits;  // > 0: round right; < 0: exact left
  for (int64_t c = 0; c < channels; ++c) {
    out[c] = static_cast<int32_t>(shift > 0 ? RoundShift64(mixed[c], shift, Rounding::kNearest, 0)
                                            : mixed[c] * (int64_t{1} << -shift));
  }
  *out_exponent = e + shift;
  return CheckNormStatisticExponent("moving_average: result exponent", *out_exponent);
}

}  // namespace keras_int

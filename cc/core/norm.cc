#include "cc/core/norm.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/norm_element.h"

namespace keras_int {

namespace {

// Rows per block of the per-channel reductions: blocks are fixed by the
// shape (not by the thread pool), so the int64 partial sums, added in
// block order, give the same result on any number of threads (they are
// exact anyway).
int64_t BlockRows(int64_t channels) { return std::max<int64_t>(1, (int64_t{1} << 14) / channels); }

// kSums int64 sums per channel over the rows: term(row, sums) adds row's
// terms to sums[s * channels + c] (the backward's A and B).
template <int kSums, typename Term>
std::vector<int64_t> ChannelSums(int64_t rows, int64_t channels, const ParallelFor& parallel_for, Term term) {
  const int64_t block_rows = BlockRows(channels);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  std::vector<int64_t> partial(static_cast<size_t>(blocks * kSums * channels), 0);
  parallel_for(blocks, block_rows * channels * 4, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      int64_t* sums = partial.data() + b * kSums * channels;
      const int64_t row_end = std::min(rows, (b + 1) * block_rows);
      for (int64_t r = b * block_rows; r < row_end; ++r) term(r, sums);
    }
  });
  std::vector<int64_t> total(static_cast<size_t>(kSums * channels), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t j = 0; j < kSums * channels; ++j) total[j] += partial[b * kSums * channels + j];
  }
  return total;
}

// requantize_channels (spec section 8), in two steps: the output exponent
// from each channel's largest magnitude (at exponents[c]), then the
// rounding of value(r, c) with the mode fixed at compile time.
constexpr int kNoPosition = -(1 << 20);

int LargestPosition(const std::vector<uint64_t>& largest, const int* exponents) {
  int position = kNoPosition;
  for (size_t c = 0; c < largest.size(); ++c) {
    if (largest[c] != 0) position = std::max(position, BitLength64(largest[c]) + exponents[c]);
  }
  return position;
}

// Each channel's largest |value(r, c)| (one pass).
template <typename Value>
std::vector<uint64_t> ChannelLargest(int64_t rows, int64_t channels, const ParallelFor& parallel_for, Value value) {
  const int64_t block_rows = BlockRows(channels);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  std::vector<uint64_t> block_max(static_cast<size_t>(blocks * channels), 0);
  parallel_for(blocks, block_rows * channels * 8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      uint64_t* largest = block_max.data() + b * channels;
      const int64_t row_end = std::min(rows, (b + 1) * block_rows);
      for (int64_t r = b * block_rows; r < row_end; ++r) {
        for (int64_t c = 0; c < channels; ++c) largest[c] = std::max(largest[c], Magnitude64(value(r, c)));
      }
    }
  });
  std::vector<uint64_t> largest(static_cast<size_t>(channels), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t c = 0; c < channels; ++c) largest[c] = std::max(largest[c], block_max[b * channels + c]);
  }
  return largest;
}

template <typename Value>
Status EmitChannels(int64_t rows, int64_t channels, const int* exponents, int position, Rounding rounding,
                    RoundingSeed seed, const ParallelFor& parallel_for, Value value, float* out, int* out_exponent) {
  if (position == kNoPosition) {  // all zero
    *out_exponent = 0;
    parallel_for(rows * channels, 1, [&](int64_t begin, int64_t end) {
      std::fill(out + begin, out + end, 0.0f);
    });
    return Status::OK();
  }
  const int exponent = position - 7;
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("batch_norm: result exponent", exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  const float scale = PowerOfTwo(exponent);
  auto emit = [&](auto mode) {
    constexpr Rounding kMode = decltype(mode)::value;
    parallel_for(rows, channels * 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t i = r * channels + c;
          const uint32_t random =
              kMode == Rounding::kStochastic ? RandomWordFor(kMode, seed, static_cast<uint64_t>(i)) : 0u;
          out[i] = static_cast<float>(NormRequantizeElement(value(r, c), exponents[c], exponent, kMode, random)) *
                   scale;
        }
      }
    });
  };
  switch (rounding) {
    case Rounding::kNearest:
      emit(std::integral_constant<Rounding, Rounding::kNearest>());
      break;
    case Rounding::kPseudoStochastic:
      emit(std::integral_constant<Rounding, Rounding::kPseudoStochastic>());
      break;
    case Rounding::kStochastic:
      emit(std::integral_constant<Rounding, Rounding::kStochastic>());
      break;
    case Rounding::kTruncate:
      emit(std::integral_constant<Rounding, Rounding::kTruncate>());
      break;
  }
  return Status::OK();
}

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
  parallel_for(blocks, block_rows * channels * 4, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t row_end = std::min(rows, (b + 1) * block_rows);
      int8_t* lo = low.data() + b * channels;
      int8_t* hi = high.data() + b * channels;
      for (int64_t r = b * block_rows; r < row_end; ++r) {
        const int8_t* row = q + r * channels;
        for (int64_t c = 0; c < channels; ++c) {
          lo[c] = std::min(lo[c], row[c]);
          hi[c] = std::max(hi[c], row[c]);
        }
        if (!sums) continue;
        int64_t* a = s1.data() + b * channels;
        int64_t* sq = s2.data() + b * channels;
        for (int64_t c = 0; c < channels; ++c) {
          a[c] += row[c];
          sq[c] += int32_t{row[c]} * row[c];
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
// one pass (storing xhat when given: training). The output exponent needs
// no pass of its own: gamma * xhat + beta is affine in xhat, which is
// monotone in q, so each channel's largest |acc| is at its smallest or
// largest q.
Status NormalizeAndEmit(const int8_t* q, int64_t rows, int64_t channels, const NormParams& params,
                        const std::vector<NormChannel>& stats, const ChannelExtremes& extremes, Rounding rounding,
                        RoundingSeed seed, float* y, int* y_exponent, int32_t* xhat,
                        const ParallelFor& parallel_for) {
  const std::vector<int> exponents(static_cast<size_t>(channels), params.gamma_exponent - kNormFractionBits);
  std::vector<uint64_t> largest(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    largest[c] = std::max(
        Magnitude64(NormOutput(NormXhat(extremes.low[c], stats[c]), params.gamma[c], params.beta[c])),
        Magnitude64(NormOutput(NormXhat(extremes.high[c], stats[c]), params.gamma[c], params.beta[c])));
  }
  auto value = [&](int64_t r, int64_t c) {
    const int64_t i = r * channels + c;
    const int32_t x = NormXhat(q[i], stats[c]);
    if (xhat != nullptr) xhat[i] = x;
    return NormOutput(x, params.gamma[c], params.beta[c]);
  };
  const int position = LargestPosition(largest, exponents.data());
  if (position != kNoPosition && rounding != Rounding::kStochastic) {
    // Without random words the output of an element depends only on its
    // channel and its mantissa: 255 values per channel, computed once with
    // the same element functions, then looked up.
    const int exponent = position - 7;
    KERAS_INT_RETURN_IF_ERROR(CheckExponent("batch_norm: result exponent", exponent, kMinExponent, kMaxExponent));
    *y_exponent = exponent;
    const float scale = PowerOfTwo(exponent);
    std::vector<int32_t> xhat_table(static_cast<size_t>(channels * 256));
    std::vector<float> y_table(static_cast<size_t>(channels * 256));
    for (int64_t c = 0; c < channels; ++c) {
      for (int v = -128; v < 128; ++v) {
        const int32_t x = NormXhat(static_cast<int8_t>(v), stats[c]);
        const int64_t acc = NormOutput(x, params.gamma[c], params.beta[c]);
        xhat_table[c * 256 + (v + 128)] = x;
        y_table[c * 256 + (v + 128)] =
            static_cast<float>(NormRequantizeElement(acc, exponents[c], exponent, rounding, 0u)) * scale;
      }
    }
    parallel_for(rows, channels * 4, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int8_t* row = q + r * channels;
        float* out = y + r * channels;
        for (int64_t c = 0; c < channels; ++c) out[c] = y_table[c * 256 + (row[c] + 128)];
        if (xhat == nullptr) continue;
        int32_t* x = xhat + r * channels;
        for (int64_t c = 0; c < channels; ++c) x[c] = xhat_table[c * 256 + (row[c] + 128)];
      }
    });
    return Status::OK();
  }
  if (position == kNoPosition && xhat != nullptr) {
    // An all-zero output is written without evaluating value(); the
    // backward pass still needs xhat.
    parallel_for(rows, channels * 8, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin * channels; i < end * channels; ++i) xhat[i] = NormXhat(q[i], stats[i % channels]);
    });
  }
  return EmitChannels(rows, channels, exponents.data(), position, rounding, seed, parallel_for, value, y, y_exponent);
}

}  // namespace

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
                         Rounding rounding, RoundingSeed seed, float* y, int* y_exponent, int32_t* xhat,
                         int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean, int* mean_exponent,
                         int32_t* variance, int* variance_exponent, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  *mean_exponent = x_exponent - 23;
  *variance_exponent = 2 * x_exponent - 16;
  *y_exponent = 0;
  if (channels == 0) return Status::OK();
  if (rows == 0) {
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
    inv_sqrt[c] = stats[c].inv_sqrt;
    inv_shift[c] = stats[c].inv_shift;
  }
  return NormalizeAndEmit(q, rows, channels, params, stats, extremes, rounding, seed, y, y_exponent, xhat,
                          parallel_for);
}

Status BatchNormInference(const int8_t* q, int64_t rows, int64_t channels, int x_exponent, const NormParams& params,
                          const int32_t* moving_mean, int moving_mean_exponent, const int32_t* moving_variance,
                          int moving_variance_exponent, Rounding rounding, RoundingSeed seed, float* y,
                          int* y_exponent, const ParallelFor& parallel_for) {
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
  }
  const ChannelExtremes extremes = ScanChannels(q, rows, channels, /*sums=*/false, parallel_for);
  return NormalizeAndEmit(q, rows, channels, params, stats, extremes, rounding, seed, y, y_exponent, nullptr,
                          parallel_for);
}

Status BatchNormGrad(const int8_t* err, int err_exponent, const int32_t* xhat, int64_t rows, int64_t channels,
                     int x_exponent, const int64_t* inv_sqrt, const int32_t* inv_shift, const int8_t* gamma,
                     int gamma_exponent, float* dx, int* dx_exponent, int32_t* dgamma, int32_t* dbeta,
                     const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  *dx_exponent = 0;
  if (channels == 0) return Status::OK();
  if (rows == 0) {
    std::fill(dgamma, dgamma + channels, 0);
    std::fill(dbeta, dbeta + channels, 0);
    return Status::OK();
  }
  // A = sum(err) (< 2**30), B = sum(err * xhat) (< 2**50) per channel.
  const std::vector<int64_t> sums = ChannelSums<2>(rows, channels, parallel_for, [&](int64_t r, int64_t* s) {
    const int8_t* e = err + r * channels;
    const int32_t* x = xhat + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      s[c] += e[c];
      s[channels + c] += int64_t{e[c]} * x[c];
    }
  });
  int b_bits = 0;
  for (int64_t c = 0; c < channels; ++c) b_bits = std::max(b_bits, BitLength64(Magnitude64(sums[channels + c])));
  const int h = NormGammaGradientShift(b_bits);
  std::vector<NormGradChannel> constants(static_cast<size_t>(channels));
  std::vector<int> exponents(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    dbeta[c] = static_cast<int32_t>(sums[c]);  // |A| < 2**30
    dgamma[c] = NormGammaGradient(sums[channels + c], h);
    constants[c] = MakeNormGradChannel(sums[c], sums[channels + c], rows, inv_sqrt[c], inv_shift[c], gamma[c],
                                       gamma_exponent, x_exponent, err_exponent);
    exponents[c] = constants[c].exponent;
  }
  auto value = [&](int64_t r, int64_t c) {
    const int64_t i = r * channels + c;
    const NormGradChannel& g = constants[c];
    return NormGradValue(err[i], xhat[i], g.a, g.b, g.gamma_rho);
  };
  const std::vector<uint64_t> largest = ChannelLargest(rows, channels, parallel_for, value);
  return EmitChannels(rows, channels, exponents.data(), LargestPosition(largest, exponents.data()), Rounding::kNearest,
                      RoundingSeed{}, parallel_for, value, dx, dx_exponent);
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

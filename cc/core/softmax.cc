#include "cc/core/softmax.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/host_device.h"
#include "cc/core/limits.h"
#include "cc/core/rounding.h"
#include "cc/core/softmax_element.h"

namespace keras_int {

Status CheckSoftmaxScale(const SoftmaxScale& scale) {
  if (scale.multiplier < 1 || scale.multiplier > kSoftmaxMaxMultiplier || scale.shift < 0 ||
      scale.shift > kSoftmaxMaxShift) {
    return Status::Error("softmax: scale " + std::to_string(scale.multiplier) + " * 2**-" +
                         std::to_string(scale.shift) + " is out of range (multiplier in [1, " +
                         std::to_string(kSoftmaxMaxMultiplier) + "], shift in [0, " +
                         std::to_string(kSoftmaxMaxShift) + "])");
  }
  return Status::OK();
}

Status CheckSoftmaxRow(int64_t n) {
  if (n > kSoftmaxMaxRow) {
    return Status::Error("softmax: rows of " + std::to_string(n) + " entries, more than the " +
                         std::to_string(kSoftmaxMaxRow) + " whose sums are exact in int64");
  }
  return Status::OK();
}

Status CheckSoftmaxOutputExponent(int exponent) {
  return CheckExponent("softmax_grad: y_exponent (a softmax output's)", exponent, -kSoftmaxProbabilityBits, 0);
}

namespace {

// SoftmaxProbability (round(p * 2**22 / sum)) for every p of a row, by one
// multiply with the row's reciprocal instead of one 64-bit division per
// element. With D = 2 sum and inv = floor((2**64 - 1) / D), q = N * inv >> 64
// for N = (p << 23) + sum < 2**54 is floor(N / D) or one less (it falls
// short by less than N * 2 / 2**64 < 1), which the remainder test adds back.
void RowProbabilities(const int64_t* p, int64_t n, int64_t sum, int32_t* out) {
  const uint64_t divisor = 2 * static_cast<uint64_t>(sum);
  const uint64_t reciprocal = ~uint64_t{0} / divisor;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t numerator = (static_cast<uint64_t>(p[i]) << (kSoftmaxProbabilityBits + 1)) + sum;
    uint64_t q = static_cast<uint64_t>((static_cast<unsigned __int128>(numerator) * reciprocal) >> 64);
    q += numerator - q * divisor >= divisor;
    out[i] = static_cast<int32_t>(q);
  }
}

}  // namespace

Status SoftmaxProbabilities(const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n, int exponent,
                            const SoftmaxScale& scale, int32_t* probabilities, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxScale(scale));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxRow(n));
  // A numerator depends only on d = q_max - q (0..255) and the call's
  // exponent and scale: 256 of them, computed once with the element
  // functions, then looked up.
  int64_t numerator[256];
  for (int d = 0; d < 256; ++d) {
    numerator[d] = SoftmaxNumerator(SoftmaxExpArgument(d, exponent, scale.multiplier, scale.shift));
  }
  parallel_for(rows, n * 6, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t r = begin; r < end; ++r) {
      const int8_t* row = q + r * n;
      const uint8_t* keep = mask == nullptr ? nullptr : mask + r * n;
      int32_t* out = probabilities + r * n;
      int32_t q_max = -129;
      if (keep == nullptr) {
        for (int64_t i = 0; i < n; ++i) q_max = std::max<int32_t>(q_max, row[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) q_max = std::max<int32_t>(q_max, keep[i] ? row[i] : -129);
      }
      if (q_max == -129) {  // every entry masked
        std::fill(out, out + n, 0);
        continue;
      }
      int64_t sum = 0;  // <= n * 2**30 < 2**51
      for (int64_t i = 0; i < n; ++i) {
        p[i] = keep == nullptr || keep[i] ? numerator[q_max - row[i]] : 0;
        sum += p[i];
      }
      RowProbabilities(p.data(), n, sum, out);
    }
  });
  return Status::OK();
}

namespace {

// D = sum(y * err) of a row (|D| <= n * 2**14 < 2**35): int32 sums of
// 2**16 products (at most 2**30), added in int64.
KI_VECTOR_CLONES int64_t RowDot(const int8_t* __restrict y, const int8_t* __restrict err, int64_t n) {
  int64_t dot = 0;
  for (int64_t begin = 0; begin < n; begin += int64_t{1} << 16) {
    const int64_t end = std::min(n, begin + (int64_t{1} << 16));
    int32_t part = 0;
    for (int64_t i = begin; i < end; ++i) part += int32_t{y[i]} * err[i];
    dot += part;
  }
  return dot;
}

// Whether a row's gradient values y (err 2**-y_exponent - D) multiplier
// fit int32 on the way: |y| <= 128 and |err| <= 128 bound them by
// 128 multiplier (2**(7 - y_exponent) + |D|).
bool GradRowFitsInt32(int y_exponent, int64_t dot, int64_t multiplier) {
  const int64_t bound = 128 * multiplier * ((int64_t{128} << -y_exponent) + (dot < 0 ? -dot : dot));
  return bound <= int64_t{0x7FFFFFFF};
}

// SoftmaxGradValue in int32 (up = -y_exponent), for rows GradRowFitsInt32 admits.
inline int32_t GradValue32(int8_t y, int8_t err, int up, int32_t dot, int32_t multiplier) {
  return int32_t{y} * multiplier * (int32_t{err} * (int32_t{1} << up) - dot);
}

// The OR of a row's value magnitudes (the same bit length as their
// maximum), in int32 where GradRowFitsInt32 allows (the loop vectorises).
KI_VECTOR_CLONES uint32_t GradRowOr32(const int8_t* __restrict y, const int8_t* __restrict err, int64_t n, int up,
                                      int32_t dot, int32_t multiplier) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    any |= Magnitude(GradValue32(y[i], err[i], up, dot, multiplier));
  }
  return any;
}

uint64_t GradRowOr(const int8_t* y, const int8_t* err, int64_t n, int y_exponent, int64_t dot, int64_t multiplier) {
  if (GradRowFitsInt32(y_exponent, dot, multiplier)) {
    return GradRowOr32(y, err, n, -y_exponent, static_cast<int32_t>(dot), static_cast<int32_t>(multiplier));
  }
  uint64_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= Magnitude64(SoftmaxGradValue(y[i], err[i], y_exponent, dot, multiplier));
  return any;
}

// A row's error carrier: each value requantized by 2**s (nearest, 8 bits;
// s <= 0: every value below 2**7, scaled up exactly) times `unit`.
KI_VECTOR_CLONES void GradRowEmit32(const int8_t* __restrict y, const int8_t* __restrict err, int64_t n, int up,
                                    int32_t dot, int32_t multiplier, int s, float unit, float* __restrict dx) {
  if (s <= 0) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v = GradValue32(y[i], err[i], up, dot, multiplier);
      dx[i] = static_cast<float>(v * (1 << -s)) * unit;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = GradValue32(y[i], err[i], up, dot, multiplier);
    dx[i] = static_cast<float>(ShiftAndClipElement<Rounding::kNearest>(v, s, 0, 127)) * unit;
  }
}

void GradRowEmit(const int8_t* y, const int8_t* err, int64_t n, int y_exponent, int64_t dot, int64_t multiplier,
                 int s, float unit, float* dx) {
  if (GradRowFitsInt32(y_exponent, dot, multiplier)) {
    return GradRowEmit32(y, err, n, -y_exponent, static_cast<int32_t>(dot), static_cast<int32_t>(multiplier), s,
                         unit, dx);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = SoftmaxGradValue(y[i], err[i], y_exponent, dot, multiplier);
    const int32_t m = s <= 0 ? static_cast<int32_t>(v * (int64_t{1} << -s))
                             : ShiftAndClipElement<Rounding::kNearest>(v, s, 0, 127);
    dx[i] = static_cast<float>(m) * unit;
  }
}

}  // namespace

Status SoftmaxGrad(const int8_t* err, int err_exponent, const int8_t* y, int y_exponent, int64_t rows, int64_t n,
                   const SoftmaxScale& scale, float* dx, int* dx_exponent, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxScale(scale));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxRow(n));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxOutputExponent(y_exponent));
  *dx_exponent = 0;
  // Per row D = sum(y * err) and the largest magnitude of the values
  // y (err 2**-y_exponent - D) multiplier (ORed: the same bit length); then
  // one exponent for all, 2 y_exponent + err_exponent - shift, and a second
  // pass that computes the values again and requantizes them (nearest).
  std::vector<int64_t> dots(static_cast<size_t>(rows));
  std::vector<uint64_t> largest(static_cast<size_t>(rows));
  parallel_for(rows, n * 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      dots[r] = RowDot(y + r * n, err + r * n, n);
      largest[r] = GradRowOr(y + r * n, err + r * n, n, y_exponent, dots[r], scale.multiplier);
    }
  });
  uint64_t top = 0;
  for (const uint64_t m : largest) top |= m;
  const int value_exponent = 2 * y_exponent + err_exponent - scale.shift;
  if (top == 0) {
    parallel_for(rows * n, 1, [&](int64_t begin, int64_t end) { std::fill(dx + begin, dx + end, 0.0f); });
    return Status::OK();
  }
  const int shift = BitLength64(top) - 7;
  const int exponent = value_exponent + shift;
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("softmax_grad: result exponent", exponent, kMinExponent, kMaxExponent));
  *dx_exponent = exponent;
  const float unit = PowerOfTwo(exponent);
  parallel_for(rows, n * 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      GradRowEmit(y + r * n, err + r * n, n, y_exponent, dots[r], scale.multiplier, shift, unit, dx + r * n);
    }
  });
  return Status::OK();
}

}  // namespace keras_int

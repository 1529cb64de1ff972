// requantize_channels' two steps on the CPU (docs/algorithms.md section 8),
// shared by batch and layer normalization: the result exponent from the
// largest magnitudes, then every value rounded to int8 (layer norm's dx:
// int8 or int16), written as a float32 carrier. Values may have their own
// exponent per channel (batch norm: EmitRequantized) or per row (layer
// norm: EmitRowsRequantized).
#ifndef KERAS_INT_CC_CORE_NORM_EMIT_H_
#define KERAS_INT_CC_CORE_NORM_EMIT_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/limits.h"
#include "cc/core/parallel.h"
#include "cc/core/requantize_element.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"

namespace keras_int {
namespace norm_internal {

// max(bit_length(largest[j]) + exponent_of(j)) over the non-zero
// largest[j] (kNoValuePosition when all are zero).
template <typename ExponentOf>
int LargestPosition(const std::vector<uint64_t>& largest, ExponentOf exponent_of) {
  int position = kNoValuePosition;
  for (size_t j = 0; j < largest.size(); ++j) {
    if (largest[j] != 0) position = std::max(position, BitLength64(largest[j]) + exponent_of(static_cast<int64_t>(j)));
  }
  return position;
}

// The carrier of value(r, c) (at exponent exponent_of(r, c)) over [rows,
// cols] as `bits`-bit mantissas (8 or 16) at the result exponent
// position - (bits - 1) (all zero: 0); `fn` names the op in the
// exponent-range error. Stochastic rounding draws element i's word at its
// flat index.
template <typename ExponentOf, typename Value>
Status EmitRequantized(const char* fn, int64_t rows, int64_t cols, int position, int bits, ExponentOf exponent_of,
                       Rounding rounding, RoundingSeed seed, const ParallelFor& parallel_for, Value value, float* out,
                       int* out_exponent) {
  if (position == kNoValuePosition) {  // all zero
    *out_exponent = 0;
    parallel_for(rows * cols, 1, [&](int64_t begin, int64_t end) { std::fill(out + begin, out + end, 0.0f); });
    return Status::OK();
  }
  const int exponent = position - (bits - 1);
  const int64_t limit = MantissaLimit(bits);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent((std::string(fn) + ": result exponent").c_str(), exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  const float scale = PowerOfTwo(exponent);
  const auto emit = [&](auto mode) {
    constexpr Rounding kMode = decltype(mode)::value;
    parallel_for(rows, cols * 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t i = r * cols + c;
          const uint32_t random =
              kMode == Rounding::kStochastic ? RandomWordFor(kMode, seed, static_cast<uint64_t>(i)) : 0u;
          out[i] = static_cast<float>(RequantizeValue(value(r, c), exponent_of(r, c), exponent, kMode, random, limit)) *
                   scale;
        }
      }
    });
  };
  WithRounding(rounding, emit);
  return Status::OK();
}

// EmitRequantized for values stored row-major with one exponent per row
// (layer norm): a row's elements share its shift, so the rounding pass is
// requantize's own vectorised loop (ShiftToCarrier) row by row. Same
// results as EmitRequantized with exponent_of(r, c) = row_exponent(r).
template <typename RowExponent>
Status EmitRowsRequantized(const char* fn, int64_t rows, int64_t cols, int position, int bits,
                           RowExponent row_exponent, Rounding rounding, RoundingSeed seed,
                           const ParallelFor& parallel_for, const int64_t* values, float* out, int* out_exponent) {
  if (position == kNoValuePosition) {  // all zero
    *out_exponent = 0;
    parallel_for(rows * cols, 1, [&](int64_t begin, int64_t end) { std::fill(out + begin, out + end, 0.0f); });
    return Status::OK();
  }
  const int exponent = position - (bits - 1);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent((std::string(fn) + ": result exponent").c_str(), exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  const float scale = PowerOfTwo(exponent);
  parallel_for(rows, cols * 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int s = exponent - row_exponent(r);
      const int64_t first = r * cols, last = first + cols;
      if (s >= 64) {  // below half a unit: every value rounds to 0
        std::fill(out + first, out + last, 0.0f);
      } else if (s >= 1) {
        ShiftToCarrier(values, first, last, s, bits, rounding, seed, scale, out);
      } else if (s > -63) {  // exact: position bounds every value of the row
        const int64_t factor = int64_t{1} << -s;
        for (int64_t i = first; i < last; ++i) out[i] = static_cast<float>(values[i] * factor) * scale;
      } else {  // only an all-zero row has an exponent this far above the position
        std::fill(out + first, out + last, 0.0f);
      }
    }
  });
  return Status::OK();
}

}  // namespace norm_internal
}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_NORM_EMIT_H_

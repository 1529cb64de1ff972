// The bounds and fixed exponents that more than one part of the library
// relies on (core, CUDA kernels, kernel adapters), each defined once here.
// Family-internal tuning constants (block sizes, thresholds) stay with
// their family.
#ifndef KERAS_INT_CC_CORE_LIMITS_H_
#define KERAS_INT_CC_CORE_LIMITS_H_

#include <cstdint>

#include "cc/core/host_device.h"

namespace keras_int {

// ---- exponents (spec section 1) ----

// Exponents of int8/int16 DFP tensors. The range keeps q * 2**e a normal
// float32 for every 16-bit mantissa, so dequantize is always exact.
constexpr int kMinExponent = -120;
constexpr int kMaxExponent = 100;
// Exponents of int32 accumulators: sums of two DFP exponents.
constexpr int kMinAccExponent = 2 * kMinExponent;
constexpr int kMaxAccExponent = 2 * kMaxExponent;

// ---- exact int32 products (spec section 3) ----

// |int8 * int8| <= 2**14, so a dot product of length K is exact in int32
// while K * 2**14 < 2**31. Deeper products are split into parts this deep
// and summed in int64 (CPU and GPU).
constexpr int64_t kMaxExactDepth = 131071;

// ---- residual add (add.h) ----

// Largest exact alignment: 8-bit mantissas shifted by 23 stay below 2**30.
constexpr int kMaxAlignShift = 23;
// ... of 16-bit mantissas into int64 (DFP16): shifted by 47, below 2**62.
constexpr int kMaxAlignShift16 = 47;

// ---- pooling (pool.h) ----

// Average pooling divides by the window's element count n as a multiply by
// round(2**16 / n) at exponent -16, so a window has at most 2**16 elements.
constexpr int kAvgPoolShift = 16;
constexpr int kAvgPoolWindowLog2 = kAvgPoolShift;
// A max-pool gradient element sums int8 dy (-128..127) over the windows
// whose first maximum it is. An element lies in at most k_h * k_w windows,
// so windows of at most 2**24 elements keep that int32 sum within
// [-2**31, 2**31) (without a bound, one large maximum in a large input
// could collect more than 2**24 windows' dy).
constexpr int kMaxPoolWindowLog2 = 24;
// Max pooling on carrier bit patterns records each window's winning tap in
// one byte: windows of at most 256 taps.
constexpr int64_t kMaxPoolCarrierMaxTaps = 256;

// ---- cross-entropy gradient (spec section 4) ----

// Exponent of the error the gradient produces: its values approximate
// softmax - onehot.
constexpr int kCrossEntropyErrorExponent = -7;
// ... and for `bits`-bit logits and errors: -7 for int8, -15 for int16
// (DFP16, spec section 16).
KI_HOST_DEVICE constexpr int CrossEntropyErrorExponent(int bits) { return kCrossEntropyErrorExponent + 8 - bits; }
// Widest row the normaliser sums exactly: a numerator is below 2**42 (at
// most 2**41 + 127 * 2**21 + 127**2, the second-order form at exponent
// -20), so 2**21 of them stay below 2**63 in int64.
constexpr int64_t kCrossEntropyMaxClasses = int64_t{1} << 21;

// The longest softmax row: numerators are at most 2**30, so the row sum
// stays below 2**51 and p * 2**23 below 2**53; the gradient's D = sum(y *
// err) below 2**35, its values below 2**59 (docs/algorithms.md section 10).
constexpr int64_t kSoftmaxMaxRow = int64_t{1} << 21;
// The softmax scale c = multiplier * 2**-shift folded into the logits: the
// multiplier below 2**16 keeps d * log2(e) * multiplier below 2**40 and the
// gradient's values below 2**59.
constexpr int64_t kSoftmaxMaxMultiplier = (int64_t{1} << 16) - 1;
constexpr int kSoftmaxMaxShift = 62;

// The most ids of one embedding lookup: the table gradient adds at most
// that many int8 errors into one element, and (2**24 - 1) * 128 < 2**31.
constexpr int64_t kEmbeddingMaxLookups = (int64_t{1} << 24) - 1;

// ---- batch normalization (spec section 8) ----

// Rows per channel a training batch may have: n * sum(q**2) <= n**2 * 2**14
// stays below 2**60 and |n * q - sum(q)| below 2**31.
constexpr int64_t kNormMaxRows = int64_t{1} << 23;
// Fraction bits of the normalised value xhat.
constexpr int kNormFractionBits = 8;
// momentum is applied as round(momentum * 2**16) / 2**16.
constexpr int kNormMomentumBits = 16;
// Moving statistics are int32 mantissas of at most this many bits.
constexpr int kNormStatisticBits = 30;
// epsilon's mantissa lies in [2**14, 2**15).
constexpr int kNormEpsilonBits = 15;
// Exponents of the moving statistics: the variance's is about 2 e_x - 16,
// below the DFP range, so they have their own, wider one.
constexpr int kNormStatisticExponentLimit = 320;

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_LIMITS_H_

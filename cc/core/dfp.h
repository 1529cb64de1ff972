// Dynamic fixed point (DFP): integer mantissas sharing one power-of-two
// exponent. Bit widths, the four rounding modes, requantize and the exact
// float <-> DFP boundary conversions (docs/algorithms.md sections 1 and 2).
#ifndef KERAS_INT_CC_CORE_DFP_H_
#define KERAS_INT_CC_CORE_DFP_H_

#include <cstdint>
#include <string>

#include "cc/core/limits.h"
#include "cc/core/parallel.h"
#include "cc/core/rounding.h"
#include "cc/core/status.h"

namespace keras_int {

// Parses "nearest", "pseudo_stochastic", "stochastic", "truncate".
bool ParseRounding(const std::string& name, Rounding* rounding);

// bit_length(max |acc|).
int MaxBitLength(const int32_t* acc, int64_t n, const ParallelFor& parallel_for = SerialFor);
int MaxBitLength(const int64_t* acc, int64_t n, const ParallelFor& parallel_for = SerialFor);

// requantize (spec sections 2 and 16): an int32 (or, for the DFP16 products,
// int64) accumulator at exponent acc_exponent -> mantissas of T's width in
// out (int8_t or int16_t) and their exponent.
template <typename T, typename Acc>
Status Requantize(const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent, const ParallelFor& parallel_for);

// "bits must be 8 or 16" unless it is.
Status CheckMantissaBits(int bits);

// Requantize to `bits` (8 or 16) and dequantize in one pass: the float32
// carrier of the requantized mantissas (and their exponent), without a
// mantissa temporary. For int32 accumulators out may be acc's own memory:
// the carrier then replaces the accumulator.
Status RequantizeToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, const ParallelFor& parallel_for,
                           int bits = 8);
Status RequantizeToCarrier(const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, const ParallelFor& parallel_for,
                           int bits = 8);

// RequantizeToCarrier followed by ReLU (cc/core/relu.h) in the same pass:
// the exponent is decided on every value (as the two steps apart would),
// the carrier keeps the positive mantissas, and `mask`
// (ReluMaskWords(n) words) gets bit i % 32 of word i / 32 set where
// element i is positive. The epilogue of a layer op with activation="relu".
Status RequantizeReluToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask,
                               const ParallelFor& parallel_for, int bits = 8);
Status RequantizeReluToCarrier(const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                               RoundingSeed seed, float* out, int* out_exponent, uint32_t* mask,
                               const ParallelFor& parallel_for, int bits = 8);

// requantize's rounding pass alone, for callers that decide the exponent
// themselves (requantize_channels over rows of one exponent each, cc/core/
// norm_emit.h): acc[begin, end) shifted right by s (1 <= s <= 63) with
// `rounding`, clipped to `bits` (8 or 16), written as the float32 carrier
// mantissa * scale into out[begin, end); element i draws stochastic word i.
// Vectorised for the deterministic modes, as requantize is.
void ShiftToCarrier(const int64_t* acc, int64_t begin, int64_t end, int s, int bits, Rounding rounding,
                    RoundingSeed seed, float scale, float* out);

// Shifts every element right by `shift` with rounding (shift <= 0: copy),
// clips to [-limit, limit].
Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                        RoundingSeed seed, int32_t limit, int32_t* out);

// quantize (spec section 1): exact float -> DFP at the model boundary and for
// float32 carriers. e = ceil(log2(max|x|)) - (bits - 1); when max|x| is a power
// of two and every value is an integer multiple of 2**(e + 1), e + 1 is used
// instead so that no value is clipped (this makes reading a carrier lossless).
// The exponent quantize starts from, ceil(log2(max|x|)) - (bits - 1), for max|x|
// given as its (finite, non-zero) bit pattern; *power_of_two tells whether
// max|x| is an exact power of two (then e + 1 may be exact, see below).
int QuantizeExponent(uint32_t max_bits, int bits, bool* power_of_two);

template <typename T>
Status Quantize(const float* x, int64_t n, T* q, int* exponent,
                const ParallelFor& parallel_for = SerialFor);

// dequantize: q * 2**e as float32 (exact in the exponent range above).
template <typename T>
Status Dequantize(const T* q, int64_t n, int exponent, float* out,
                  const ParallelFor& parallel_for = SerialFor);

Status CheckExponent(const char* name, int64_t exponent, int lo, int hi);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_DFP_H_

// DFP conversions on the GPU: the twins of cc/core/dfp.h.
#ifndef KERAS_INT_CC_GPU_DFP_H_
#define KERAS_INT_CC_GPU_DFP_H_

#include <cstdint>

#include "cc/core/rounding.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

template <typename T>
Status Quantize(const Context& ctx, const float* x, int64_t n, T* q, int* exponent);
template <typename T>
Status Dequantize(const Context& ctx, const T* q, int64_t n, int exponent, float* out);
template <typename T>
Status Requantize(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                  Rounding rounding, RoundingSeed seed, T* out, int* out_exponent);
// Requantize to int8 and dequantize in one pass (as the core's).
// out may be acc's own memory (each element is read, then written, by one thread).
Status RequantizeToCarrier(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                           Rounding rounding, RoundingSeed seed, float* out, int* out_exponent, int bits = 8);
Status RoundShiftTensor(const Context& ctx, const int32_t* in, int64_t n, int shift,
                        Rounding rounding, RoundingSeed seed, int32_t limit, int32_t* out);
Status MaxBitLength(const Context& ctx, const int32_t* acc, int64_t n, int* bits);

// DFP16: the same from int64 accumulators.
Status MaxBitLength(const Context& ctx, const int64_t* acc, int64_t n, int* bits);
template <typename T>
Status Requantize(const Context& ctx, const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent);
Status RequantizeToCarrier(const Context& ctx, const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, int bits);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_DFP_H_

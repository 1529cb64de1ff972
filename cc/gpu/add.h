// Residual add and bias on the GPU: the twins of cc/core/add.h.
#ifndef KERAS_INT_CC_GPU_ADD_H_
#define KERAS_INT_CC_GPU_ADD_H_

#include <cstdint>

#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

Status AlignedAdd(const Context& ctx, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                  int32_t* acc, int* acc_exponent);
Status AddBias(const Context& ctx, int32_t* acc, int64_t rows, int64_t channels,
               const int32_t* bias, int shift);
// DFP16: int16 operands into int64, and the bias on int64 sums.
Status AlignedAdd(const Context& ctx, const int16_t* a, int ea, const int16_t* b, int eb, int64_t n, int64_t* acc,
                  int* acc_exponent);
Status AddBias(const Context& ctx, int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_ADD_H_

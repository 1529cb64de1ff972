// Integer GELU on the GPU: the twins of cc/core/gelu.h (the 256-entry
// table built on the device from the same element functions).
#ifndef KERAS_INT_CC_GPU_GELU_H_
#define KERAS_INT_CC_GPU_GELU_H_

#include <cstdint>

#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

Status GeluAccumulate(const Context& ctx, const int8_t* q, int64_t n, int exponent, int32_t* acc);
Status GeluGradAccumulate(const Context& ctx, const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent,
                          int32_t* acc);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_GELU_H_

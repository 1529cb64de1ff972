// ReLU on float32 carriers (their bit patterns) on the GPU: the twins of
// cc/core/relu.h. y may be x, dx may be dy; one mask bit per element.
#ifndef KERAS_INT_CC_GPU_RELU_H_
#define KERAS_INT_CC_GPU_RELU_H_

#include <cstdint>

#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

Status Relu(const Context& ctx, const float* x, int64_t n, float* y, uint32_t* mask);
Status ReluGrad(const Context& ctx, const float* dy, const uint32_t* mask, int64_t n, float* dx);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_RELU_H_

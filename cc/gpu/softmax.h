// Integer softmax on the GPU: the twins of cc/core/softmax.h. SoftmaxGrad
// needs SoftmaxGradWorkspaceBytes(rows) of device workspace (each row's
// dot product) and copies one word back (the result exponent).
#ifndef KERAS_INT_CC_GPU_SOFTMAX_H_
#define KERAS_INT_CC_GPU_SOFTMAX_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/softmax.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

Status SoftmaxProbabilities(const Context& ctx, const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n,
                            int exponent, const SoftmaxScale& scale, int32_t* probabilities);

size_t SoftmaxGradWorkspaceBytes(int64_t rows);
Status SoftmaxGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* y, int y_exponent,
                   int64_t rows, int64_t n, const SoftmaxScale& scale, float* dx, int* dx_exponent, void* workspace);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_SOFTMAX_H_

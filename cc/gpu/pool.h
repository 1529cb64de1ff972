// Pooling on the GPU: the twins of cc/core/pool.h.
#ifndef KERAS_INT_CC_GPU_POOL_H_
#define KERAS_INT_CC_GPU_POOL_H_

#include <cstdint>

#include "cc/core/pool.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

Status MaxPool(const Context& ctx, const PoolGeometry& g, const int8_t* x, int8_t* y);
Status MaxPoolGrad(const Context& ctx, const PoolGeometry& g, const int8_t* x, const int8_t* dy,
                   int32_t* dx);
Status MaxPoolCarrier(const Context& ctx, const PoolGeometry& g, const float* x, float* y, uint8_t* which);
Status MaxPoolCarrierGrad(const Context& ctx, const PoolGeometry& g, const float* dy, const uint8_t* which,
                          float* dx);
// T, Acc: int8_t, int32_t, or int16_t, int64_t (DFP16).
template <typename T, typename Acc>
Status AvgPool(const Context& ctx, const PoolGeometry& g, const T* x, Acc* y);
template <typename T, typename Acc>
Status AvgPoolGrad(const Context& ctx, const PoolGeometry& g, const T* dy, Acc* dx);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_POOL_H_

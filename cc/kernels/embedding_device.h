// Embedding lookups and table gradients (cc/core/embedding.h;
// cc/gpu/embedding.h) on either device.
#ifndef KERAS_INT_CC_KERNELS_EMBEDDING_DEVICE_H_
#define KERAS_INT_CC_KERNELS_EMBEDDING_DEVICE_H_

#include <cstdint>

#include "cc/core/embedding.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/embedding.h"
#endif

namespace keras_int {

template <typename Id>
Status EmbeddingLookup(CpuContext& device, const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim,
                       int exponent, float* out) {
  return EmbeddingLookup<Id>(ids, n, table, vocab, dim, exponent, out, device.parallel_for());
}
template <typename Id>
Status EmbeddingGrad(CpuContext& device, const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,
                     int32_t* dtable) {
  return EmbeddingGrad<Id>(err, ids, n, vocab, dim, dtable, device.parallel_for());
}

#if KERAS_INT_CUDA
template <typename Id>
Status EmbeddingLookup(GpuContext& device, const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim,
                       int exponent, float* out) {
  return gpu::EmbeddingLookup<Id>(device.gpu(), ids, n, table, vocab, dim, exponent, out);
}
template <typename Id>
Status EmbeddingGrad(GpuContext& device, const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,
                     int32_t* dtable) {
  return gpu::EmbeddingGrad<Id>(device.gpu(), err, ids, n, vocab, dim, dtable);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_EMBEDDING_DEVICE_H_

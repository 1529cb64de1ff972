// Embedding lookups and their table gradient on the GPU: the twins of
// cc/core/embedding.h. Both check the ids on the device and copy one word
// back (the first bad position) to name it in the error.
#ifndef KERAS_INT_CC_GPU_EMBEDDING_H_
#define KERAS_INT_CC_GPU_EMBEDDING_H_

#include <cstdint>

#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

template <typename Id>
Status EmbeddingLookup(const Context& ctx, const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim,
                       int exponent, float* out);
template <typename Id>
Status EmbeddingGrad(const Context& ctx, const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,
                     int32_t* dtable);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_EMBEDDING_H_

// Embedding tables of int8 rows (docs/algorithms.md section 12): the
// lookup, an exact copy of rows into a float32 carrier, and the table
// gradient, an int32 scatter-add of the int8 errors of the looked-up rows.
#ifndef KERAS_INT_CC_CORE_EMBEDDING_H_
#define KERAS_INT_CC_CORE_EMBEDDING_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

// At most kEmbeddingMaxLookups ids per call: 2**24 errors of at most 128
// sum within int32 in any row of the gradient.
Status CheckEmbeddingLookups(int64_t n);

// The first id outside [0, vocab) as an error naming it and its position.
Status EmbeddingIdError(int64_t position, int64_t id, int64_t vocab);

// out[i, :] = table[ids[i], :] * 2**exponent (float32, exact), ids int32 or
// int64, table [vocab, dim].
template <typename Id>
Status EmbeddingLookup(const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim, int exponent,
                       float* out, const ParallelFor& parallel_for = SerialFor);

// dtable [vocab, dim] = sum over i with ids[i] = v of err[i, :] (int32).
template <typename Id>
Status EmbeddingGrad(const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim, int32_t* dtable,
                     const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_EMBEDDING_H_

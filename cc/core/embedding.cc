#include "cc/core/embedding.h"

#include <algorithm>
#include <string>

#include "cc/core/carrier_element.h"
#include "cc/core/limits.h"

namespace keras_int {

namespace {

template <typename Id>
Status CheckIds(const Id* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || static_cast<int64_t>(ids[i]) >= vocab) return EmbeddingIdError(i, ids[i], vocab);
  }
  return Status::OK();
}

}  // namespace

Status CheckEmbeddingLookups(int64_t n) {
  if (n > kEmbeddingMaxLookups) {
    return Status::Error("embedding: " + std::to_string(n) + " ids in one call, more than the " +
                         std::to_string(kEmbeddingMaxLookups) + " whose gradient sums fit int32");
  }
  return Status::OK();
}

Status EmbeddingIdError(int64_t position, int64_t id, int64_t vocab) {
  return Status::Error("embedding: id " + std::to_string(id) + " at position " + std::to_string(position) +
                       " is out of range [0, " + std::to_string(vocab) + ")");
}

template <typename Id>
Status EmbeddingLookup(const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim, int exponent,
                       float* out, const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckIds(ids, n, vocab));
  const float unit = PowerOfTwo(exponent);
  parallel_for(n, dim * 2, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int8_t* row = table + static_cast<int64_t>(ids[i]) * dim;
      float* o = out + i * dim;
      for (int64_t c = 0; c < dim; ++c) o[c] = static_cast<float>(row[c]) * unit;
    }
  });
  return Status::OK();
}

template <typename Id>
Status EmbeddingGrad(const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim, int32_t* dtable,
                     const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckEmbeddingLookups(n));
  KERAS_INT_RETURN_IF_ERROR(CheckIds(ids, n, vocab));
  // Each shard owns a range of columns of every row, so no two shards add
  // into one element; a sum of at most kEmbeddingMaxLookups int8 errors
  // fits int32.
  parallel_for(dim, std::max<int64_t>(1, n + vocab), [&](int64_t begin, int64_t end) {
    for (int64_t v = 0; v < vocab; ++v) std::fill(dtable + v * dim + begin, dtable + v * dim + end, 0);
    for (int64_t i = 0; i < n; ++i) {
      int32_t* row = dtable + static_cast<int64_t>(ids[i]) * dim;
      const int8_t* e = err + i * dim;
      for (int64_t c = begin; c < end; ++c) row[c] += e[c];
    }
  });
  return Status::OK();
}

template Status EmbeddingLookup<int32_t>(const int32_t*, int64_t, const int8_t*, int64_t, int64_t, int, float*,
                                         const ParallelFor&);
template Status EmbeddingLookup<int64_t>(const int64_t*, int64_t, const int8_t*, int64_t, int64_t, int, float*,
                                         const ParallelFor&);
template Status EmbeddingGrad<int32_t>(const int8_t*, const int32_t*, int64_t, int64_t, int64_t, int32_t*,
                                       const ParallelFor&);
template Status EmbeddingGrad<int64_t>(const int8_t*, const int64_t*, int64_t, int64_t, int64_t, int32_t*,
                                       const ParallelFor&);

}  // namespace keras_int

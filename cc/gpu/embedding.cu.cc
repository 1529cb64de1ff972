// Embedding lookups on the GPU: one pass checks the ids (atomic minimum of
// the first bad position, read back), then a copy kernel (lookup) or
// atomic int32 adds (gradient: integer sums are exact in any order).
#include <string>

#include "cc/core/carrier_element.h"
#include "cc/core/embedding.h"
#include "cc/gpu/embedding.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

template <typename Id>
__global__ void CheckIdsKernel(const Id* ids, int64_t n, int64_t vocab, unsigned long long* first_bad) {
  KI_GRID_STRIDE(i, n) {
    if (ids[i] < 0 || static_cast<int64_t>(ids[i]) >= vocab) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

template <typename Id>
Status CheckIds(const Context& ctx, const Id* ids, int64_t n, int64_t vocab) {
  if (n == 0) return Status::OK();
  unsigned long long* first_bad = static_cast<unsigned long long*>(ctx.scratch);
  KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(first_bad, 0xFF, sizeof(*first_bad), StreamOf(ctx)), "memset");
  CheckIdsKernel<Id><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(ids, n, vocab, first_bad);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("embedding"));
  unsigned long long bad = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, first_bad, &bad));
  if (bad == ~0ull) return Status::OK();
  Id id = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, ids + bad, &id));
  return EmbeddingIdError(static_cast<int64_t>(bad), static_cast<int64_t>(id), vocab);
}

template <typename Id>
__global__ void LookupKernel(const Id* ids, int64_t n, const int8_t* table, int64_t dim, float unit, float* out) {
  KI_GRID_STRIDE(i, n * dim) {
    out[i] = static_cast<float>(table[static_cast<int64_t>(ids[i / dim]) * dim + i % dim]) * unit;
  }
}

template <typename Id>
__global__ void GradKernel(const int8_t* err, const Id* ids, int64_t n, int64_t dim, int32_t* dtable) {
  KI_GRID_STRIDE(i, n * dim) {
    if (err[i] != 0) atomicAdd(&dtable[static_cast<int64_t>(ids[i / dim]) * dim + i % dim], int32_t{err[i]});
  }
}

}  // namespace

template <typename Id>
Status EmbeddingLookup(const Context& ctx, const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim,
                       int exponent, float* out) {
  KERAS_INT_RETURN_IF_ERROR(CheckIds(ctx, ids, n, vocab));
  if (n * dim == 0) return Status::OK();
  LookupKernel<Id><<<BlocksFor(n * dim), kThreads, 0, StreamOf(ctx)>>>(ids, n, table, dim, PowerOfTwo(exponent), out);
  return LaunchStatus("embedding");
}

template <typename Id>
Status EmbeddingGrad(const Context& ctx, const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,
                     int32_t* dtable) {
  KERAS_INT_RETURN_IF_ERROR(CheckEmbeddingLookups(n));
  KERAS_INT_RETURN_IF_ERROR(CheckIds(ctx, ids, n, vocab));
  if (vocab * dim == 0) return Status::OK();
  KI_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(dtable, 0, static_cast<size_t>(vocab * dim) * sizeof(int32_t), StreamOf(ctx)), "memset");
  if (n * dim == 0) return Status::OK();
  GradKernel<Id><<<BlocksFor(n * dim), kThreads, 0, StreamOf(ctx)>>>(err, ids, n, dim, dtable);
  return LaunchStatus("embedding_grad");
}

template Status EmbeddingLookup<int32_t>(const Context&, const int32_t*, int64_t, const int8_t*, int64_t, int64_t, int,
                                         float*);
template Status EmbeddingLookup<int64_t>(const Context&, const int64_t*, int64_t, const int8_t*, int64_t, int64_t, int,
                                         float*);
template Status EmbeddingGrad<int32_t>(const Context&, const int8_t*, const int32_t*, int64_t, int64_t, int64_t,
                                       int32_t*);
template Status EmbeddingGrad<int64_t>(const Context&, const int8_t*, const int64_t*, int64_t, int64_t, int64_t,
                                       int32_t*);

}  // namespace gpu
}  // namespace keras_int

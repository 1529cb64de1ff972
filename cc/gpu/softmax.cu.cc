// Integer softmax on the GPU, one block per row (block-strided over rows):
// the row maximum and the numerators' sum by shared-memory reductions (int64
// sums are exact in any order), then each thread writes its entries'
// probabilities. The backward pass: one block per row for D = sum(y * err),
// an atomic maximum of the values' bit lengths, read back, then an
// elementwise emit. Element arithmetic: cc/core/softmax_element.h.
#include <string>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/limits.h"
#include "cc/core/requantize_element.h"
#include "cc/core/softmax_element.h"
#include "cc/gpu/launch.cuh"
#include "cc/gpu/softmax.h"

namespace keras_int {
namespace gpu {

namespace {

unsigned int RowBlocks(int64_t rows) { return static_cast<unsigned int>(rows < 65535 ? rows : 65535); }

// Tree reductions over the block's threads (kThreads, a power of two).
__device__ int32_t BlockMax(int32_t v, int32_t* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] = max(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  const int32_t result = shared[0];
  __syncthreads();
  return result;
}

__device__ int64_t BlockSum(int64_t v, int64_t* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const int64_t result = shared[0];
  __syncthreads();
  return result;
}

__global__ void ProbabilitiesKernel(const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n, int exponent,
                                    int64_t multiplier, int shift, int32_t* probabilities) {
  __shared__ int32_t max_shared[kThreads];
  __shared__ int64_t sum_shared[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int8_t* row = q + r * n;
    const uint8_t* keep = mask == nullptr ? nullptr : mask + r * n;
    int32_t* out = probabilities + r * n;
    int32_t local_max = -129;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      if (keep == nullptr || keep[i]) local_max = max(local_max, static_cast<int32_t>(row[i]));
    }
    const int32_t q_max = BlockMax(local_max, max_shared);
    if (q_max == -129) {  // every entry masked
      for (int64_t i = threadIdx.x; i < n; i += kThreads) out[i] = 0;
      continue;
    }
    int64_t local_sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      if (keep == nullptr || keep[i]) {
        local_sum += SoftmaxNumerator(SoftmaxExpArgument(q_max - row[i], exponent, multiplier, shift));
      }
    }
    const int64_t sum = BlockSum(local_sum, sum_shared);
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const int64_t p = keep == nullptr || keep[i]
                            ? SoftmaxNumerator(SoftmaxExpArgument(q_max - row[i], exponent, multiplier, shift))
                            : 0;
      out[i] = SoftmaxProbability(p, sum);
    }
  }
}

__global__ void DotKernel(const int8_t* err, const int8_t* y, int64_t rows, int64_t n, int64_t* dot) {
  __shared__ int64_t sum_shared[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int64_t local = 0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) local += int32_t{y[r * n + i]} * err[r * n + i];
    const int64_t d = BlockSum(local, sum_shared);
    if (threadIdx.x == 0) dot[r] = d;
  }
}

__global__ void GradBitsKernel(const int8_t* err, const int8_t* y, int y_exponent, int64_t rows, int64_t n,
                               const int64_t* dot, int64_t multiplier, uint32_t* bits) {
  uint32_t best = 0;
  KI_GRID_STRIDE(i, rows * n) {
    const int64_t v = SoftmaxGradValue(y[i], err[i], y_exponent, dot[i / n], multiplier);
    const uint32_t b = static_cast<uint32_t>(BitLength64(Magnitude64(v)));
    best = b > best ? b : best;
  }
  AtomicMaxWarp(bits, best);
}

__global__ void GradEmitKernel(const int8_t* err, const int8_t* y, int y_exponent, int64_t rows, int64_t n,
                               const int64_t* dot, int64_t multiplier, int value_exponent, int exponent, float unit,
                               float* dx) {
  KI_GRID_STRIDE(i, rows * n) {
    const int64_t v = SoftmaxGradValue(y[i], err[i], y_exponent, dot[i / n], multiplier);
    dx[i] = static_cast<float>(RequantizeValue(v, value_exponent, exponent, Rounding::kNearest, 0u)) * unit;
  }
}

}  // namespace

Status SoftmaxProbabilities(const Context& ctx, const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n,
                            int exponent, const SoftmaxScale& scale, int32_t* probabilities) {
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxScale(scale));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxRow(n));
  if (rows == 0 || n == 0) return Status::OK();
  ProbabilitiesKernel<<<RowBlocks(rows), kThreads, 0, StreamOf(ctx)>>>(q, mask, rows, n, exponent, scale.multiplier,
                                                                      scale.shift, probabilities);
  return LaunchStatus("softmax");
}

size_t SoftmaxGradWorkspaceBytes(int64_t rows) { return rows <= 0 ? 0 : static_cast<size_t>(rows) * sizeof(int64_t); }

Status SoftmaxGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* y, int y_exponent,
                   int64_t rows, int64_t n, const SoftmaxScale& scale, float* dx, int* dx_exponent, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxScale(scale));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxRow(n));
  KERAS_INT_RETURN_IF_ERROR(CheckSoftmaxOutputExponent(y_exponent));
  *dx_exponent = 0;
  if (rows == 0 || n == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  int64_t* dot = static_cast<int64_t*>(workspace);
  DotKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(err, y, rows, n, dot);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("softmax_grad"));
  uint32_t* bits;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &bits));
  GradBitsKernel<<<BlocksFor(rows * n), kThreads, 0, stream>>>(err, y, y_exponent, rows, n, dot, scale.multiplier,
                                                               bits);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("softmax_grad"));
  uint32_t top = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, bits, &top));
  const int value_exponent = 2 * y_exponent + err_exponent - scale.shift;
  if (top == 0) {
    return CudaStatus(cudaMemsetAsync(dx, 0, static_cast<size_t>(rows * n) * sizeof(float), stream), "memset");
  }
  const int exponent = static_cast<int>(top) + value_exponent - 7;
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("softmax_grad: result exponent", exponent, kMinExponent, kMaxExponent));
  *dx_exponent = exponent;
  GradEmitKernel<<<BlocksFor(rows * n), kThreads, 0, stream>>>(err, y, y_exponent, rows, n, dot, scale.multiplier,
                                                               value_exponent, exponent, PowerOfTwo(exponent), dx);
  return LaunchStatus("softmax_grad");
}

}  // namespace gpu
}  // namespace keras_int

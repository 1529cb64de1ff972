// Residual add and bias on the GPU (add.h).
#include <climits>
#include <string>

#include "cc/core/add.h"
#include "cc/core/add_element.h"
#include "cc/gpu/add.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

__global__ void AlignedAddKernel(const int8_t* a, const int8_t* b, int64_t n, int left, int right,
                                 int32_t* acc) {
  KI_GRID_STRIDE(i, n) { acc[i] = AlignedAddElement(a[i], b[i], left, right); }
}

// Raises the flag when any element is non-zero.
__global__ void AnyNonZeroKernel(const int8_t* x, int64_t n, uint32_t* nonzero) {
  uint32_t found = 0;
  KI_GRID_STRIDE(i, n) { found |= x[i] != 0; }
  AtomicOrWarp(nonzero, found);
}

// Adds the aligned bias; a sum outside int32 leaves acc unchanged there and
// raises the flag.
__global__ void AddBiasKernel(int32_t* acc, int64_t n, int64_t channels, const int32_t* bias,
                              int shift, uint32_t* overflow) {
  uint32_t bad = 0;
  KI_GRID_STRIDE(i, n) {
    const int64_t sum = acc[i] + AlignedBias(bias[i % channels], shift);
    if (sum > INT32_MAX || sum < INT32_MIN) {
      bad = 1;
    } else {
      acc[i] = static_cast<int32_t>(sum);
    }
  }
  AtomicOrWarp(overflow, bad);
}

}  // namespace

Status AlignedAdd(const Context& ctx, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                  int32_t* acc, int* acc_exponent) {
  bool larger_is_zero = true;
  if (n > 0 && AlignmentNeedsZeroTest(ea, eb)) {
    uint32_t* nonzero;
    KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &nonzero));
    AnyNonZeroKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(ea > eb ? a : b, n, nonzero);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("add"));
    uint32_t host = 0;
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, nonzero, &host));
    larger_is_zero = host == 0;
  }
  const AddAlignment align = AlignExponents(ea, eb, larger_is_zero);
  *acc_exponent = align.exponent;
  if (n == 0) return Status::OK();
  AlignedAddKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(
      align.swap ? b : a, align.swap ? a : b, n, align.left, align.right, acc);
  return LaunchStatus("add");
}

Status AddBias(const Context& ctx, int32_t* acc, int64_t rows, int64_t channels,
               const int32_t* bias, int shift) {
  if (shift > 31) {
    return Status::Error("bias: alignment shift " + std::to_string(shift) +
                         " is too large (input exponent below -31)");
  }
  const int64_t n = rows * channels;
  if (n == 0) return Status::OK();
  uint32_t* overflow;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &overflow));
  AddBiasKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(acc, n, channels, bias, shift, overflow);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("bias"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, overflow, &host));
  if (host) return Status::Error("int32 overflow: accumulator plus bias leaves the int32 range");
  return Status::OK();
}

}  // namespace gpu
}  // namespace keras_int

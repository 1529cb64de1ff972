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

__global__ void AlignedAdd64Kernel(const int16_t* a, const int16_t* b, int64_t n, int left, int right,
                                   int64_t* acc) {
  KI_GRID_STRIDE(i, n) { acc[i] = AlignedAddElement64(a[i], b[i], left, right); }
}

// Raises the flag when any element is non-zero.
template <typename T>
__global__ void AnyNonZeroKernel(const T* x, int64_t n, uint32_t* nonzero) {
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

// DFP16: into int64 sums; a sum outside int64 raises the flag.
__global__ void AddBias64Kernel(int64_t* acc, int64_t n, int64_t channels, const int32_t* bias, int shift,
                                uint32_t* overflow) {
  uint32_t bad = 0;
  KI_GRID_STRIDE(i, n) {
    const int64_t a = acc[i], b = AlignedBias(bias[i % channels], shift);
    const int64_t sum = static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
    if (((a ^ sum) & (b ^ sum)) < 0) {  // the sign of both addends differs from the wrapped sum's
      bad = 1;
    } else {
      acc[i] = sum;
    }
  }
  AtomicOrWarp(overflow, bad);
}

// Whether the operand with the larger exponent is all zero (only asked
// where the exponents are too far apart to align exactly).
template <typename T>
Status LargerIsZero(const Context& ctx, const T* larger, int64_t n, bool* zero) {
  uint32_t* nonzero;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &nonzero));
  AnyNonZeroKernel<T><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(larger, n, nonzero);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("add"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, nonzero, &host));
  *zero = host == 0;
  return Status::OK();
}

}  // namespace

Status AlignedAdd(const Context& ctx, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                  int32_t* acc, int* acc_exponent) {
  bool larger_is_zero = true;
  if (n > 0 && AlignmentNeedsZeroTest(ea, eb)) {
    KERAS_INT_RETURN_IF_ERROR(LargerIsZero(ctx, ea > eb ? a : b, n, &larger_is_zero));
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

Status AlignedAdd(const Context& ctx, const int16_t* a, int ea, const int16_t* b, int eb, int64_t n, int64_t* acc,
                  int* acc_exponent) {
  bool larger_is_zero = true;
  if (n > 0 && AlignmentNeedsZeroTest(ea, eb, kMaxAlignShift16)) {
    KERAS_INT_RETURN_IF_ERROR(LargerIsZero(ctx, ea > eb ? a : b, n, &larger_is_zero));
  }
  const AddAlignment align = AlignExponents(ea, eb, larger_is_zero, kMaxAlignShift16);
  *acc_exponent = align.exponent;
  if (n == 0) return Status::OK();
  AlignedAdd64Kernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(align.swap ? b : a, align.swap ? a : b, n,
                                                                  align.left, align.right, acc);
  return LaunchStatus("add");
}

Status AddBias(const Context& ctx, int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  if (shift > 31) {
    return Status::Error("bias: alignment shift " + std::to_string(shift) +
                         " is too large (input exponent below -31)");
  }
  const int64_t n = rows * channels;
  if (n == 0) return Status::OK();
  uint32_t* overflow;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &overflow));
  AddBias64Kernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(acc, n, channels, bias, shift, overflow);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("bias"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, overflow, &host));
  if (host) return Status::Error("int64 overflow: accumulator plus bias leaves int64");
  return Status::OK();
}

}  // namespace gpu
}  // namespace keras_int

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

// Adds the aligned bias; a sum outside the accumulator's type (int32, or
// int64 for DFP16) leaves acc unchanged there and raises the flag.
template <typename Acc>
__global__ void AddBiasKernel(Acc* acc, int64_t n, int64_t channels, const int32_t* bias, int shift,
                              uint32_t* overflow) {
  uint32_t bad = 0;
  KI_GRID_STRIDE(i, n) { bad |= !AddWithinRange(acc[i], AlignedBias(bias[i % channels], shift), &acc[i]); }
  AtomicOrWarp(overflow, bad);
}

template <typename Acc>
Status AddBiasRows(const Context& ctx, Acc* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift,
                   const char* type) {
  if (shift > 31) {
    return Status::Error("bias: alignment shift " + std::to_string(shift) +
                         " is too large (input exponent below -31)");
  }
  const int64_t n = rows * channels;
  if (n == 0) return Status::OK();
  uint32_t* overflow;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &overflow));
  AddBiasKernel<Acc><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(acc, n, channels, bias, shift, overflow);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("bias"));
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, overflow, &host));
  if (host) return Status::Error(std::string(type) + " overflow: accumulator plus bias leaves " + type);
  return Status::OK();
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
  return AddBiasRows(ctx, acc, rows, channels, bias, shift, "int32");
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
  return AddBiasRows(ctx, acc, rows, channels, bias, shift, "int64");
}

}  // namespace gpu
}  // namespace keras_int

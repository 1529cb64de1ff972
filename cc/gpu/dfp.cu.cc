// DFP conversions on the GPU (dfp.h).
#include <string>
#include <type_traits>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/philox.h"
#include "cc/core/rounding.h"
#include "cc/gpu/dfp.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

__global__ void MaxAbsBitsKernel(const float* x, int64_t n, uint32_t* max_bits) {
  uint32_t m = 0;
  KI_GRID_STRIDE(i, n) {
    const uint32_t bits = FloatBits(x[i]) & 0x7FFFFFFFu;
    m = bits > m ? bits : m;
  }
  AtomicMaxWarp(max_bits, m);
}

// Index of the first NaN/Inf, as an atomic minimum (the scratch word starts
// at all ones).
__global__ void FirstNonFiniteKernel(const float* x, int64_t n, unsigned long long* first) {
  KI_GRID_STRIDE(i, n) {
    if ((FloatBits(x[i]) & 0x7F800000u) == 0x7F800000u) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

__global__ void NotWholeKernel(const float* x, int64_t n, int k, uint32_t* not_whole) {
  uint32_t any = 0;
  KI_GRID_STRIDE(i, n) { any |= !IsWholeAfterScaling(x[i], k); }
  AtomicOrWarp(not_whole, any);
}

template <typename T>
__global__ void QuantizeKernel(const float* x, int64_t n, float factor, int32_t limit, T* q) {
  KI_GRID_STRIDE(i, n) { q[i] = static_cast<T>(QuantizeElement(x[i], factor, limit)); }
}

template <typename T>
__global__ void DequantizeKernel(const T* q, int64_t n, float factor, float* out) {
  KI_GRID_STRIDE(i, n) { out[i] = static_cast<float>(q[i]) * factor; }
}

__global__ void MagnitudeOrKernel(const int32_t* x, int64_t n, uint32_t* any) {
  uint32_t v = 0;
  KI_GRID_STRIDE(i, n) { v |= Magnitude(x[i]); }
  AtomicOrWarp(any, v);
}

// A requantized mantissa as stored: as an int8/int16, or as a float32
// carrier (times `scale`), as on the CPU.
template <typename Out>
__device__ __forceinline__ Out Stored(int32_t v, float scale) {
  if constexpr (std::is_same_v<Out, float>) {
    return static_cast<float>(v) * scale;
  } else {
    return static_cast<Out>(v);
  }
}

// Acc: int32_t, or int64_t (the DFP16 products).
template <Rounding kMode, typename Acc, typename Out>
__global__ void ShiftAndClipKernel(const Acc* acc, int64_t n, int s, RoundingSeed seed,
                                   uint32_t limit, float scale, Out* out) {
  KI_GRID_STRIDE(i, n) {
    const uint32_t random =
        kMode == Rounding::kStochastic ? StochasticWord(seed.key, seed.step, static_cast<uint64_t>(i)) : 0;
    out[i] = Stored<Out>(ShiftAndClipElement<kMode>(acc[i], s, random, limit), scale);
  }
}

template <typename Acc, typename Out>
__global__ void NarrowKernel(const Acc* acc, int64_t n, float scale, Out* out) {
  KI_GRID_STRIDE(i, n) { out[i] = Stored<Out>(static_cast<int32_t>(acc[i]), scale); }
}

// DFP16: int64 accumulators.
__global__ void MagnitudeOr64Kernel(const int64_t* x, int64_t n, uint64_t* any) {
  uint64_t v = 0;
  KI_GRID_STRIDE(i, n) { v |= Magnitude64(x[i]); }
  AtomicOr64(any, v);
}

__global__ void RoundShiftKernel(const int32_t* in, int64_t n, int shift, Rounding rounding,
                                 RoundingSeed seed, int32_t limit, int32_t* out) {
  KI_GRID_STRIDE(i, n) {
    const int32_t v = RoundShift(in[i], shift, rounding, RandomWordFor(rounding, seed, i));
    out[i] = v > limit ? limit : (v < -limit ? -limit : v);
  }
}

}  // namespace

Status MaxBitLength(const Context& ctx, const int32_t* acc, int64_t n, int* bits) {
  uint32_t* any;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &any));
  if (n > 0) {
    MagnitudeOrKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(acc, n, any);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("bit_length"));
  }
  uint32_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, any, &host));
  *bits = BitLength(host);
  return Status::OK();
}

Status MaxBitLength(const Context& ctx, const int64_t* acc, int64_t n, int* bits) {
  uint64_t* any;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &any));
  if (n > 0) {
    MagnitudeOr64Kernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(acc, n, any);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("bit_length"));
  }
  uint64_t host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, any, &host));
  *bits = BitLength64(host);
  return Status::OK();
}

template <typename T>
Status Quantize(const Context& ctx, const float* x, int64_t n, T* q, int* exponent) {
  constexpr int kBits = sizeof(T) * 8;
  constexpr int32_t kLimit = (1 << (kBits - 1)) - 1;
  const cudaStream_t stream = StreamOf(ctx);
  uint32_t* words;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &words));
  uint32_t max_bits = 0;
  if (n > 0) {
    MaxAbsBitsKernel<<<BlocksFor(n), kThreads, 0, stream>>>(x, n, words);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("quantize"));
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, words, &max_bits));
  }
  if (max_bits >= 0x7F800000u) {
    auto* first = static_cast<unsigned long long*>(ctx.scratch);
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(first, 0xFF, sizeof(*first), stream), "memset");
    FirstNonFiniteKernel<<<BlocksFor(n), kThreads, 0, stream>>>(x, n, first);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("quantize"));
    unsigned long long index = 0;
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, first, &index));
    return Status::Error("quantize: input contains NaN or Inf (element " + std::to_string(index) + ")");
  }
  if (max_bits < kSmallestNormalBits) {  // all zero or subnormal: counts as zero
    *exponent = 0;
    return CudaStatus(cudaMemsetAsync(q, 0, sizeof(T) * n, stream), "memset");
  }
  bool power_of_two;
  int e = QuantizeExponent(max_bits, kBits, &power_of_two);
  if (power_of_two) {
    // As the CPU: e + 1 when every value is a whole multiple of 2**(e+1).
    KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &words));
    NotWholeKernel<<<BlocksFor(n), kThreads, 0, stream>>>(x, n, -(e + 1), words);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("quantize"));
    uint32_t not_whole = 0;
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, words, &not_whole));
    if (!not_whole) ++e;
  }
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("quantize: exponent of the input", e, kMinExponent, kMaxExponent));
  QuantizeKernel<T><<<BlocksFor(n), kThreads, 0, stream>>>(x, n, PowerOfTwo(-e), kLimit, q);
  *exponent = e;
  return LaunchStatus("quantize");
}

template <typename T>
Status Dequantize(const Context& ctx, const T* q, int64_t n, int exponent, float* out) {
  KERAS_INT_RETURN_IF_ERROR(CheckExponent("dequantize: exponent", exponent, kMinExponent, kMaxExponent));
  if (n == 0) return Status::OK();
  DequantizeKernel<T><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(q, n, PowerOfTwo(exponent), out);
  return LaunchStatus("dequantize");
}

namespace {

// Requantize an int32 (int64: DFP16) accumulator into kBits-bit mantissas
// (8 or 16), stored as Out: int8/int16 or a float32 carrier.
template <typename Acc, typename Out>
Status RequantizeInto(const Context& ctx, const Acc* acc, int64_t n, int acc_exponent, int kBits,
                      Rounding rounding, RoundingSeed seed, Out* out, int* out_exponent) {
  const uint32_t kLimit = (1u << (kBits - 1)) - 1;
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: exponent", acc_exponent, kMinAccExponent, kMaxAccExponent));
  int bits;
  KERAS_INT_RETURN_IF_ERROR(MaxBitLength(ctx, acc, n, &bits));
  const int shift = bits - (kBits - 1);
  const int exponent = acc_exponent + (shift > 0 ? shift : 0);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent("requantize: result exponent", exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  if (n == 0) return Status::OK();
  const float scale = PowerOfTwo(exponent);
  const cudaStream_t stream = StreamOf(ctx);
  const unsigned int blocks = BlocksFor(n);
  if (shift <= 0) {
    NarrowKernel<Acc, Out><<<blocks, kThreads, 0, stream>>>(acc, n, scale, out);  // never scaled up
    return LaunchStatus("requantize");
  }
  switch (rounding) {
    case Rounding::kNearest:
      ShiftAndClipKernel<Rounding::kNearest><<<blocks, kThreads, 0, stream>>>(acc, n, shift, seed, kLimit, scale, out);
      break;
    case Rounding::kTruncate:
      ShiftAndClipKernel<Rounding::kTruncate><<<blocks, kThreads, 0, stream>>>(acc, n, shift, seed, kLimit, scale, out);
      break;
    case Rounding::kPseudoStochastic:
      ShiftAndClipKernel<Rounding::kPseudoStochastic><<<blocks, kThreads, 0, stream>>>(acc, n, shift, seed, kLimit,
                                                                                       scale, out);
      break;
    case Rounding::kStochastic:
      ShiftAndClipKernel<Rounding::kStochastic><<<blocks, kThreads, 0, stream>>>(acc, n, shift, seed, kLimit, scale,
                                                                                 out);
      break;
  }
  return LaunchStatus("requantize");
}

}  // namespace

template <typename T>
Status Requantize(const Context& ctx, const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent) {
  return RequantizeInto(ctx, acc, n, acc_exponent, sizeof(T) * 8, rounding, seed, out, out_exponent);
}

Status RequantizeToCarrier(const Context& ctx, const int64_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, int bits) {
  KERAS_INT_RETURN_IF_ERROR(CheckMantissaBits(bits));
  return RequantizeInto(ctx, acc, n, acc_exponent, bits, rounding, seed, out, out_exponent);
}

template <typename T>
Status Requantize(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                  Rounding rounding, RoundingSeed seed, T* out, int* out_exponent) {
  return RequantizeInto(ctx, acc, n, acc_exponent, sizeof(T) * 8, rounding, seed, out, out_exponent);
}

Status RequantizeToCarrier(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                           Rounding rounding, RoundingSeed seed, float* out, int* out_exponent, int bits) {
  KERAS_INT_RETURN_IF_ERROR(CheckMantissaBits(bits));
  return RequantizeInto(ctx, acc, n, acc_exponent, bits, rounding, seed, out, out_exponent);
}

Status RoundShiftTensor(const Context& ctx, const int32_t* in, int64_t n, int shift,
                        Rounding rounding, RoundingSeed seed, int32_t limit, int32_t* out) {
  if (shift < 0 || shift > 63) {
    return Status::Error("round_shift: shift " + std::to_string(shift) + " is out of range [0, 63]");
  }
  if (n == 0) return Status::OK();
  RoundShiftKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(in, n, shift, rounding, seed, limit, out);
  return LaunchStatus("round_shift");
}

template Status Quantize<int8_t>(const Context&, const float*, int64_t, int8_t*, int*);
template Status Quantize<int16_t>(const Context&, const float*, int64_t, int16_t*, int*);
template Status Dequantize<int8_t>(const Context&, const int8_t*, int64_t, int, float*);
template Status Dequantize<int16_t>(const Context&, const int16_t*, int64_t, int, float*);
template Status Requantize<int8_t>(const Context&, const int32_t*, int64_t, int, Rounding, RoundingSeed,
                                   int8_t*, int*);
template Status Requantize<int16_t>(const Context&, const int32_t*, int64_t, int, Rounding, RoundingSeed,
                                    int16_t*, int*);
template Status Requantize<int8_t>(const Context&, const int64_t*, int64_t, int, Rounding, RoundingSeed,
                                   int8_t*, int*);
template Status Requantize<int16_t>(const Context&, const int64_t*, int64_t, int, Rounding, RoundingSeed,
                                    int16_t*, int*);

}  // namespace gpu
}  // namespace keras_int

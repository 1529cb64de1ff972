// CUDA twins of the core's functions (cc/core), free of TensorFlow.
//
// Every pointer is device memory (exponents, sizes and options are host
// values); work is queued on the caller's stream. Functions that must know a
// data-dependent value on the host (a bit width, a NaN, an overflow) copy one
// word back and wait for the stream; the others only queue work.
// Results are bit-identical to the CPU core: both compile the same
// per-element arithmetic (cc/core/scalar.h), and integer sums are exact in
// any order. This header needs no CUDA headers, so the TensorFlow kernel
// adapters include it with a plain C++ compiler.
#ifndef KERAS_INT_CC_GPU_GPU_H_
#define KERAS_INT_CC_GPU_GPU_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/conv.h"
#include "cc/core/pool.h"
#include "cc/core/scalar.h"
#include "cc/core/sgd.h"
#include "cc/core/status.h"

namespace keras_int {
namespace gpu {

// Device memory every call may use for its reductions and flags.
constexpr size_t kScratchBytes = 64;

struct Context {
  void* stream;   // a cudaStream_t (nullptr: the legacy default stream)
  void* scratch;  // kScratchBytes of device memory, used by one call at a time
};

// Makes the stream's device current on this thread (TensorFlow may run an
// op on any of its GPUs; the runtime calls below act on the current one).
Status UseStreamDevice(const Context& ctx);

// ---- DFP conversions (cc/core/dfp.h) ----
template <typename T>
Status Quantize(const Context& ctx, const float* x, int64_t n, T* q, int* exponent);
template <typename T>
Status Dequantize(const Context& ctx, const T* q, int64_t n, int exponent, float* out);
template <typename T>
Status Requantize(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                  Rounding rounding, RoundingSeed seed, T* out, int* out_exponent);
// Requantize to int8 and dequantize in one pass (as the core's).
// out may be acc's own memory (each element is read, then written, by one thread).
Status RequantizeToCarrier(const Context& ctx, const int32_t* acc, int64_t n, int acc_exponent,
                           Rounding rounding, RoundingSeed seed, float* out, int* out_exponent);
Status RoundShiftTensor(const Context& ctx, const int32_t* in, int64_t n, int shift,
                        Rounding rounding, RoundingSeed seed, int32_t limit, int32_t* out);
Status MaxBitLength(const Context& ctx, const int32_t* acc, int64_t n, int* bits);

// ---- add.h ----
Status AlignedAdd(const Context& ctx, const int8_t* a, int ea, const int8_t* b, int eb, int64_t n,
                  int32_t* acc, int* acc_exponent);
Status AddBias(const Context& ctx, int32_t* acc, int64_t rows, int64_t channels,
               const int32_t* bias, int shift);

// ---- ReLU on float32 carriers (their bit patterns), as the CPU kernel ----
// As the core's (cc/core/relu.h): y may be x, dx may be dy; one mask bit per element.
Status Relu(const Context& ctx, const float* x, int64_t n, float* y, uint32_t* mask);
Status ReluGrad(const Context& ctx, const float* dy, const uint32_t* mask, int64_t n, float* dx);

// ---- GEMM and convolution (gemm.h, conv.h), int8 tensor cores ----
// Device workspace the GEMM behind each call needs (0 for most shapes):
// deep or narrow products are split along the depth, each part exact in
// int32, and summed exactly in int64.
size_t GemmWorkspaceBytes(int64_t M, int64_t N, int64_t K);
size_t MatMulWorkspaceBytes(int64_t M, int64_t N, int64_t K);
size_t Conv2DWorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropInputWorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropFilterWorkspaceBytes(const Conv2DGeometry& g);

Status MatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t M, int64_t N,
              int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace);
Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
              int32_t* out, void* workspace);
Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int8_t* w,
                           const int8_t* dy, int32_t* dx, void* workspace);
Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int8_t* x,
                            const int8_t* dy, int32_t* dw, void* workspace);

// fp16 x fp16 -> fp32 on tensor cores with the same tiling: the benchmark's
// yardstick for the int8 GEMM (not used by any op).
Status HalfMatMul(const Context& ctx, const void* x_half, const void* w_half, int64_t M,
                  int64_t N, int64_t K, float* out);

// ---- pooling (pool.h) ----
Status MaxPool(const Context& ctx, const PoolGeometry& g, const int8_t* x, int8_t* y);
Status MaxPoolGrad(const Context& ctx, const PoolGeometry& g, const int8_t* x, const int8_t* dy,
                   int32_t* dx);
Status MaxPoolCarrier(const Context& ctx, const PoolGeometry& g, const float* x, float* y, uint8_t* which);
Status MaxPoolCarrierGrad(const Context& ctx, const PoolGeometry& g, const float* dy, const uint8_t* which,
                          float* dx);
Status AvgPool(const Context& ctx, const PoolGeometry& g, const int8_t* x, int32_t* y);
Status AvgPoolGrad(const Context& ctx, const PoolGeometry& g, const int8_t* dy, int32_t* dx);

// ---- training (cross_entropy.h, sgd.h) ----
// Labels outside [0, classes) are an error (checked on the device).
template <typename Label>
Status SoftmaxCrossEntropyGrad(const Context& ctx, const int8_t* logits, int64_t batch,
                               int64_t classes, int exponent, const Label* labels,
                               Rounding rounding, RoundingSeed seed, int8_t* err);
template <typename T>
Status IntegerSgdUpdate(const Context& ctx, T* w, const int32_t* g, int64_t n,
                        const SgdOptions& options, T* momentum_buffer);

// Device-to-device copy on the stream.
Status Copy(const Context& ctx, void* dst, const void* src, size_t bytes);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_GPU_H_

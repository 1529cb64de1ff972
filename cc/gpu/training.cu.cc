// Integer cross-entropy gradient and integer SGD on the GPU, built from the
// same per-row / per-element functions as the CPU core
// (cross_entropy_element.h, sgd_element.h).
#include <string>

#include "cc/core/adam_element.h"
#include "cc/core/cross_entropy_element.h"
#include "cc/core/rounding.h"
#include "cc/core/sgd_element.h"
#include "cc/gpu/training.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

// One thread per row: rows are short (the classes), and the row function
// recomputes its numerators instead of storing them.
template <typename T, typename Label>
__global__ void CrossEntropyGradKernel(const T* logits, int64_t batch, int64_t classes,
                                       int exponent, const Label* labels, Rounding rounding,
                                       RoundingSeed seed, T* err, unsigned long long* bad_row) {
  KI_GRID_STRIDE(b, batch) {
    const int64_t label = labels[b];
    if (label < 0 || label >= classes) {
      atomicMin(bad_row, static_cast<unsigned long long>(b));
      continue;
    }
    CrossEntropyGradRow(logits + b * classes, classes, exponent, label, rounding, seed,
                        static_cast<uint64_t>(b * classes), err + b * classes);
  }
}

__global__ void GradientBitsKernel(const int32_t* g, int64_t n, uint32_t* any) {
  uint32_t v = 0;
  KI_GRID_STRIDE(i, n) { v |= Magnitude(g[i]); }
  AtomicOrWarp(any, v);
}

// The OR of an int64 gradient's magnitudes (their bit length is the maximum's).
__global__ void GradientBits64Kernel(const int64_t* g, int64_t n, uint64_t* any) {
  uint64_t v = 0;
  KI_GRID_STRIDE(i, n) { v |= Magnitude64(g[i]); }
  AtomicOr64(any, v);
}

template <typename T, typename G>
__global__ void StepBitsKernel(const T* w, const G* g, int64_t n, int weight_decay, int bits,
                               uint64_t* any) {
  uint64_t v = 0;
  KI_GRID_STRIDE(i, n) { v |= Magnitude64(SgdDecayedGradient(g[i], w[i], weight_decay, bits)); }
  AtomicOr64(any, v);
}

template <typename T, typename G>
__global__ void SgdApplyKernel(T* w, const G* g, int64_t n, int weight_decay, int bits, int shift,
                               int momentum, int64_t limit, T* momentum_buffer) {
  KI_GRID_STRIDE(i, n) {
    int64_t weight = w[i];
    int64_t buffer = momentum > 0 ? momentum_buffer[i] : 0;
    SgdApply(SgdDecayedGradient(g[i], weight, weight_decay, bits), shift, momentum,
             limit, &weight, &buffer);
    w[i] = static_cast<T>(weight);
    if (momentum > 0) momentum_buffer[i] = static_cast<T>(buffer);
  }
}

template <typename T, typename G>
__global__ void AdamKernel(T* w, const G* g, int32_t* m, int32_t* v, int64_t n, AdamStep step, int64_t beta1,
                           int64_t beta2, int64_t limit) {
  KI_GRID_STRIDE(i, n) {
    const int64_t gn = AdamNormalizedGradient(g[i], step.gradient_shift);
    const int64_t m1 = AdamMoment(m[i], gn, beta1);
    const int64_t v1 = AdamMoment(v[i], gn * gn, beta2);
    m[i] = static_cast<int32_t>(m1);
    v[i] = static_cast<int32_t>(v1);
    w[i] = static_cast<T>(Clip64(int64_t{w[i]} - AdamStepValue(m1, v1, step), limit));
  }
}

}  // namespace

// bit_length(max |g|), read back to the host.
static Status GradientBits(const Context& ctx, const int32_t* g, int64_t n, int* bits) {
  uint32_t* any;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &any));
  GradientBitsKernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, n, any);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("sgd_update"));
  uint32_t any_host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, any, &any_host));
  *bits = BitLength(any_host);
  return Status::OK();
}
static Status GradientBits(const Context& ctx, const int64_t* g, int64_t n, int* bits) {
  uint64_t* any;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &any));
  GradientBits64Kernel<<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(g, n, any);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("sgd_update"));
  uint64_t any_host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, any, &any_host));
  *bits = BitLength64(any_host);
  return Status::OK();
}

template <typename T, typename G>
Status IntegerAdamUpdate(const Context& ctx, T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options) {
  KERAS_INT_RETURN_IF_ERROR(CheckAdamOptions(options));
  AdamStep step;
  if (n == 0) return MakeAdamStep(0, t, options, &step);  // still checks t
  int bits;
  KERAS_INT_RETURN_IF_ERROR(GradientBits(ctx, g, n, &bits));
  KERAS_INT_RETURN_IF_ERROR(MakeAdamStep(bits, t, options, &step));
  AdamKernel<T, G><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(w, g, m, v, n, step, options.beta1, options.beta2,
                                                                 SgdWeightLimit<T>());
  return LaunchStatus("adam_update");
}


template <typename T, typename Label>
Status SoftmaxCrossEntropyGrad(const Context& ctx, const T* logits, int64_t batch,
                               int64_t classes, int exponent, const Label* labels,
                               Rounding rounding, RoundingSeed seed, T* err) {
  if (batch == 0) return Status::OK();
  if (classes == 0) return Status::Error("softmax_cross_entropy_grad: logits has no classes");
  const cudaStream_t stream = StreamOf(ctx);
  auto* bad_row = static_cast<unsigned long long*>(ctx.scratch);
  KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(bad_row, 0xFF, sizeof(*bad_row), stream), "memset");
  CrossEntropyGradKernel<T, Label><<<BlocksFor(batch), kThreads, 0, stream>>>(
      logits, batch, classes, exponent, labels, rounding, seed, err, bad_row);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("softmax_cross_entropy_grad"));
  unsigned long long row = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, bad_row, &row));
  if (row != ~0ull) {
    Label label;
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, labels + row, &label));
    return Status::Error("softmax_cross_entropy_grad: labels[" + std::to_string(row) + "] = " +
                         std::to_string(label) + " is out of range [0, " + std::to_string(classes) + ")");
  }
  return Status::OK();
}

template <typename T, typename G>
Status IntegerSgdUpdate(const Context& ctx, T* w, const G* g, int64_t n, const SgdOptions& options,
                        T* momentum_buffer) {
  KERAS_INT_RETURN_IF_ERROR(CheckSgdOptions(options));
  if (options.momentum > 0 && momentum_buffer == nullptr && n > 0) {
    return Status::Error("momentum > 0 needs a momentum buffer");
  }
  if (n == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  int bits;
  KERAS_INT_RETURN_IF_ERROR(GradientBits(ctx, g, n, &bits));
  if (bits == 0) return Status::OK();  // an all-zero gradient changes nothing
  KERAS_INT_RETURN_IF_ERROR(CheckSgdDecay(options.weight_decay, SgdWeightLimit<T>(), bits));
  uint64_t* any64;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 1, &any64));
  StepBitsKernel<T, G><<<BlocksFor(n), kThreads, 0, stream>>>(w, g, n, options.weight_decay, bits, any64);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("sgd_update"));
  uint64_t any64_host = 0;
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, any64, &any64_host));
  const int shift = BitLength64(any64_host) - options.mu;
  SgdApplyKernel<T, G><<<BlocksFor(n), kThreads, 0, stream>>>(w, g, n, options.weight_decay, bits, shift,
                                                              options.momentum, SgdWeightLimit<T>(),
                                                              momentum_buffer);
  return LaunchStatus("sgd_update");
}

#define KI_INSTANTIATE_CROSS_ENTROPY(T, Label)                                                              \
  template Status SoftmaxCrossEntropyGrad<T, Label>(const Context&, const T*, int64_t, int64_t, int, const Label*, \
                                                    Rounding, RoundingSeed, T*)
KI_INSTANTIATE_CROSS_ENTROPY(int8_t, int32_t);
KI_INSTANTIATE_CROSS_ENTROPY(int8_t, int64_t);
KI_INSTANTIATE_CROSS_ENTROPY(int16_t, int32_t);
KI_INSTANTIATE_CROSS_ENTROPY(int16_t, int64_t);
#undef KI_INSTANTIATE_CROSS_ENTROPY

#define KI_INSTANTIATE_ADAM(T, G)                                                                        \
  template Status IntegerAdamUpdate<T, G>(const Context&, T*, const G*, int32_t*, int32_t*, int64_t, int64_t, \
                                          const AdamOptions&)
KI_INSTANTIATE_ADAM(int8_t, int32_t);
KI_INSTANTIATE_ADAM(int16_t, int32_t);
KI_INSTANTIATE_ADAM(int32_t, int32_t);
KI_INSTANTIATE_ADAM(int8_t, int64_t);
KI_INSTANTIATE_ADAM(int16_t, int64_t);
KI_INSTANTIATE_ADAM(int32_t, int64_t);
#undef KI_INSTANTIATE_ADAM

#define KI_INSTANTIATE_SGD(T, G) \
  template Status IntegerSgdUpdate<T, G>(const Context&, T*, const G*, int64_t, const SgdOptions&, T*)
KI_INSTANTIATE_SGD(int8_t, int32_t);
KI_INSTANTIATE_SGD(int16_t, int32_t);
KI_INSTANTIATE_SGD(int32_t, int32_t);
KI_INSTANTIATE_SGD(int8_t, int64_t);
KI_INSTANTIATE_SGD(int16_t, int64_t);
KI_INSTANTIATE_SGD(int32_t, int64_t);
#undef KI_INSTANTIATE_SGD

}  // namespace gpu
}  // namespace keras_int

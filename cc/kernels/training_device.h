// The integer cross-entropy gradient and SGD (cc/core/cross_entropy.h,
// sgd.h; cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_TRAINING_DEVICE_H_
#define KERAS_INT_CC_KERNELS_TRAINING_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cc/core/adam.h"
#include "cc/core/cross_entropy.h"
#include "cc/core/sgd.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/training.h"
#endif

namespace keras_int {

// Labels outside [0, classes) are an error (on the GPU, found there).
template <typename T, typename Label>
Status SoftmaxCrossEntropyGrad(CpuContext&, const T* logits, int64_t batch, int64_t classes, int exponent,
                               const Label* labels, Rounding rounding, RoundingSeed seed, T* err) {
  std::vector<int64_t> checked(batch);
  for (int64_t b = 0; b < batch; ++b) {
    if (labels[b] < 0 || labels[b] >= classes) {
      return Status::Error("softmax_cross_entropy_grad: labels[" + std::to_string(b) + "] = " +
                           std::to_string(labels[b]) + " is out of range [0, " + std::to_string(classes) + ")");
    }
    checked[b] = labels[b];
  }
  SoftmaxCrossEntropyGrad(logits, batch, classes, exponent, checked.data(), rounding, seed, err);
  return Status::OK();
}
template <typename T, typename G>
Status IntegerSgdUpdate(CpuContext&, T* w, const G* g, int64_t n, const SgdOptions& options, T* momentum_buffer) {
  return IntegerSgdUpdate<T, G>(w, g, n, options, momentum_buffer);
}

template <typename T, typename G>
Status IntegerAdamUpdate(CpuContext& device, T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options) {
  return IntegerAdamUpdate<T, G>(w, g, m, v, n, t, options, device.parallel_for());
}

#if KERAS_INT_CUDA
template <typename T, typename Label>
Status SoftmaxCrossEntropyGrad(GpuContext& device, const T* logits, int64_t batch, int64_t classes,
                               int exponent, const Label* labels, Rounding rounding, RoundingSeed seed,
                               T* err) {
  return gpu::SoftmaxCrossEntropyGrad<T, Label>(device.gpu(), logits, batch, classes, exponent, labels, rounding,
                                                seed, err);
}
template <typename T, typename G>
Status IntegerSgdUpdate(GpuContext& device, T* w, const G* g, int64_t n, const SgdOptions& options,
                        T* momentum_buffer) {
  return gpu::IntegerSgdUpdate<T, G>(device.gpu(), w, g, n, options, momentum_buffer);
}
template <typename T, typename G>
Status IntegerAdamUpdate(GpuContext& device, T* w, const G* g, int32_t* m, int32_t* v, int64_t n, int64_t t,
                         const AdamOptions& options) {
  return gpu::IntegerAdamUpdate<T, G>(device.gpu(), w, g, m, v, n, t, options);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_TRAINING_DEVICE_H_

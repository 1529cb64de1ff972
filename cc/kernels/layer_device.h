// The device of the layer ops (layer_kernels.cc), which call the operations
// of several families as members: LayerDevice<Context> forwards each to its
// family's device header. A kernel of a single family calls the family's
// functions on CpuContext / GpuContext directly instead.
#ifndef KERAS_INT_CC_KERNELS_LAYER_DEVICE_H_
#define KERAS_INT_CC_KERNELS_LAYER_DEVICE_H_

#include <cstddef>
#include <cstdint>

#include "cc/kernels/add_device.h"
#include "cc/kernels/device_context.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/gemm_device.h"

namespace keras_int {

template <typename Context>
class LayerDevice : public Context {
 public:
  using Context::Context;

  template <typename T>
  Status Quantize(const float* x, int64_t n, T* q, int* exponent) {
    return keras_int::Quantize<T>(context(), x, n, q, exponent);
  }
  Status RequantizeToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                             RoundingSeed seed, float* out, int* out_exponent) {
    return keras_int::RequantizeToCarrier(context(), acc, n, acc_exponent, rounding, seed, out, out_exponent);
  }
  Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
    return keras_int::AddBias(context(), acc, rows, channels, bias, shift);
  }
  Status MatMul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
                bool transpose_w, int32_t* out) {
    return keras_int::MatMul(context(), x, w, M, N, K, transpose_x, transpose_w, out);
  }
  Status Conv2D(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out) {
    return keras_int::Conv2D(context(), g, x, w, out);
  }
  Status Copy(void* dst, const void* src, size_t bytes) { return keras_int::Copy(context(), dst, src, bytes); }

 private:
  Context& context() { return *this; }
};

using CpuDevice = LayerDevice<CpuContext>;
#if KERAS_INT_CUDA
using GpuDevice = LayerDevice<GpuContext>;
#endif

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_LAYER_DEVICE_H_

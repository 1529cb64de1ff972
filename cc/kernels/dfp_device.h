// The DFP conversions (cc/core/dfp.h, cc/gpu) on either device.
#ifndef KERAS_INT_CC_KERNELS_DFP_DEVICE_H_
#define KERAS_INT_CC_KERNELS_DFP_DEVICE_H_

#include <cstdint>

#include "cc/core/dfp.h"
#include "cc/kernels/device_context.h"
#if KERAS_INT_CUDA
#include "cc/gpu/dfp.h"
#endif

namespace keras_int {

template <typename T>
Status Quantize(CpuContext& device, const float* x, int64_t n, T* q, int* exponent) {
  return Quantize<T>(x, n, q, exponent, device.parallel_for());
}
template <typename T>
Status Dequantize(CpuContext& device, const T* q, int64_t n, int exponent, float* out) {
  return Dequantize<T>(q, n, exponent, out, device.parallel_for());
}
template <typename T, typename Acc>
Status Requantize(CpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent) {
  return Requantize<T>(acc, n, acc_exponent, rounding, seed, out, out_exponent, device.parallel_for());
}
// bits: 8 or 16; int64 accumulators: the DFP16 products.
template <typename Acc>
Status RequantizeToCarrier(CpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, int bits = 8) {
  return RequantizeToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, device.parallel_for(), bits);
}
inline Status RoundShiftTensor(CpuContext&, const int32_t* in, int64_t n, int shift, Rounding rounding,
                               RoundingSeed seed, int32_t limit, int32_t* out) {
  return RoundShiftTensor(in, n, shift, rounding, seed, limit, out);
}
inline Status MaxBitLength(CpuContext& device, const int32_t* x, int64_t n, int* bits) {
  *bits = MaxBitLength(x, n, device.parallel_for());
  return Status::OK();
}
inline Status MaxBitLength(CpuContext& device, const int64_t* x, int64_t n, int* bits) {
  *bits = MaxBitLength(x, n, device.parallel_for());
  return Status::OK();
}

#if KERAS_INT_CUDA
template <typename T>
Status Quantize(GpuContext& device, const float* x, int64_t n, T* q, int* exponent) {
  return gpu::Quantize<T>(device.gpu(), x, n, q, exponent);
}
template <typename T>
Status Dequantize(GpuContext& device, const T* q, int64_t n, int exponent, float* out) {
  return gpu::Dequantize<T>(device.gpu(), q, n, exponent, out);
}
template <typename T, typename Acc>
Status Requantize(GpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                  RoundingSeed seed, T* out, int* out_exponent) {
  return gpu::Requantize<T>(device.gpu(), acc, n, acc_exponent, rounding, seed, out, out_exponent);
}
template <typename Acc>
Status RequantizeToCarrier(GpuContext& device, const Acc* acc, int64_t n, int acc_exponent, Rounding rounding,
                           RoundingSeed seed, float* out, int* out_exponent, int bits = 8) {
  return gpu::RequantizeToCarrier(device.gpu(), acc, n, acc_exponent, rounding, seed, out, out_exponent, bits);
}
inline Status RoundShiftTensor(GpuContext& device, const int32_t* in, int64_t n, int shift, Rounding rounding,
                               RoundingSeed seed, int32_t limit, int32_t* out) {
  return gpu::RoundShiftTensor(device.gpu(), in, n, shift, rounding, seed, limit, out);
}
template <typename Acc>
Status MaxBitLength(GpuContext& device, const Acc* x, int64_t n, int* bits) {
  return gpu::MaxBitLength(device.gpu(), x, n, bits);
}
#endif  // KERAS_INT_CUDA

}  // namespace keras_int

namespace keras_int {

// Quantizes a carrier (a backward pass's dy, an input the op does not
// return) into a temporary int8 tensor.
template <typename Context>
::absl::Status QuantizeToTemp(::tensorflow::OpKernelContext* ctx, Context& device, const ::tensorflow::Tensor& x,
                              ::tensorflow::Tensor* q, int* exponent) {
  TF_RETURN_IF_ERROR(ctx->allocate_temp(::tensorflow::DT_INT8, x.shape(), q));
  return ToTf(Quantize<int8_t>(device, x.flat<float>().data(), x.NumElements(), q->flat<int8_t>().data(), exponent));
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_DFP_DEVICE_H_

// Where a kernel computes: CpuDevice calls the core (cc/core) on
// TensorFlow's intra-op thread pool, GpuDevice calls its CUDA twin (cc/gpu)
// on the op's stream. Both offer the same methods on the same (host or
// device) pointers, so each OpKernel is written once as a template over the
// device and registered for DEVICE_CPU and, in `--config=cuda` builds,
// DEVICE_GPU.
#ifndef KERAS_INT_CC_KERNELS_DEVICE_H_
#define KERAS_INT_CC_KERNELS_DEVICE_H_

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cc/core/add.h"
#include "cc/core/conv.h"
#include "cc/core/cross_entropy.h"
#include "cc/core/dfp.h"
#include "cc/core/gemm.h"
#include "cc/core/pool.h"
#include "cc/core/relu.h"
#include "cc/core/sgd.h"
#include "cc/kernels/common.h"
#if KERAS_INT_CUDA
#include "cc/gpu/gpu.h"
#include "xla/stream_executor/stream.h"
#endif

namespace keras_int {

class CpuDevice {
 public:
  explicit CpuDevice(::tensorflow::OpKernelContext* ctx) : parallel_for_(MakeParallelFor(ctx)) {}
  ::absl::Status status() const { return ::absl::OkStatus(); }

  template <typename T>
  Status Quantize(const float* x, int64_t n, T* q, int* exponent) {
    return keras_int::Quantize<T>(x, n, q, exponent, parallel_for_);
  }
  template <typename T>
  Status Dequantize(const T* q, int64_t n, int exponent, float* out) {
    return keras_int::Dequantize<T>(q, n, exponent, out, parallel_for_);
  }
  template <typename T>
  Status Requantize(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                    RoundingSeed seed, T* out, int* out_exponent) {
    return keras_int::Requantize<T>(acc, n, acc_exponent, rounding, seed, out, out_exponent,
                                    parallel_for_);
  }
  Status RequantizeToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                             RoundingSeed seed, float* out, int* out_exponent) {
    return keras_int::RequantizeToCarrier(acc, n, acc_exponent, rounding, seed, out, out_exponent, parallel_for_);
  }
  Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                          RoundingSeed seed, int32_t limit, int32_t* out) {
    return keras_int::RoundShiftTensor(in, n, shift, rounding, seed, limit, out);
  }
  Status MaxBitLength(const int32_t* x, int64_t n, int* bits) {
    *bits = keras_int::MaxBitLength(x, n);
    return Status::OK();
  }
  Status AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                    int* acc_exponent) {
    keras_int::AlignedAdd(a, ea, b, eb, n, acc, acc_exponent);
    return Status::OK();
  }
  Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
    return keras_int::AddBias(acc, rows, channels, bias, shift);
  }

  Status Relu(const float* x, int64_t n, float* y, uint32_t* mask) {
    return keras_int::Relu(x, n, y, mask, parallel_for_);
  }
  Status ReluGrad(const float* dy, const uint32_t* mask, int64_t n, float* dx) {
    keras_int::ReluGrad(dy, mask, n, dx, parallel_for_);
    return Status::OK();
  }

  Status MatMul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
                bool transpose_w, int32_t* out) {
    return keras_int::MatMul(x, w, M, N, K, transpose_x, transpose_w, out, parallel_for_);
  }
  Status Conv2D(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out) {
    return keras_int::Conv2D(g, x, w, out, parallel_for_);
  }
  Status Conv2DBackpropInput(const Conv2DGeometry& g, const int8_t* w, const int8_t* dy, int32_t* dx) {
    return keras_int::Conv2DBackpropInput(g, w, dy, dx, parallel_for_);
  }
  Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dw) {
    return keras_int::Conv2DBackpropFilter(g, x, dy, dw, parallel_for_);
  }

  Status MaxPool(const PoolGeometry& g, const int8_t* x, int8_t* y) {
    keras_int::MaxPool(g, x, y, parallel_for_);
    return Status::OK();
  }
  Status MaxPoolGrad(const PoolGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dx) {
    keras_int::MaxPoolGrad(g, x, dy, dx, parallel_for_);
    return Status::OK();
  }
  Status MaxPoolCarrier(const PoolGeometry& g, const float* x, float* y, uint8_t* which) {
    return keras_int::MaxPoolCarrier(g, x, y, which, parallel_for_);
  }
  Status MaxPoolCarrierGrad(const PoolGeometry& g, const float* dy, const uint8_t* which, float* dx) {
    keras_int::MaxPoolCarrierGrad(g, dy, which, dx, parallel_for_);
    return Status::OK();
  }
  Status AvgPool(const PoolGeometry& g, const int8_t* x, int32_t* y) {
    keras_int::AvgPool(g, x, y, parallel_for_);
    return Status::OK();
  }
  Status AvgPoolGrad(const PoolGeometry& g, const int8_t* dy, int32_t* dx) {
    keras_int::AvgPoolGrad(g, dy, dx, parallel_for_);
    return Status::OK();
  }

  template <typename Label>
  Status SoftmaxCrossEntropyGrad(const int8_t* logits, int64_t batch, int64_t classes, int exponent,
                                 const Label* labels, Rounding rounding, RoundingSeed seed, int8_t* err) {
    std::vector<int64_t> checked(batch);
    for (int64_t b = 0; b < batch; ++b) {
      if (labels[b] < 0 || labels[b] >= classes) {
        return Status::Error("softmax_cross_entropy_grad: labels[" + std::to_string(b) + "] = " +
                             std::to_string(labels[b]) + " is out of range [0, " +
                             std::to_string(classes) + ")");
      }
      checked[b] = labels[b];
    }
    keras_int::SoftmaxCrossEntropyGrad(logits, batch, classes, exponent, checked.data(), rounding, seed, err);
    return Status::OK();
  }
  template <typename T>
  Status IntegerSgdUpdate(T* w, const int32_t* g, int64_t n, const SgdOptions& options, T* momentum_buffer) {
    return keras_int::IntegerSgdUpdate<T>(w, g, n, options, momentum_buffer);
  }

  Status Copy(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) std::memcpy(dst, src, bytes);
    return Status::OK();
  }

 private:
  ParallelFor parallel_for_;
};

#if KERAS_INT_CUDA

class GpuDevice {
 public:
  explicit GpuDevice(::tensorflow::OpKernelContext* ctx) : ctx_(ctx) {
    context_.stream = ctx->op_device_context()->stream()->platform_specific_handle().stream;
    const Status selected = gpu::UseStreamDevice(context_);
    status_ = selected.ok() ? Allocate(gpu::kScratchBytes, &scratch_, &context_.scratch)
                            : ::tensorflow::errors::Internal(selected.message());
  }
  ::absl::Status status() const { return status_; }

  template <typename T>
  Status Quantize(const float* x, int64_t n, T* q, int* exponent) {
    return gpu::Quantize<T>(context_, x, n, q, exponent);
  }
  template <typename T>
  Status Dequantize(const T* q, int64_t n, int exponent, float* out) {
    return gpu::Dequantize<T>(context_, q, n, exponent, out);
  }
  template <typename T>
  Status Requantize(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                    RoundingSeed seed, T* out, int* out_exponent) {
    return gpu::Requantize<T>(context_, acc, n, acc_exponent, rounding, seed, out, out_exponent);
  }
  Status RequantizeToCarrier(const int32_t* acc, int64_t n, int acc_exponent, Rounding rounding,
                             RoundingSeed seed, float* out, int* out_exponent) {
    return gpu::RequantizeToCarrier(context_, acc, n, acc_exponent, rounding, seed, out, out_exponent);
  }
  Status RoundShiftTensor(const int32_t* in, int64_t n, int shift, Rounding rounding,
                          RoundingSeed seed, int32_t limit, int32_t* out) {
    return gpu::RoundShiftTensor(context_, in, n, shift, rounding, seed, limit, out);
  }
  Status MaxBitLength(const int32_t* x, int64_t n, int* bits) {
    return gpu::MaxBitLength(context_, x, n, bits);
  }
  Status AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                    int* acc_exponent) {
    return gpu::AlignedAdd(context_, a, ea, b, eb, n, acc, acc_exponent);
  }
  Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
    return gpu::AddBias(context_, acc, rows, channels, bias, shift);
  }
  Status Relu(const float* x, int64_t n, float* y, uint32_t* mask) {
    return gpu::Relu(context_, x, n, y, mask);
  }
  Status ReluGrad(const float* dy, const uint32_t* mask, int64_t n, float* dx) {
    return gpu::ReluGrad(context_, dy, mask, n, dx);
  }

  Status MatMul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
                bool transpose_w, int32_t* out) {
    void* workspace = nullptr;
    KERAS_INT_RETURN_IF_ERROR(Workspace(gpu::MatMulWorkspaceBytes(M, N, K), &workspace));
    return gpu::MatMul(context_, x, w, M, N, K, transpose_x, transpose_w, out, workspace);
  }
  Status Conv2D(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out) {
    void* workspace = nullptr;
    KERAS_INT_RETURN_IF_ERROR(Workspace(gpu::Conv2DWorkspaceBytes(g), &workspace));
    return gpu::Conv2D(context_, g, x, w, out, workspace);
  }
  Status Conv2DBackpropInput(const Conv2DGeometry& g, const int8_t* w, const int8_t* dy, int32_t* dx) {
    void* workspace = nullptr;
    KERAS_INT_RETURN_IF_ERROR(Workspace(gpu::Conv2DBackpropInputWorkspaceBytes(g), &workspace));
    return gpu::Conv2DBackpropInput(context_, g, w, dy, dx, workspace);
  }
  Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dw) {
    void* workspace = nullptr;
    KERAS_INT_RETURN_IF_ERROR(Workspace(gpu::Conv2DBackpropFilterWorkspaceBytes(g), &workspace));
    return gpu::Conv2DBackpropFilter(context_, g, x, dy, dw, workspace);
  }

  Status MaxPool(const PoolGeometry& g, const int8_t* x, int8_t* y) { return gpu::MaxPool(context_, g, x, y); }
  Status MaxPoolGrad(const PoolGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dx) {
    return gpu::MaxPoolGrad(context_, g, x, dy, dx);
  }
  Status MaxPoolCarrier(const PoolGeometry& g, const float* x, float* y, uint8_t* which) {
    return gpu::MaxPoolCarrier(context_, g, x, y, which);
  }
  Status MaxPoolCarrierGrad(const PoolGeometry& g, const float* dy, const uint8_t* which, float* dx) {
    return gpu::MaxPoolCarrierGrad(context_, g, dy, which, dx);
  }
  Status AvgPool(const PoolGeometry& g, const int8_t* x, int32_t* y) { return gpu::AvgPool(context_, g, x, y); }
  Status AvgPoolGrad(const PoolGeometry& g, const int8_t* dy, int32_t* dx) {
    return gpu::AvgPoolGrad(context_, g, dy, dx);
  }

  template <typename Label>
  Status SoftmaxCrossEntropyGrad(const int8_t* logits, int64_t batch, int64_t classes, int exponent,
                                 const Label* labels, Rounding rounding, RoundingSeed seed, int8_t* err) {
    return gpu::SoftmaxCrossEntropyGrad<Label>(context_, logits, batch, classes, exponent, labels, rounding,
                                               seed, err);
  }
  template <typename T>
  Status IntegerSgdUpdate(T* w, const int32_t* g, int64_t n, const SgdOptions& options, T* momentum_buffer) {
    return gpu::IntegerSgdUpdate<T>(context_, w, g, n, options, momentum_buffer);
  }

  Status Copy(void* dst, const void* src, size_t bytes) { return gpu::Copy(context_, dst, src, bytes); }

 private:
  // Device memory for one call, from TensorFlow's allocator.
  ::absl::Status Allocate(size_t bytes, ::tensorflow::Tensor* tensor, void** data) {
    TF_RETURN_IF_ERROR(ctx_->allocate_temp(::tensorflow::DT_INT8,
                                           ::tensorflow::TensorShape({static_cast<int64_t>(bytes)}), tensor));
    *data = tensor->flat<int8_t>().data();
    return ::absl::OkStatus();
  }
  Status Workspace(size_t bytes, void** data) {
    if (bytes == 0) return Status::OK();
    const ::absl::Status status = Allocate(bytes, &workspace_, data);
    return status.ok() ? Status::OK() : Status::Error(std::string(status.message()));
  }

  ::tensorflow::OpKernelContext* ctx_;
  gpu::Context context_{nullptr, nullptr};
  ::tensorflow::Tensor scratch_, workspace_;
  ::absl::Status status_;
};

#endif  // KERAS_INT_CUDA

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_DEVICE_H_

// Where a kernel computes, and what every kernel family shares there.
//
// CpuContext runs the core (cc/core) on TensorFlow's intra-op thread pool;
// GpuContext runs its CUDA twin (cc/gpu) on the op's stream, with the
// scratch words and workspace the twins need. Each family's device header
// (dfp_device.h, add_device.h, relu_device.h, gemm_device.h,
// pool_device.h, training_device.h) overloads its operations on both, with
// the same (host or device) pointers, so each OpKernel is written once as a
// template over the context and registered for DEVICE_CPU and, in
// `--config=cuda` builds, DEVICE_GPU.
#ifndef KERAS_INT_CC_KERNELS_DEVICE_CONTEXT_H_
#define KERAS_INT_CC_KERNELS_DEVICE_CONTEXT_H_

#include <cstddef>
#include <cstring>

#include "cc/core/parallel.h"
#include "cc/core/status.h"
#include "cc/kernels/common.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#if KERAS_INT_CUDA
#include "cc/gpu/context.h"
#endif

namespace keras_int {

class CpuContext {
 public:
  explicit CpuContext(::tensorflow::OpKernelContext* ctx) : parallel_for_(MakeParallelFor(ctx)) {}
  ::absl::Status status() const { return ::absl::OkStatus(); }
  const ParallelFor& parallel_for() const { return parallel_for_; }

 private:
  ParallelFor parallel_for_;
};

inline Status Copy(CpuContext&, void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return Status::OK();
}

#if KERAS_INT_CUDA

class GpuContext {
 public:
  // Takes the op's stream, makes its GPU current and allocates the scratch
  // words; status() tells whether that worked (device_context.cc).
  explicit GpuContext(::tensorflow::OpKernelContext* ctx);
  ::absl::Status status() const { return status_; }
  const gpu::Context& gpu() const { return context_; }

  // `bytes` of device memory for one call's workspace, from TensorFlow's
  // allocator, alive as long as this context (nullptr for 0 bytes).
  Status Workspace(size_t bytes, void** data);

 private:
  ::absl::Status Allocate(size_t bytes, ::tensorflow::Tensor* tensor, void** data);

  ::tensorflow::OpKernelContext* ctx_;
  gpu::Context context_{nullptr, nullptr};
  ::tensorflow::Tensor scratch_, workspace_;
  ::absl::Status status_;
};

inline Status Copy(GpuContext& device, void* dst, const void* src, size_t bytes) {
  return gpu::Copy(device.gpu(), dst, src, bytes);
}

#endif  // KERAS_INT_CUDA

// Registers a family's kernels on the CPU and, in `--config=cuda` builds,
// the GPU: REGISTER(device_type, Context) is the family's macro of
// REGISTER_KERNEL_BUILDER lines.
#if KERAS_INT_CUDA
#define KI_REGISTER_ON_EVERY_DEVICE(REGISTER)                   \
  REGISTER(::tensorflow::DEVICE_CPU, ::keras_int::CpuContext); \
  REGISTER(::tensorflow::DEVICE_GPU, ::keras_int::GpuContext)
#else
#define KI_REGISTER_ON_EVERY_DEVICE(REGISTER) REGISTER(::tensorflow::DEVICE_CPU, ::keras_int::CpuContext)
#endif

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_DEVICE_CONTEXT_H_

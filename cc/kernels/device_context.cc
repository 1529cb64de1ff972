// GpuContext's set-up. The op's stream comes from the public accessor
// OpKernelContext::eigen_gpu_device() (tensorflow/addons does the same),
// whose Eigen::GpuDevice is complete only with EIGEN_USE_GPU defined before
// the first Eigen header: hence this file of its own.
#if KERAS_INT_CUDA
#define EIGEN_USE_GPU
#endif

#include "cc/kernels/device_context.h"

#if KERAS_INT_CUDA

#include "unsupported/Eigen/CXX11/Tensor"

namespace keras_int {

GpuContext::GpuContext(::tensorflow::OpKernelContext* ctx) : ctx_(ctx) {
  context_.stream = ctx->eigen_gpu_device().stream();
  const Status selected = gpu::UseStreamDevice(context_);
  status_ = selected.ok() ? Allocate(gpu::kScratchBytes, &scratch_, &context_.scratch) : ToTf(selected);
}

::absl::Status GpuContext::Allocate(size_t bytes, ::tensorflow::Tensor* tensor, void** data) {
  TF_RETURN_IF_ERROR(ctx_->allocate_temp(::tensorflow::DT_INT8,
                                         ::tensorflow::TensorShape({static_cast<int64_t>(bytes)}), tensor));
  *data = tensor->flat<int8_t>().data();
  return ::absl::OkStatus();
}

Status GpuContext::Workspace(size_t bytes, void** data) {
  *data = nullptr;
  if (bytes == 0) return Status::OK();
  const ::absl::Status status = Allocate(bytes, &workspace_, data);
  return status.ok() ? Status::OK() : Status::ResourceExhausted(std::string(status.message()));
}

}  // namespace keras_int

#endif  // KERAS_INT_CUDA

#include "cc/kernels/conv_kernels.h"
#include "cc/kernels/device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// Pooling kernels share their attributes and geometry.
class PoolOpBase : public OpKernel {
 public:
  explicit PoolOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetPair(ctx, "ksize", &k_h_, &k_w_));
    OP_REQUIRES_OK(ctx, GetPair(ctx, "strides", &stride_h_, &stride_w_));
    OP_REQUIRES_OK(ctx, GetPadding(ctx, &same_));
    OP_REQUIRES(ctx, k_h_ * k_w_ <= (int64_t{1} << kAvgPoolShift),
                ::tensorflow::errors::InvalidArgument("ksize: a window of more than 2**16 elements"));
  }

 protected:
  ::absl::Status Geometry(const TensorShape& x, PoolGeometry* g) const {
    if (x.dims() != 4) {
      return ::tensorflow::errors::InvalidArgument("pool: input must have rank 4 (NHWC), got shape ",
                                                   x.DebugString());
    }
    *g = PoolGeometry{x.dim_size(0), x.dim_size(1), x.dim_size(2), x.dim_size(3),
                      k_h_, k_w_, stride_h_, stride_w_, 0, 0, 0, 0};
    return ToTf(ComputePoolGeometry(same_, g));
  }

  static ::absl::Status OutShape(const PoolGeometry& g, TensorShape* shape) {
    return MakeShape("pool: output shape", {g.batch, g.out_h, g.out_w, g.channels}, shape);
  }

  // A tensor of the pooled shape (dy, or the carrier pool's tap indices).
  static ::absl::Status CheckDy(const PoolGeometry& g, const Tensor& dy, const char* name = "dy") {
    TensorShape expected;
    TF_RETURN_IF_ERROR(OutShape(g, &expected));
    if (dy.shape() != expected) {
      return ::tensorflow::errors::InvalidArgument("pool: ", name, " has shape ", dy.shape().DebugString(),
                                                   ", expected ", expected.DebugString());
    }
    return ::absl::OkStatus();
  }

 private:
  int64_t k_h_, k_w_, stride_h_, stride_w_;
  bool same_;
};

template <typename Device>
class MaxPoolOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x.shape(), &g));
    TensorShape y_shape;
    OP_REQUIRES_OK(ctx, OutShape(g, &y_shape));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, y_shape, &y));
    if (y->NumElements() == 0) return;  // no work (the input may still claim huge sizes)
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.MaxPool(g, x.flat<int8_t>().data(), y->flat<int8_t>().data()));
  }
};

template <typename Device>
class MaxPoolGradOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& dy = ctx->input(1);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x.shape(), &g));
    OP_REQUIRES_OK(ctx, CheckDy(g, dy));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    if (dx->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.MaxPoolGrad(g, x.flat<int8_t>().data(), dy.flat<int8_t>().data(),
                                              dx->flat<int32_t>().data()));
  }
};

template <typename Device>
class MaxPoolCarrierOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x.shape(), &g));
    TensorShape y_shape;
    OP_REQUIRES_OK(ctx, OutShape(g, &y_shape));
    Tensor* y = nullptr;
    Tensor* which = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, y_shape, &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, y_shape, &which));
    if (y->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.MaxPoolCarrier(g, x.flat<float>().data(), y->flat<float>().data(),
                                                 which->flat<uint8_t>().data()));
  }
};

template <typename Device>
class MaxPoolCarrierGradOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx->input(0), "max_pool_carrier_grad: input_sizes", &x_shape));
    const Tensor& dy = ctx->input(1);
    const Tensor& which = ctx->input(2);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x_shape, &g));
    OP_REQUIRES_OK(ctx, CheckDy(g, dy));
    OP_REQUIRES_OK(ctx, CheckDy(g, which, "which"));
    KI_OP_REQUIRES_OK(ctx, CheckMaxPoolCarrier(g));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_shape, &dx));
    if (dx->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.MaxPoolCarrierGrad(g, dy.flat<float>().data(), which.flat<uint8_t>().data(),
                                                     dx->flat<float>().data()));
  }
};

template <typename Device>
class AvgPoolOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x.shape(), &g));
    TensorShape y_shape;
    OP_REQUIRES_OK(ctx, OutShape(g, &y_shape));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, y_shape, &y));
    if (y->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.AvgPool(g, x.flat<int8_t>().data(), y->flat<int32_t>().data()));
  }
};

template <typename Device>
class AvgPoolGradOp : public PoolOpBase {
 public:
  using PoolOpBase::PoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx->input(0), "avg_pool_grad: input_sizes", &x_shape));
    const Tensor& dy = ctx->input(1);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x_shape, &g));
    OP_REQUIRES_OK(ctx, CheckDy(g, dy));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_shape, &dx));
    if (dx->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, device.AvgPoolGrad(g, dy.flat<int8_t>().data(), dx->flat<int32_t>().data()));
  }
};

#define KI_REGISTER_POOL(device_type, DeviceClass)                                                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPool").Device(device_type), MaxPoolOp<DeviceClass>);           \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolGrad").Device(device_type), MaxPoolGradOp<DeviceClass>);   \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolCarrier").Device(device_type), MaxPoolCarrierOp<DeviceClass>); \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolCarrierGrad").Device(device_type).HostMemory("input_sizes"),   \
                          MaxPoolCarrierGradOp<DeviceClass>);                                               \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AvgPool").Device(device_type), AvgPoolOp<DeviceClass>);           \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AvgPoolGrad").Device(device_type).HostMemory("input_sizes"),     \
                          AvgPoolGradOp<DeviceClass>)
KI_REGISTER_POOL(::tensorflow::DEVICE_CPU, CpuDevice);
#if KERAS_INT_CUDA
KI_REGISTER_POOL(::tensorflow::DEVICE_GPU, GpuDevice);
#endif
#undef KI_REGISTER_POOL

}  // namespace keras_int

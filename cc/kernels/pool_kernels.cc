#include <initializer_list>
#include <utility>

#include "cc/kernels/conv_kernels.h"
#include "cc/kernels/pool_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

// Pooling kernels share their attributes and geometry. A window has at
// most 2**kWindowLog2 elements: kAvgPoolWindowLog2 in average pooling (its
// multiplier round(2**16 / n)), kMaxPoolWindowLog2 in max pooling (the
// gradient's int32 sums); see limits.h.
template <int kWindowLog2>
class PoolOpBase : public OpKernel {
 public:
  explicit PoolOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetPair(ctx, "ksize", &k_h_, &k_w_));
    OP_REQUIRES_OK(ctx, GetPair(ctx, "strides", &stride_h_, &stride_w_));
    OP_REQUIRES_OK(ctx, GetPadding(ctx, &same_));
    OP_REQUIRES(ctx, k_h_ * k_w_ <= (int64_t{1} << kWindowLog2),
                ::tensorflow::errors::InvalidArgument("ksize: a window of more than 2**", kWindowLog2,
                                                      " elements"));
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

  // Inputs of the pooled shape (dy, or the carrier pool's tap indices),
  // each with its name for the message.
  using Pooled = std::initializer_list<std::pair<const Tensor*, const char*>>;
  static ::absl::Status CheckPooled(const PoolGeometry& g, Pooled pooled) {
    TensorShape expected;
    TF_RETURN_IF_ERROR(OutShape(g, &expected));
    for (const auto& [tensor, name] : pooled) {
      if (tensor->shape() != expected) {
        return ::tensorflow::errors::InvalidArgument("pool: ", name, " has shape ", tensor->shape().DebugString(),
                                                     ", expected ", expected.DebugString());
      }
    }
    return ::absl::OkStatus();
  }

  // A forward op's geometry (input of shape x) and its outputs, by name,
  // all of the pooled shape.
  using Outputs = std::initializer_list<std::pair<const char*, Tensor**>>;
  ::absl::Status Forward(OpKernelContext* ctx, const TensorShape& x, PoolGeometry* g, Outputs outputs) const {
    TF_RETURN_IF_ERROR(Geometry(x, g));
    TensorShape shape;
    TF_RETURN_IF_ERROR(OutShape(*g, &shape));
    for (const auto& [name, out] : outputs) TF_RETURN_IF_ERROR(ctx->allocate_output(name, shape, out));
    return ::absl::OkStatus();
  }

  // A gradient op's geometry (input of shape x) and checked pooled inputs.
  ::absl::Status Backward(const TensorShape& x, Pooled pooled, PoolGeometry* g) const {
    TF_RETURN_IF_ERROR(Geometry(x, g));
    return CheckPooled(*g, pooled);
  }

  // Runs fn(device) on the kernel's device, unless `out` is empty (no work;
  // the input may still claim huge sizes).
  template <typename Device, typename Fn>
  static void RunOn(OpKernelContext* ctx, const Tensor& out, Fn fn) {
    if (out.NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, fn(device));
  }

 private:
  int64_t k_h_, k_w_, stride_h_, stride_w_;
  bool same_;
};

using MaxPoolOpBase = PoolOpBase<kMaxPoolWindowLog2>;
using AvgPoolOpBase = PoolOpBase<kAvgPoolWindowLog2>;

template <typename Device>
class MaxPoolOp : public MaxPoolOpBase {
 public:
  using MaxPoolOpBase::MaxPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    PoolGeometry g;
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, Forward(ctx, x.shape(), &g, {{"y", &y}}));
    RunOn<Device>(ctx, *y, [&](Device& device) {
      return MaxPool(device, g, x.flat<int8_t>().data(), y->flat<int8_t>().data());
    });
  }
};

template <typename Device>
class MaxPoolGradOp : public MaxPoolOpBase {
 public:
  using MaxPoolOpBase::MaxPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "dy", dy);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Backward(x.shape(), {{&dy, "dy"}}, &g));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", x.shape(), &dx));
    RunOn<Device>(ctx, *dx, [&](Device& device) {
      return MaxPoolGrad(device, g, x.flat<int8_t>().data(), dy.flat<int8_t>().data(), dx->flat<int32_t>().data());
    });
  }
};

template <typename Device>
class MaxPoolCarrierOp : public MaxPoolOpBase {
 public:
  using MaxPoolOpBase::MaxPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    PoolGeometry g;
    Tensor* y = nullptr;
    Tensor* which = nullptr;
    OP_REQUIRES_OK(ctx, Forward(ctx, x.shape(), &g, {{"y", &y}, {"which", &which}}));
    RunOn<Device>(ctx, *y, [&](Device& device) {
      return MaxPoolCarrier(device, g, x.flat<float>().data(), y->flat<float>().data(),
                            which->flat<uint8_t>().data());
    });
  }
};

template <typename Device>
class MaxPoolCarrierGradOp : public MaxPoolOpBase {
 public:
  using MaxPoolOpBase::MaxPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx, "input_sizes", "max_pool_carrier_grad: input_sizes", &x_shape));
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "which", which);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Backward(x_shape, {{&dy, "dy"}, {&which, "which"}}, &g));
    KI_OP_REQUIRES_OK(ctx, CheckMaxPoolCarrier(g));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", x_shape, &dx));
    RunOn<Device>(ctx, *dx, [&](Device& device) {
      return MaxPoolCarrierGrad(device, g, dy.flat<float>().data(), which.flat<uint8_t>().data(),
                                dx->flat<float>().data());
    });
  }
};

// T: int8 (sums in int32) or int16 (DFP16, sums in int64: Acc).
template <typename Device, typename T, typename Acc>
class AvgPoolOp : public AvgPoolOpBase {
 public:
  using AvgPoolOpBase::AvgPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    PoolGeometry g;
    Tensor* acc = nullptr;
    OP_REQUIRES_OK(ctx, Forward(ctx, x.shape(), &g, {{"acc", &acc}}));
    RunOn<Device>(ctx, *acc, [&](Device& device) {
      return AvgPool(device, g, x.flat<T>().data(), acc->flat<Acc>().data());
    });
  }
};

template <typename Device, typename T, typename Acc>
class AvgPoolGradOp : public AvgPoolOpBase {
 public:
  using AvgPoolOpBase::AvgPoolOpBase;
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx, "input_sizes", "avg_pool_grad: input_sizes", &x_shape));
    KI_INPUT(ctx, "dy", dy);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Backward(x_shape, {{&dy, "dy"}}, &g));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("acc", x_shape, &dx));
    RunOn<Device>(ctx, *dx, [&](Device& device) {
      return AvgPoolGrad(device, g, dy.flat<T>().data(), dx->flat<Acc>().data());
    });
  }
};

#define KI_REGISTER_AVG_POOL(device_type, DeviceClass, T, Acc)                                              \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AvgPool").Device(device_type).TypeConstraint<T>("T")                   \
                              .TypeConstraint<Acc>("Tacc"), AvgPoolOp<DeviceClass, T, Acc>);                  \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AvgPoolGrad").Device(device_type).TypeConstraint<T>("T")               \
                              .TypeConstraint<Acc>("Tacc").HostMemory("input_sizes"),                         \
                          AvgPoolGradOp<DeviceClass, T, Acc>)
#define KI_REGISTER_POOL(device_type, DeviceClass)                                                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPool").Device(device_type), MaxPoolOp<DeviceClass>);           \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolGrad").Device(device_type), MaxPoolGradOp<DeviceClass>);   \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolCarrier").Device(device_type), MaxPoolCarrierOp<DeviceClass>); \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MaxPoolCarrierGrad").Device(device_type).HostMemory("input_sizes"),   \
                          MaxPoolCarrierGradOp<DeviceClass>);                                               \
  KI_REGISTER_AVG_POOL(device_type, DeviceClass, int8_t, int32_t);                                          \
  KI_REGISTER_AVG_POOL(device_type, DeviceClass, int16_t, int64_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_POOL);
#undef KI_REGISTER_POOL
#undef KI_REGISTER_AVG_POOL

}  // namespace keras_int

#include "cc/kernels/conv_kernels.h"
#include "cc/kernels/gemm_device.h"

#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

template <typename Device, typename T, typename Acc>
class Conv2DOp : public OpKernel {
 public:
  explicit Conv2DOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "filter", filter);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x.shape(), filter.shape(), &g));
    TensorShape out_shape;
    OP_REQUIRES_OK(ctx, OutputShape(g, &out_shape));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("out", out_shape, &out));
    if (out->NumElements() == 0) return;  // no work (the input may still claim huge sizes)
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Conv2D(device, g, x.flat<T>().data(), filter.flat<T>().data(),
                                         out->flat<Acc>().data()));
  }

 private:
  ConvAttrs attrs_;
};

template <typename Device, typename T, typename Acc>
class Conv2DBackpropInputOp : public OpKernel {
 public:
  explicit Conv2DBackpropInputOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx, "input_sizes", "conv2d_backprop_input: input_sizes", &x_shape));
    KI_INPUT(ctx, "filter", filter);
    KI_INPUT(ctx, "out_backprop", dy);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x_shape, filter.shape(), &g));
    OP_REQUIRES_OK(ctx, CheckOutBackprop(g, dy));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("out", x_shape, &dx));
    if (dx->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Conv2DBackpropInput(device, g, filter.flat<T>().data(),
                                                      dy.flat<T>().data(), dx->flat<Acc>().data()));
  }

 private:
  ConvAttrs attrs_;
};

template <typename Device, typename T, typename Acc>
class Conv2DBackpropFilterOp : public OpKernel {
 public:
  explicit Conv2DBackpropFilterOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    TensorShape filter_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx, "filter_sizes", "conv2d_backprop_filter: filter_sizes", &filter_shape));
    KI_INPUT(ctx, "out_backprop", dy);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x.shape(), filter_shape, &g));
    OP_REQUIRES_OK(ctx, CheckOutBackprop(g, dy));
    Tensor* dw = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("out", filter_shape, &dw));
    if (dw->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Conv2DBackpropFilter(device, g, x.flat<T>().data(), dy.flat<T>().data(),
                                                       dw->flat<Acc>().data()));
  }

 private:
  ConvAttrs attrs_;
};

#define KI_REGISTER_CONV_OF_TYPE(device_type, DeviceClass, T, Acc)                                        \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2D").Device(device_type).TypeConstraint<T>("T")                 \
                              .TypeConstraint<Acc>("Tacc"), Conv2DOp<DeviceClass, T, Acc>);                \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DBackpropInput").Device(device_type).TypeConstraint<T>("T")    \
                              .TypeConstraint<Acc>("Tacc").HostMemory("input_sizes"),                      \
                          Conv2DBackpropInputOp<DeviceClass, T, Acc>);                                      \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DBackpropFilter").Device(device_type).TypeConstraint<T>("T")   \
                              .TypeConstraint<Acc>("Tacc").HostMemory("filter_sizes"),                     \
                          Conv2DBackpropFilterOp<DeviceClass, T, Acc>)
// int8 with int32 sums; int16 (DFP16) with int64 sums.
#define KI_REGISTER_CONV(device_type, DeviceClass)                          \
  KI_REGISTER_CONV_OF_TYPE(device_type, DeviceClass, int8_t, int32_t);    \
  KI_REGISTER_CONV_OF_TYPE(device_type, DeviceClass, int16_t, int64_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_CONV);
#undef KI_REGISTER_CONV_OF_TYPE
#undef KI_REGISTER_CONV

}  // namespace keras_int

#include "cc/kernels/conv_kernels.h"

#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

class Conv2DOp : public OpKernel {
 public:
  explicit Conv2DOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x.shape(), filter.shape(), &g));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({g.batch, g.out_h, g.out_w, g.out_c}), &out));
    KI_OP_REQUIRES_OK(ctx, Conv2D(g, x.flat<int8_t>().data(), filter.flat<int8_t>().data(),
                                  out->flat<int32_t>().data(), MakeParallelFor(ctx)));
  }

 private:
  ConvAttrs attrs_;
};

class Conv2DBackpropInputOp : public OpKernel {
 public:
  explicit Conv2DBackpropInputOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    TensorShape x_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx->input(0), "conv2d_backprop_input: input_sizes", &x_shape));
    const Tensor& filter = ctx->input(1);
    const Tensor& dy = ctx->input(2);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x_shape, filter.shape(), &g));
    OP_REQUIRES_OK(ctx, CheckOutBackprop(g, dy));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_shape, &dx));
    KI_OP_REQUIRES_OK(ctx, Conv2DBackpropInput(g, filter.flat<int8_t>().data(),
                                               dy.flat<int8_t>().data(), dx->flat<int32_t>().data(),
                                               MakeParallelFor(ctx)));
  }

 private:
  ConvAttrs attrs_;
};

class Conv2DBackpropFilterOp : public OpKernel {
 public:
  explicit Conv2DBackpropFilterOp(OpKernelConstruction* ctx) : OpKernel(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    TensorShape filter_shape;
    OP_REQUIRES_OK(ctx, ShapeFromSizes(ctx->input(1), "conv2d_backprop_filter: filter_sizes",
                                       &filter_shape));
    const Tensor& dy = ctx->input(2);
    Conv2DGeometry g;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(x.shape(), filter_shape, &g));
    OP_REQUIRES_OK(ctx, CheckOutBackprop(g, dy));
    Tensor* dw = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, filter_shape, &dw));
    KI_OP_REQUIRES_OK(ctx, Conv2DBackpropFilter(g, x.flat<int8_t>().data(), dy.flat<int8_t>().data(),
                                                dw->flat<int32_t>().data(), MakeParallelFor(ctx)));
  }

 private:
  ConvAttrs attrs_;
};

REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2D").Device(::tensorflow::DEVICE_CPU), Conv2DOp);
REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DBackpropInput").Device(::tensorflow::DEVICE_CPU).HostMemory("input_sizes"),
                        Conv2DBackpropInputOp);
REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DBackpropFilter").Device(::tensorflow::DEVICE_CPU).HostMemory("filter_sizes"),
                        Conv2DBackpropFilterOp);

}  // namespace keras_int

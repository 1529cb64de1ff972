#include <cstdint>

#include "cc/core/relu.h"
#include "cc/kernels/relu_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

// ReLU on float32 carriers works on their bit patterns: integer tests and
// masks (the device's Relu); the gradient keeps one bit per element, packed
// in int32 words (cc/core/relu.h).
template <typename Device>
class ReluOp : public OpKernel {
 public:
  explicit ReluOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    Tensor* y = nullptr;
    Tensor* mask = nullptr;
    // The input's buffer becomes the output when nothing else holds it (the
    // gradient keeps only the mask): one carrier-sized buffer less.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({"x"}, "y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("mask", ::tensorflow::TensorShape({ReluMaskWords(x.NumElements())}), &mask));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Relu(device, x.flat<float>().data(), x.NumElements(), y->flat<float>().data(),
                                       reinterpret_cast<uint32_t*>(mask->flat<int32_t>().data())));
  }
};

template <typename Device>
class ReluGradOp : public OpKernel {
 public:
  explicit ReluGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "mask", mask);
    const int64_t words = ReluMaskWords(dy.NumElements());
    OP_REQUIRES(ctx, mask.dims() == 1 && mask.dim_size(0) == words,
                ::tensorflow::errors::InvalidArgument("relu_grad: dy has ", dy.NumElements(),
                                                      " elements, which need a mask of [", words,
                                                      "] words, got ", mask.shape().DebugString()));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({"dy"}, "dx", dy.shape(), &dx));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, ReluGrad(device, dy.flat<float>().data(),
                                           reinterpret_cast<const uint32_t*>(mask.flat<int32_t>().data()),
                                           dy.NumElements(), dx->flat<float>().data()));
  }
};

#define KI_REGISTER_RELU(device_type, DeviceClass)                                          \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Relu").Device(device_type), ReluOp<DeviceClass>);     \
  REGISTER_KERNEL_BUILDER(Name("IntOps>ReluGrad").Device(device_type), ReluGradOp<DeviceClass>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_RELU);
#undef KI_REGISTER_RELU

}  // namespace keras_int

// Integer GELU kernels (cc/ops/gelu_ops.cc; docs/algorithms.md section 11).
// The int32 accumulator is written into the output's own memory and
// requantized there into the carrier.
#include <cstdint>

#include "cc/core/gelu_element.h"
#include "cc/kernels/common.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/gelu_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

template <typename Context>
class GeluOp : public OpKernel {
 public:
  explicit GeluOp(OpKernelConstruction* ctx) : OpKernel(ctx) { OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_)); }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    Tensor *y, *x_q;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x_q", x.shape(), &x_q));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    const int64_t n = x.NumElements();
    int x_exponent = 0, y_exponent = 0;
    KI_OP_REQUIRES_OK(ctx, Quantize<int8_t>(device, x.flat<float>().data(), n, x_q->flat<int8_t>().data(),
                                            &x_exponent));
    int32_t* acc = reinterpret_cast<int32_t*>(y->flat<float>().data());
    KI_OP_REQUIRES_OK(ctx, GeluAccumulate(device, x_q->flat<int8_t>().data(), n, x_exponent, acc));
    KI_OP_REQUIRES_OK(ctx, RequantizeToCarrier(device, acc, n, x_exponent - kGeluValueShift, rounding_, seed,
                                               y->flat<float>().data(), &y_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", y_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "x_exponent", x_exponent));
  }

 private:
  Rounding rounding_;
};

template <typename Context>
class GeluGradOp : public OpKernel {
 public:
  explicit GeluGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "x_q", x_q);
    OP_REQUIRES(ctx, dy.shape() == x_q.shape(),
                ::tensorflow::errors::InvalidArgument("gelu_grad: dy has shape ", dy.shape().DebugString(), ", x_q ",
                                                      x_q.shape().DebugString()));
    int x_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "x_exponent", "gelu_grad: x_exponent", kMinExponent, kMaxExponent,
                                    &x_exponent));
    Tensor* dx;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", dy.shape(), &dx));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0, dx_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    const int64_t n = dy.NumElements();
    int32_t* acc = reinterpret_cast<int32_t*>(dx->flat<float>().data());
    KI_OP_REQUIRES_OK(ctx, GeluGradAccumulate(device, err.flat<int8_t>().data(), x_q.flat<int8_t>().data(), n,
                                              x_exponent, acc));
    KI_OP_REQUIRES_OK(ctx, RequantizeToCarrier(device, acc, n, err_exponent - kGeluValueShift, Rounding::kNearest,
                                               RoundingSeed{}, dx->flat<float>().data(), &dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "dx_exponent", dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }
};

#define KI_REGISTER_GELU(device_type, Context)                                                                   \
  REGISTER_KERNEL_BUILDER(                                                                                       \
      Name("IntOps>Gelu").Device(device_type).HostMemory("seed").HostMemory("y_exponent").HostMemory("x_exponent"), \
      GeluOp<Context>);                                                                                          \
  REGISTER_KERNEL_BUILDER(Name("IntOps>GeluGrad").Device(device_type).HostMemory("x_exponent")                  \
                              .HostMemory("dx_exponent").HostMemory("err_exponent"),                             \
                          GeluGradOp<Context>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_GELU);
#undef KI_REGISTER_GELU

}  // namespace keras_int

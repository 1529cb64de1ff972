// Integer softmax kernels (cc/ops/softmax_ops.cc; docs/algorithms.md
// section 10) over the last axis: x is viewed as [rows, n].
#include <cstdint>

#include "cc/core/limits.h"
#include "cc/core/softmax_element.h"
#include "cc/kernels/common.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/softmax_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

namespace {

::absl::Status GetScale(OpKernelConstruction* ctx, SoftmaxScale* scale) {
  int64_t multiplier, shift;
  TF_RETURN_IF_ERROR(ctx->GetAttr("scale_multiplier", &multiplier));
  TF_RETURN_IF_ERROR(ctx->GetAttr("scale_shift", &shift));
  if (shift < 0 || shift > kSoftmaxMaxShift) {
    return ::tensorflow::errors::InvalidArgument("softmax: scale_shift ", shift, " is out of range [0, ",
                                                 kSoftmaxMaxShift, "]");
  }
  *scale = SoftmaxScale{multiplier, static_cast<int>(shift)};
  return ToTf(CheckSoftmaxScale(*scale));
}

// x as [rows, n], n its last axis.
::absl::Status Rows(const char* fn, const Tensor& x, int64_t* rows, int64_t* n) {
  if (x.dims() < 1) {
    return ::tensorflow::errors::InvalidArgument(fn, ": x must have rank >= 1, got shape ", x.shape().DebugString());
  }
  *n = x.dim_size(x.dims() - 1);
  *rows = *n == 0 ? 0 : x.NumElements() / *n;
  return ::absl::OkStatus();
}

}  // namespace

template <typename Context>
class SoftmaxOp : public OpKernel {
 public:
  explicit SoftmaxOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    OP_REQUIRES_OK(ctx, GetScale(ctx, &scale_));
    int masks;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &masks));
    OP_REQUIRES(ctx, masks <= 1, ::tensorflow::errors::InvalidArgument("softmax: at most one mask, got N = ", masks));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    int64_t rows, n;
    OP_REQUIRES_OK(ctx, Rows("softmax", x, &rows, &n));
    ::tensorflow::OpInputList masks;
    OP_REQUIRES_OK(ctx, ctx->input_list("mask", &masks));
    const uint8_t* mask = nullptr;
    if (masks.size() == 1) {
      OP_REQUIRES(ctx, masks[0].shape() == x.shape(),
                  ::tensorflow::errors::InvalidArgument("softmax: mask must have the shape of x, ",
                                                        x.shape().DebugString(), ", got ",
                                                        masks[0].shape().DebugString()));
      mask = reinterpret_cast<const uint8_t*>(masks[0].flat<bool>().data());
    }
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    Tensor *y, *y_q;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y_q", x.shape(), &y_q));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor q;
    int x_exponent = 0, y_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, x, &q, &x_exponent));
    // The int32 probabilities in the output carrier's memory, requantized
    // into y_q, then dequantized into y.
    int32_t* probabilities = reinterpret_cast<int32_t*>(y->flat<float>().data());
    KI_OP_REQUIRES_OK(ctx, SoftmaxProbabilities(device, q.flat<int8_t>().data(), mask, rows, n, x_exponent, scale_,
                                                probabilities));
    const int64_t size = x.NumElements();
    KI_OP_REQUIRES_OK(ctx, Requantize<int8_t>(device, probabilities, size, -kSoftmaxProbabilityBits, rounding_, seed,
                                              y_q->flat<int8_t>().data(), &y_exponent));
    KI_OP_REQUIRES_OK(ctx, Dequantize<int8_t>(device, y_q->flat<int8_t>().data(), size, y_exponent,
                                              y->flat<float>().data()));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", y_exponent));
  }

 private:
  Rounding rounding_;
  SoftmaxScale scale_;
};

template <typename Context>
class SoftmaxGradOp : public OpKernel {
 public:
  explicit SoftmaxGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) { OP_REQUIRES_OK(ctx, GetScale(ctx, &scale_)); }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "y_q", y_q);
    OP_REQUIRES(ctx, dy.shape() == y_q.shape(),
                ::tensorflow::errors::InvalidArgument("softmax_grad: dy has shape ", dy.shape().DebugString(),
                                                      ", y_q ", y_q.shape().DebugString()));
    int64_t rows, n;
    OP_REQUIRES_OK(ctx, Rows("softmax_grad", dy, &rows, &n));
    int y_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "y_exponent", "softmax_grad: y_exponent", kMinExponent, kMaxExponent,
                                    &y_exponent));
    Tensor* dx;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", dy.shape(), &dx));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0, dx_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    KI_OP_REQUIRES_OK(ctx, SoftmaxGrad(device, err.flat<int8_t>().data(), err_exponent, y_q.flat<int8_t>().data(),
                                       y_exponent, rows, n, scale_, dx->flat<float>().data(), &dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "dx_exponent", dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }

 private:
  SoftmaxScale scale_;
};

#define KI_REGISTER_SOFTMAX(device_type, Context)                                                            \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Softmax").Device(device_type).HostMemory("seed").HostMemory("y_exponent"), \
                          SoftmaxOp<Context>);                                                               \
  REGISTER_KERNEL_BUILDER(Name("IntOps>SoftmaxGrad").Device(device_type).HostMemory("y_exponent")           \
                              .HostMemory("dx_exponent").HostMemory("err_exponent"),                         \
                          SoftmaxGradOp<Context>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_SOFTMAX);
#undef KI_REGISTER_SOFTMAX

}  // namespace keras_int

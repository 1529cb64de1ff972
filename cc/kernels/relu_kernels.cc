#include <atomic>
#include <cstdint>

#include "cc/kernels/common.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

namespace {
constexpr int32_t kExponentBits = 0x7F800000;
}  // namespace

class ReluOp : public OpKernel {
 public:
  explicit ReluOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  // Works on the bit patterns of the carrier floats: integer tests and masks.
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    Tensor* positive = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, x.shape(), &positive));
    const int32_t* in = reinterpret_cast<const int32_t*>(x.flat<float>().data());
    int32_t* out = reinterpret_cast<int32_t*>(y->flat<float>().data());
    bool* keep = positive->flat<bool>().data();
    std::atomic<bool> bad{false};
    MakeParallelFor(ctx)(x.NumElements(), 2, [&](int64_t begin, int64_t end) {
      int32_t special = 0;
      for (int64_t i = begin; i < end; ++i) {
        const int32_t b = in[i];
        // As a signed integer the bit pattern is > 0 exactly when the sign is
        // clear and the value is not zero.
        const int32_t positive_mask = -static_cast<int32_t>(b > 0);
        special |= static_cast<int32_t>((b & kExponentBits) == kExponentBits);  // NaN, Inf
        keep[i] = b > 0;
        out[i] = b & positive_mask;
      }
      if (special) bad = true;
    });
    OP_REQUIRES(ctx, !bad, ::tensorflow::errors::InvalidArgument("relu: input contains NaN or Inf"));
  }
};

class ReluGradOp : public OpKernel {
 public:
  explicit ReluGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& positive = ctx->input(1);
    OP_REQUIRES(ctx, dy.shape() == positive.shape(),
                ::tensorflow::errors::InvalidArgument("relu_grad: dy has shape ", dy.shape().DebugString(),
                                                      ", the mask ", positive.shape().DebugString()));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, dy.shape(), &dx));
    const int32_t* in = reinterpret_cast<const int32_t*>(dy.flat<float>().data());
    const bool* keep = positive.flat<bool>().data();
    int32_t* out = reinterpret_cast<int32_t*>(dx->flat<float>().data());
    MakeParallelFor(ctx)(dy.NumElements(), 2, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = in[i] & -static_cast<int32_t>(keep[i]);
    });
  }
};

REGISTER_KERNEL_BUILDER(Name("IntOps>Relu").Device(::tensorflow::DEVICE_CPU), ReluOp);
REGISTER_KERNEL_BUILDER(Name("IntOps>ReluGrad").Device(::tensorflow::DEVICE_CPU), ReluGradOp);

}  // namespace keras_int

#include <string>
#include <vector>

#include "cc/core/cross_entropy.h"
#include "cc/core/sgd.h"
#include "cc/kernels/common.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

template <typename Label>
class SoftmaxCrossEntropyGradOp : public OpKernel {
 public:
  explicit SoftmaxCrossEntropyGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    const Tensor& labels = ctx->input(2);
    OP_REQUIRES_OK(ctx, CheckRank(logits, 2, "softmax_cross_entropy_grad: logits"));
    OP_REQUIRES_OK(ctx, CheckRank(labels, 1, "softmax_cross_entropy_grad: labels"));
    const int64_t batch = logits.dim_size(0), classes = logits.dim_size(1);
    OP_REQUIRES(ctx, labels.dim_size(0) == batch,
                ::tensorflow::errors::InvalidArgument(
                    "softmax_cross_entropy_grad: labels has ", labels.dim_size(0),
                    " entries for a batch of ", batch));
    OP_REQUIRES(ctx, classes > 0 || batch == 0,
                ::tensorflow::errors::InvalidArgument("softmax_cross_entropy_grad: logits has no classes"));
    int exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, 1, "softmax_cross_entropy_grad: exponent", kMinExponent,
                                    kMaxExponent, &exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, 3, &seed));
    std::vector<int64_t> label_values(batch);
    auto l = labels.flat<Label>();
    for (int64_t b = 0; b < batch; ++b) {
      OP_REQUIRES(ctx, l(b) >= 0 && l(b) < classes,
                  ::tensorflow::errors::InvalidArgument("softmax_cross_entropy_grad: labels[", b,
                                                        "] = ", l(b), " is out of range [0, ",
                                                        classes, ")"));
      label_values[b] = l(b);
    }
    Tensor* err = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, logits.shape(), &err));
    SoftmaxCrossEntropyGrad(logits.flat<int8_t>().data(), batch, classes, exponent,
                            label_values.data(), rounding_, seed, err->flat<int8_t>().data());
    SetScalarInt32(ctx, 1, kCrossEntropyErrorExponent);
  }

 private:
  Rounding rounding_;
};

template <typename T>
class SgdUpdateOp : public OpKernel {
 public:
  explicit SgdUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("momentum", &options_.momentum));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weight_decay", &options_.weight_decay));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(0);
    const Tensor& grad = ctx->input(1);
    const Tensor& buffer = ctx->input(2);
    const Tensor& mu = ctx->input(3);
    OP_REQUIRES(ctx, w.shape() == grad.shape(),
                ::tensorflow::errors::InvalidArgument("sgd_update: grad has shape ",
                                                      grad.shape().DebugString(),
                                                      ", the weights ", w.shape().DebugString()));
    const bool use_momentum = options_.momentum > 0;
    OP_REQUIRES(ctx, !use_momentum || buffer.shape() == w.shape(),
                ::tensorflow::errors::InvalidArgument("sgd_update: momentum_buffer has shape ",
                                                      buffer.shape().DebugString(),
                                                      ", the weights ", w.shape().DebugString()));
    OP_REQUIRES(ctx, ::tensorflow::TensorShapeUtils::IsScalar(mu.shape()),
                ::tensorflow::errors::InvalidArgument("sgd_update: mu must be a scalar"));
    SgdOptions options = options_;
    options.mu = mu.scalar<int32_t>()();
    Tensor* new_w = nullptr;
    Tensor* new_buffer = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, w.shape(), &new_w));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, buffer.shape(), &new_buffer));
    std::copy_n(w.flat<T>().data(), w.NumElements(), new_w->flat<T>().data());
    std::copy_n(buffer.flat<T>().data(), buffer.NumElements(), new_buffer->flat<T>().data());
    KI_OP_REQUIRES_OK(ctx, IntegerSgdUpdate<T>(new_w->flat<T>().data(), grad.flat<int32_t>().data(),
                                               w.NumElements(), options,
                                               use_momentum ? new_buffer->flat<T>().data() : nullptr));
  }

 private:
  SgdOptions options_;
};

REGISTER_KERNEL_BUILDER(Name("IntOps>SoftmaxCrossEntropyGrad")
                            .Device(::tensorflow::DEVICE_CPU)
                            .TypeConstraint<int32_t>("Tlabels"),
                        SoftmaxCrossEntropyGradOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("IntOps>SoftmaxCrossEntropyGrad")
                            .Device(::tensorflow::DEVICE_CPU)
                            .TypeConstraint<int64_t>("Tlabels"),
                        SoftmaxCrossEntropyGradOp<int64_t>);
REGISTER_KERNEL_BUILDER(Name("IntOps>SgdUpdate").Device(::tensorflow::DEVICE_CPU).TypeConstraint<int8_t>("T"),
                        SgdUpdateOp<int8_t>);
REGISTER_KERNEL_BUILDER(Name("IntOps>SgdUpdate").Device(::tensorflow::DEVICE_CPU).TypeConstraint<int16_t>("T"),
                        SgdUpdateOp<int16_t>);
REGISTER_KERNEL_BUILDER(Name("IntOps>SgdUpdate").Device(::tensorflow::DEVICE_CPU).TypeConstraint<int32_t>("T"),
                        SgdUpdateOp<int32_t>);

}  // namespace keras_int

#include <string>
#include <vector>

#include "cc/kernels/training_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

// T: the logits' and the error's mantissa type (int8, or int16 for DFP16).
template <typename Device, typename T, typename Label>
class SoftmaxCrossEntropyGradOp : public OpKernel {
 public:
  explicit SoftmaxCrossEntropyGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "logits", logits);
    KI_INPUT(ctx, "labels", labels);
    OP_REQUIRES_OK(ctx, CheckRank(logits, 2, "softmax_cross_entropy_grad: logits"));
    OP_REQUIRES_OK(ctx, CheckRank(labels, 1, "softmax_cross_entropy_grad: labels"));
    const int64_t batch = logits.dim_size(0), classes = logits.dim_size(1);
    OP_REQUIRES(ctx, labels.dim_size(0) == batch,
                ::tensorflow::errors::InvalidArgument(
                    "softmax_cross_entropy_grad: labels has ", labels.dim_size(0),
                    " entries for a batch of ", batch));
    OP_REQUIRES(ctx, classes > 0 || batch == 0,
                ::tensorflow::errors::InvalidArgument("softmax_cross_entropy_grad: logits has no classes"));
    OP_REQUIRES(ctx, classes <= kCrossEntropyMaxClasses,
                ::tensorflow::errors::InvalidArgument(
                    "softmax_cross_entropy_grad: logits has ", classes, " classes, more than the ",
                    kCrossEntropyMaxClasses, " whose softmax normaliser the int64 sum holds exactly"));
    int exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "exponent", "softmax_cross_entropy_grad: exponent", kMinExponent,
                                    kMaxExponent, &exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    Tensor* err = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("err", logits.shape(), &err));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", CrossEntropyErrorExponent(8 * sizeof(T))));
    if (err->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    // The device checks that every label lies in [0, classes).
    const Status status = SoftmaxCrossEntropyGrad<T, Label>(device, logits.flat<T>().data(), batch, classes,
                                                            exponent, labels.flat<Label>().data(), rounding_, seed,
                                                            err->flat<T>().data());
    KI_OP_REQUIRES_OK(ctx, status);
  }

 private:
  Rounding rounding_;
};

// G: the gradient's type (int32, or int64 from the DFP16 products).
template <typename Device, typename T, typename G>
class SgdUpdateOp : public OpKernel {
 public:
  explicit SgdUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("momentum", &options_.momentum));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weight_decay", &options_.weight_decay));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "w", w);
    KI_INPUT(ctx, "grad", grad);
    KI_INPUT(ctx, "momentum_buffer", buffer);
    KI_INPUT(ctx, "mu", mu);
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
    OP_REQUIRES_OK(ctx, ctx->allocate_output("new_w", w.shape(), &new_w));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("new_momentum_buffer", buffer.shape(), &new_buffer));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Copy(device, new_w->flat<T>().data(), w.flat<T>().data(), w.TotalBytes()));
    KI_OP_REQUIRES_OK(ctx, Copy(device, new_buffer->flat<T>().data(), buffer.flat<T>().data(),
                                       buffer.TotalBytes()));
    const Status status = IntegerSgdUpdate<T, G>(device, new_w->flat<T>().data(), grad.flat<G>().data(),
                                                 w.NumElements(), options,
                                                 use_momentum ? new_buffer->flat<T>().data() : nullptr);
    KI_OP_REQUIRES_OK(ctx, status);
  }

 private:
  SgdOptions options_;
};

// The updated weights and moments are new tensors (as SgdUpdate's): the
// optimizer assigns them to its variables.
// G: the gradient's type (int32, or int64 from the DFP16 products).
template <typename Device, typename T, typename G>
class AdamUpdateOp : public OpKernel {
 public:
  explicit AdamUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("beta_1", &options_.beta1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("beta_2", &options_.beta2));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("step_shift", &options_.step_shift));
    OP_REQUIRES_OK(ctx, ToTf(CheckAdamOptions(options_)));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "w", w);
    KI_INPUT(ctx, "grad", grad);
    KI_INPUT(ctx, "m", m);
    KI_INPUT(ctx, "v", v);
    KI_INPUT(ctx, "step", step);
    for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&grad, "grad"}, {&m, "m"}, {&v, "v"}}) {
      OP_REQUIRES(ctx, t->shape() == w.shape(),
                  ::tensorflow::errors::InvalidArgument("adam_update: ", name, " has shape ",
                                                        t->shape().DebugString(), ", the weights ",
                                                        w.shape().DebugString()));
    }
    OP_REQUIRES(ctx, ::tensorflow::TensorShapeUtils::IsScalar(step.shape()),
                ::tensorflow::errors::InvalidArgument("adam_update: step must be a scalar"));
    Tensor *new_w, *new_m, *new_v;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("new_w", w.shape(), &new_w));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("new_m", m.shape(), &new_m));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("new_v", v.shape(), &new_v));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Copy(device, new_w->flat<T>().data(), w.flat<T>().data(), w.TotalBytes()));
    KI_OP_REQUIRES_OK(ctx, Copy(device, new_m->flat<int32_t>().data(), m.flat<int32_t>().data(), m.TotalBytes()));
    KI_OP_REQUIRES_OK(ctx, Copy(device, new_v->flat<int32_t>().data(), v.flat<int32_t>().data(), v.TotalBytes()));
    const Status status = IntegerAdamUpdate<T, G>(device, new_w->flat<T>().data(), grad.flat<G>().data(),
                                                  new_m->flat<int32_t>().data(), new_v->flat<int32_t>().data(),
                                                  w.NumElements(), step.scalar<int64_t>()(), options_);
    KI_OP_REQUIRES_OK(ctx, status);
  }

 private:
  AdamOptions options_;
};

#define KI_REGISTER_CROSS_ENTROPY(device_type, DeviceClass, T, Label)                                      \
  REGISTER_KERNEL_BUILDER(Name("IntOps>SoftmaxCrossEntropyGrad").Device(device_type).TypeConstraint<T>("T")  \
                              .TypeConstraint<Label>("Tlabels").HostMemory("exponent").HostMemory("seed")    \
                              .HostMemory("err_exponent"),                                                   \
                          SoftmaxCrossEntropyGradOp<DeviceClass, T, Label>)
#define KI_REGISTER_ADAM(device_type, DeviceClass, T, G)                                                  \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AdamUpdate").Device(device_type).TypeConstraint<T>("T")           \
                              .TypeConstraint<G>("G").HostMemory("step"), AdamUpdateOp<DeviceClass, T, G>)
#define KI_REGISTER_SGD(device_type, DeviceClass, T, G)                                                   \
  REGISTER_KERNEL_BUILDER(Name("IntOps>SgdUpdate").Device(device_type).TypeConstraint<T>("T")            \
                              .TypeConstraint<G>("G").HostMemory("mu"), SgdUpdateOp<DeviceClass, T, G>)
#define KI_REGISTER_TRAINING(device_type, DeviceClass)                                              \
  KI_REGISTER_CROSS_ENTROPY(device_type, DeviceClass, int8_t, int32_t);                               \
  KI_REGISTER_CROSS_ENTROPY(device_type, DeviceClass, int8_t, int64_t);                               \
  KI_REGISTER_CROSS_ENTROPY(device_type, DeviceClass, int16_t, int32_t);                              \
  KI_REGISTER_CROSS_ENTROPY(device_type, DeviceClass, int16_t, int64_t);                              \
  KI_REGISTER_SGD(device_type, DeviceClass, int8_t, int32_t);                                          \
  KI_REGISTER_SGD(device_type, DeviceClass, int16_t, int32_t);                                         \
  KI_REGISTER_SGD(device_type, DeviceClass, int32_t, int32_t);                                         \
  KI_REGISTER_SGD(device_type, DeviceClass, int8_t, int64_t);                                          \
  KI_REGISTER_SGD(device_type, DeviceClass, int16_t, int64_t);                                         \
  KI_REGISTER_SGD(device_type, DeviceClass, int32_t, int64_t);                                         \
  KI_REGISTER_ADAM(device_type, DeviceClass, int8_t, int32_t);                                         \
  KI_REGISTER_ADAM(device_type, DeviceClass, int16_t, int32_t);                                        \
  KI_REGISTER_ADAM(device_type, DeviceClass, int32_t, int32_t);                                        \
  KI_REGISTER_ADAM(device_type, DeviceClass, int8_t, int64_t);                                         \
  KI_REGISTER_ADAM(device_type, DeviceClass, int16_t, int64_t);                                        \
  KI_REGISTER_ADAM(device_type, DeviceClass, int32_t, int64_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_TRAINING);
#undef KI_REGISTER_CROSS_ENTROPY
#undef KI_REGISTER_SGD
#undef KI_REGISTER_ADAM
#undef KI_REGISTER_TRAINING

}  // namespace keras_int

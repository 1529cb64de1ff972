// Batch and layer normalization kernels (cc/ops/norm_ops.cc;
// docs/algorithms.md sections 8 and 9). x is viewed as [rows, channels],
// channels its last axis: batch norm normalises the columns, layer norm
// the rows.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "cc/kernels/common.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/norm_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

namespace {

// What the two backward kernels read alike: dy (rank >= 1, checked by the
// caller) as [rows, channels], per-channel inputs of shape [channels], and
// the x and gamma exponents. `fn` names the op in the errors.
struct GradGeometry {
  int64_t rows, channels;
  int x_exponent, gamma_exponent;
};

::absl::Status ReadGradGeometry(OpKernelContext* ctx, const char* fn, const Tensor& dy,
                                std::initializer_list<const Tensor*> per_channel, GradGeometry* g) {
  g->channels = dy.dim_size(dy.dims() - 1);
  g->rows = g->channels == 0 ? 0 : dy.NumElements() / g->channels;
  for (const Tensor* t : per_channel) {
    if (t->dims() != 1 || t->dim_size(0) != g->channels) {
      return ::tensorflow::errors::InvalidArgument(fn, ": per-channel inputs must have shape [", g->channels,
                                                   "], got ", t->shape().DebugString());
    }
  }
  const std::string x_what = std::string(fn) + ": x_exponent", gamma_what = std::string(fn) + ": gamma_exponent";
  TF_RETURN_IF_ERROR(GetExponent(ctx, "x_exponent", x_what.c_str(), kMinExponent, kMaxExponent, &g->x_exponent));
  return GetExponent(ctx, "gamma_exponent", gamma_what.c_str(), kMinExponent, kMaxExponent, &g->gamma_exponent);
}

// What the forward normalization kernels share: epsilon and rounding
// attributes, gamma and beta read under their variables' locks. `fn` names
// the op in the errors.
class NormOpBase : public OpKernel {
 public:
  explicit NormOpBase(OpKernelConstruction* ctx, const char* fn = "batch_norm") : OpKernel(ctx), fn_(fn) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    int64_t mantissa, exponent;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon_mantissa", &mantissa));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon_exponent", &exponent));
    OP_REQUIRES_OK(ctx, ToTf(CheckNormEpsilon(mantissa, static_cast<int>(exponent))));
    eps_mantissa_ = mantissa;
    eps_exponent_ = static_cast<int>(exponent);
  }

 protected:
  // x as [rows, channels].
  ::absl::Status Geometry(const Tensor& x, int64_t* rows, int64_t* channels) const {
    if (x.dims() < 1) {
      return ::tensorflow::errors::InvalidArgument(fn_, ": x must have rank >= 1, got shape ",
                                                   x.shape().DebugString());
    }
    *channels = x.dim_size(x.dims() - 1);
    *rows = *channels == 0 ? 0 : x.NumElements() / *channels;
    return ::absl::OkStatus();
  }

  // Checks a [channels] parameter variable's dtype and shape.
  ::absl::Status CheckParameter(const Tensor& t, ::tensorflow::DataType dtype, const char* name,
                                int64_t channels) const {
    if (t.dtype() != dtype) {
      return ::tensorflow::errors::InvalidArgument(fn_, ": ", name, " variable must be ",
                                                   ::tensorflow::DataTypeString(dtype), ", got ",
                                                   ::tensorflow::DataTypeString(t.dtype()));
    }
    if (t.dims() != 1 || t.dim_size(0) != channels) {
      return ::tensorflow::errors::InvalidArgument(fn_, ": ", name, " must have shape [", channels,
                                                   "] (the input's channels), got ", t.shape().DebugString());
    }
    return ::absl::OkStatus();
  }

  // Runs fn(params, gamma tensor) with gamma and beta locked.
  template <typename Fn>
  ::absl::Status WithParameters(OpKernelContext* ctx, int64_t channels, int gamma_exponent, Fn fn) {
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> gamma_var, beta_var;
    TF_RETURN_IF_ERROR(LookupVariable(ctx, "gamma", &gamma_var));
    TF_RETURN_IF_ERROR(LookupVariable(ctx, "beta", &beta_var));
    ::tensorflow::tf_shared_lock gamma_lock(*gamma_var->mu());
    ::tensorflow::tf_shared_lock beta_lock(*beta_var->mu());
    const Tensor& gamma = *gamma_var->tensor();
    const Tensor& beta = *beta_var->tensor();
    TF_RETURN_IF_ERROR(CheckParameter(gamma, ::tensorflow::DT_INT8, "gamma", channels));
    TF_RETURN_IF_ERROR(CheckParameter(beta, ::tensorflow::DT_INT32, "beta", channels));
    const NormParams params{gamma.flat<int8_t>().data(), beta.flat<int32_t>().data(), gamma_exponent, eps_mantissa_,
                            eps_exponent_};
    return fn(params, gamma);
  }

  const char* fn_;
  Rounding rounding_;
  int64_t eps_mantissa_;
  int eps_exponent_;
};

}  // namespace

template <typename Context>
class BatchNormOp : public NormOpBase {
 public:
  using NormOpBase::NormOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    int64_t rows, channels;
    OP_REQUIRES_OK(ctx, Geometry(x, &rows, &channels));
    int gamma_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "gamma_exponent", "batch_norm: gamma_exponent", kMinExponent, kMaxExponent,
                                    &gamma_exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    const TensorShape vector({channels});
    Tensor *y, *x_q, *x_sum, *inv_sqrt, *inv_shift, *gamma_q, *mean, *variance;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x_q", x.shape(), &x_q));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x_sum", vector, &x_sum));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_sqrt", vector, &inv_sqrt));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_shift", vector, &inv_shift));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("gamma_q", vector, &gamma_q));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("batch_mean", vector, &mean));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("batch_variance", vector, &variance));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    int x_exponent = 0, y_exponent = 0, mean_exponent = 0, variance_exponent = 0;
    KI_OP_REQUIRES_OK(ctx, Quantize<int8_t>(device, x.flat<float>().data(), x.NumElements(),
                                            x_q->flat<int8_t>().data(), &x_exponent));
    OP_REQUIRES_OK(ctx, WithParameters(ctx, channels, gamma_exponent, [&](const NormParams& params, const Tensor& gamma) {
      TF_RETURN_IF_ERROR(ToTf(Copy(device, gamma_q->flat<int8_t>().data(), gamma.flat<int8_t>().data(),
                                   gamma.TotalBytes())));
      return ToTf(BatchNormTraining(device, x_q->flat<int8_t>().data(), rows, channels, x_exponent, params, rounding_,
                                    seed, y->flat<float>().data(), &y_exponent, x_sum->flat<int64_t>().data(),
                                    inv_sqrt->flat<int64_t>().data(), inv_shift->flat<int32_t>().data(),
                                    mean->flat<int32_t>().data(), &mean_exponent, variance->flat<int32_t>().data(),
                                    &variance_exponent));
    }));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", y_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "x_exponent", x_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "batch_mean_exponent", mean_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "batch_variance_exponent", variance_exponent));
  }
};

template <typename Context>
class BatchNormInferenceOp : public NormOpBase {
 public:
  using NormOpBase::NormOpBase;
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "moving_mean", moving_mean);
    KI_INPUT(ctx, "moving_variance", moving_variance);
    int64_t rows, channels;
    OP_REQUIRES_OK(ctx, Geometry(x, &rows, &channels));
    for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&moving_mean, "moving_mean"},
                                  std::pair<const Tensor*, const char*>{&moving_variance, "moving_variance"}}) {
      OP_REQUIRES(ctx, t->dims() == 1 && t->dim_size(0) == channels,
                  ::tensorflow::errors::InvalidArgument("batch_norm: ", name, " must have shape [", channels,
                                                        "] (the input's channels), got ", t->shape().DebugString()));
    }
    int gamma_exponent, mean_exponent, variance_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "gamma_exponent", "batch_norm: gamma_exponent", kMinExponent, kMaxExponent,
                                    &gamma_exponent));
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "moving_mean_exponent", "batch_norm: moving_mean_exponent",
                                    -kNormStatisticExponentLimit, kNormStatisticExponentLimit, &mean_exponent));
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "moving_variance_exponent", "batch_norm: moving_variance_exponent",
                                    -kNormStatisticExponentLimit, kNormStatisticExponentLimit, &variance_exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    const TensorShape vector({channels});
    Tensor *y, *count, *inv_sqrt, *inv_shift, *gamma_q;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("count", vector, &count));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_sqrt", vector, &inv_sqrt));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_shift", vector, &inv_shift));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("gamma_q", vector, &gamma_q));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor q;
    int x_exponent = 0, y_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, x, &q, &x_exponent));
    OP_REQUIRES_OK(ctx, WithParameters(ctx, channels, gamma_exponent, [&](const NormParams& params, const Tensor& gamma) {
      TF_RETURN_IF_ERROR(ToTf(Copy(device, gamma_q->flat<int8_t>().data(), gamma.flat<int8_t>().data(),
                                   gamma.TotalBytes())));
      return ToTf(BatchNormInference(device, q.flat<int8_t>().data(), rows, channels, x_exponent, params,
                                     moving_mean.flat<int32_t>().data(), mean_exponent,
                                     moving_variance.flat<int32_t>().data(), variance_exponent, rounding_, seed,
                                     y->flat<float>().data(), &y_exponent, count->flat<int64_t>().data(),
                                     inv_sqrt->flat<int64_t>().data(), inv_shift->flat<int32_t>().data()));
    }));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", y_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "x_exponent", x_exponent));
  }
};

template <typename Context>
class BatchNormGradOp : public OpKernel {
 public:
  explicit BatchNormGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "x_q", x_q);
    KI_INPUT(ctx, "x_sum", x_sum);
    KI_INPUT(ctx, "inv_sqrt", inv_sqrt);
    KI_INPUT(ctx, "inv_shift", inv_shift);
    KI_INPUT(ctx, "gamma_q", gamma);
    OP_REQUIRES(ctx, dy.dims() >= 1 && dy.shape() == x_q.shape(),
                ::tensorflow::errors::InvalidArgument("batch_norm_grad: dy has shape ", dy.shape().DebugString(),
                                                      ", x_q ", x_q.shape().DebugString()));
    GradGeometry g;
    OP_REQUIRES_OK(ctx, ReadGradGeometry(ctx, "batch_norm_grad", dy, {&x_sum, &inv_sqrt, &inv_shift, &gamma}, &g));
    Tensor *dx, *dgamma, *dbeta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", dy.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dgamma", gamma.shape(), &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dbeta", gamma.shape(), &dbeta));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0, dx_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    KI_OP_REQUIRES_OK(ctx, BatchNormGrad(device, err.flat<int8_t>().data(), err_exponent, x_q.flat<int8_t>().data(),
                                         g.rows, g.channels, g.x_exponent, x_sum.flat<int64_t>().data(),
                                         inv_sqrt.flat<int64_t>().data(), inv_shift.flat<int32_t>().data(),
                                         gamma.flat<int8_t>().data(), g.gamma_exponent, dx->flat<float>().data(),
                                         &dx_exponent, dgamma->flat<int32_t>().data(), dbeta->flat<int32_t>().data()));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "dx_exponent", dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }
};

template <typename Context>
class BatchNormFrozenGradOp : public OpKernel {
 public:
  explicit BatchNormFrozenGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "count", count);
    KI_INPUT(ctx, "inv_sqrt", inv_sqrt);
    KI_INPUT(ctx, "inv_shift", inv_shift);
    KI_INPUT(ctx, "gamma_q", gamma);
    OP_REQUIRES(ctx, dy.dims() >= 1,
                ::tensorflow::errors::InvalidArgument("batch_norm_frozen_grad: dy must have rank >= 1, got shape ",
                                                      dy.shape().DebugString()));
    GradGeometry g;
    OP_REQUIRES_OK(ctx, ReadGradGeometry(ctx, "batch_norm_frozen_grad", dy, {&count, &inv_sqrt, &inv_shift, &gamma},
                                         &g));
    Tensor* dx;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", dy.shape(), &dx));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0, dx_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    KI_OP_REQUIRES_OK(ctx, BatchNormFrozenGrad(device, err.flat<int8_t>().data(), err_exponent, g.rows, g.channels,
                                               g.x_exponent, count.flat<int64_t>().data(),
                                               inv_sqrt.flat<int64_t>().data(), inv_shift.flat<int32_t>().data(),
                                               gamma.flat<int8_t>().data(), g.gamma_exponent, dx->flat<float>().data(),
                                               &dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "dx_exponent", dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }
};

// [channels] vectors: host memory on every device.
class NormMovingAverageOp : public OpKernel {
 public:
  explicit NormMovingAverageOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("momentum", &momentum_));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "moving", moving);
    KI_INPUT(ctx, "batch", batch);
    OP_REQUIRES(ctx, moving.dims() == 1 && moving.shape() == batch.shape(),
                ::tensorflow::errors::InvalidArgument("moving_average: moving and batch must be vectors of one "
                                                      "shape, got ", moving.shape().DebugString(), " and ",
                                                      batch.shape().DebugString()));
    int moving_exponent, batch_exponent, result_exponent = 0;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "moving_exponent", "moving_average: moving_exponent",
                                    -kNormStatisticExponentLimit, kNormStatisticExponentLimit, &moving_exponent));
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "batch_exponent", "moving_average: batch_exponent",
                                    -kNormStatisticExponentLimit, kNormStatisticExponentLimit, &batch_exponent));
    Tensor* result;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("result", moving.shape(), &result));
    KI_OP_REQUIRES_OK(ctx, NormMovingAverage(moving.flat<int32_t>().data(), moving_exponent,
                                             batch.flat<int32_t>().data(), batch_exponent, moving.NumElements(),
                                             momentum_, result->flat<int32_t>().data(), &result_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "result_exponent", result_exponent));
  }

 private:
  int64_t momentum_;
};

template <typename Context>
class LayerNormOp : public NormOpBase {
 public:
  // dx_bits is its gradient's (IntOps>LayerNormGrad's); checked here so that
  // a bad value fails before the backward pass.
  explicit LayerNormOp(OpKernelConstruction* ctx) : NormOpBase(ctx, "layer_norm") {
    int dx_bits;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dx_bits", &dx_bits));
    OP_REQUIRES_OK(ctx, ToTf(CheckLayerNormGradBits(dx_bits)));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    int64_t rows, features;
    OP_REQUIRES_OK(ctx, Geometry(x, &rows, &features));
    int gamma_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "gamma_exponent", "layer_norm: gamma_exponent", kMinExponent, kMaxExponent,
                                    &gamma_exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    TensorShape row_shape = x.shape();
    row_shape.RemoveLastDims(1);
    Tensor *y, *x_q, *x_sum, *inv_sqrt, *inv_shift, *gamma_q;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x_q", x.shape(), &x_q));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x_sum", row_shape, &x_sum));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_sqrt", row_shape, &inv_sqrt));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("inv_shift", row_shape, &inv_shift));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("gamma_q", TensorShape({features}), &gamma_q));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    int x_exponent = 0, y_exponent = 0;
    KI_OP_REQUIRES_OK(ctx, Quantize<int8_t>(device, x.flat<float>().data(), x.NumElements(),
                                            x_q->flat<int8_t>().data(), &x_exponent));
    OP_REQUIRES_OK(ctx, WithParameters(ctx, features, gamma_exponent, [&](const NormParams& params, const Tensor& gamma) {
      TF_RETURN_IF_ERROR(ToTf(Copy(device, gamma_q->flat<int8_t>().data(), gamma.flat<int8_t>().data(),
                                   gamma.TotalBytes())));
      return ToTf(LayerNorm(device, x_q->flat<int8_t>().data(), x_sum->NumElements(), features, x_exponent, params,
                            rounding_, seed, y->flat<float>().data(), &y_exponent, x_sum->flat<int64_t>().data(),
                            inv_sqrt->flat<int64_t>().data(), inv_shift->flat<int32_t>().data()));
    }));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", y_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "x_exponent", x_exponent));
  }
};

template <typename Context>
class LayerNormGradOp : public OpKernel {
 public:
  explicit LayerNormGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dx_bits", &dx_bits_));
    OP_REQUIRES_OK(ctx, ToTf(CheckLayerNormGradBits(dx_bits_)));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "x_q", x_q);
    KI_INPUT(ctx, "x_sum", x_sum);
    KI_INPUT(ctx, "inv_sqrt", inv_sqrt);
    KI_INPUT(ctx, "inv_shift", inv_shift);
    KI_INPUT(ctx, "gamma_q", gamma);
    OP_REQUIRES(ctx, dy.dims() >= 1 && dy.shape() == x_q.shape(),
                ::tensorflow::errors::InvalidArgument("layer_norm_grad: dy has shape ", dy.shape().DebugString(),
                                                      ", x_q ", x_q.shape().DebugString()));
    TensorShape row_shape = dy.shape();
    row_shape.RemoveLastDims(1);
    for (const Tensor* t : {&x_sum, &inv_sqrt, &inv_shift}) {
      OP_REQUIRES(ctx, t->shape() == row_shape,
                  ::tensorflow::errors::InvalidArgument("layer_norm_grad: per-row inputs must have shape ",
                                                        row_shape.DebugString(), ", got ",
                                                        t->shape().DebugString()));
    }
    GradGeometry g;
    OP_REQUIRES_OK(ctx, ReadGradGeometry(ctx, "layer_norm_grad", dy, {&gamma}, &g));
    Tensor *dx, *dgamma, *dbeta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dx", dy.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dgamma", gamma.shape(), &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dbeta", gamma.shape(), &dbeta));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0, dx_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    KI_OP_REQUIRES_OK(ctx, LayerNormGrad(device, err.flat<int8_t>().data(), err_exponent, x_q.flat<int8_t>().data(),
                                         x_sum.NumElements(), g.channels, g.x_exponent,
                                         x_sum.flat<int64_t>().data(), inv_sqrt.flat<int64_t>().data(),
                                         inv_shift.flat<int32_t>().data(), gamma.flat<int8_t>().data(),
                                         g.gamma_exponent, dx_bits_, dx->flat<float>().data(), &dx_exponent,
                                         dgamma->flat<int32_t>().data(), dbeta->flat<int32_t>().data()));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "dx_exponent", dx_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }

 private:
  int dx_bits_;
};

// gamma and beta are resource handles (host); exponents and seeds host
// scalars on every device; the moving statistics are [channels] vectors the
// GPU kernel reads on the device.
#define KI_REGISTER_NORM(device_type, Context)                                                                 \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BatchNorm").Device(device_type).HostMemory("gamma").HostMemory("beta")   \
                              .HostMemory("gamma_exponent").HostMemory("seed").HostMemory("error_exponent")     \
                              .HostMemory("y_exponent").HostMemory("x_exponent")                                \
                              .HostMemory("batch_mean_exponent").HostMemory("batch_variance_exponent"),         \
                          BatchNormOp<Context>);                                                                \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BatchNormInference").Device(device_type).HostMemory("gamma")             \
                              .HostMemory("beta").HostMemory("gamma_exponent").HostMemory("moving_mean_exponent") \
                              .HostMemory("moving_variance_exponent").HostMemory("seed").HostMemory("y_exponent") \
                              .HostMemory("x_exponent"),                                                        \
                          BatchNormInferenceOp<Context>);                                                       \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BatchNormFrozenGrad").Device(device_type).HostMemory("x_exponent")       \
                              .HostMemory("gamma_exponent").HostMemory("dx_exponent").HostMemory("err_exponent"), \
                          BatchNormFrozenGradOp<Context>);                                                      \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BatchNormGrad").Device(device_type).HostMemory("x_exponent")             \
                              .HostMemory("gamma_exponent").HostMemory("dx_exponent").HostMemory("err_exponent"), \
                          BatchNormGradOp<Context>);                                                            \
  REGISTER_KERNEL_BUILDER(Name("IntOps>NormMovingAverage").Device(device_type).HostMemory("moving")             \
                              .HostMemory("moving_exponent").HostMemory("batch").HostMemory("batch_exponent")   \
                              .HostMemory("result").HostMemory("result_exponent"),                              \
                          NormMovingAverageOp);                                                                 \
  REGISTER_KERNEL_BUILDER(Name("IntOps>LayerNorm").Device(device_type).HostMemory("gamma").HostMemory("beta")   \
                              .HostMemory("gamma_exponent").HostMemory("seed").HostMemory("error_exponent")     \
                              .HostMemory("y_exponent").HostMemory("x_exponent"),                               \
                          LayerNormOp<Context>);                                                                \
  REGISTER_KERNEL_BUILDER(Name("IntOps>LayerNormGrad").Device(device_type).HostMemory("x_exponent")             \
                              .HostMemory("gamma_exponent").HostMemory("dx_exponent").HostMemory("err_exponent"), \
                          LayerNormGradOp<Context>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_NORM);
#undef KI_REGISTER_NORM

}  // namespace keras_int

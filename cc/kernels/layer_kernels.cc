// The layer ops (cc/ops/layer_ops.cc): quantize the input carrier, multiply
// by the weights read under their variable's lock, add the optional bias,
// requantize into the output carrier. Inputs and outputs by their
// REGISTER_OP names; T (int8 or int16) is the mantissa type of the input
// and the weights. With relu = true the output is ReLU'd in the requantize
// pass (activation="relu") and `mask` records its positive elements.
#include <cstdint>
#include <type_traits>

#include "cc/kernels/add_device.h"
#include "cc/kernels/common.h"
#include "cc/kernels/conv_kernels.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/gemm_device.h"
#include "cc/kernels/relu_device.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"

namespace keras_int {

namespace {

// What the dense and convolution layer ops share: the input quantize, the
// weights snapshot, the bias, the output requantize. Each step returns a
// status; Compute stops at the first error. Op (CRTP) defines the product:
//   Plan: what one call computes (shapes, geometry), built per call, since
//     TensorFlow may run one kernel's Compute on several threads at once;
//   ::absl::Status MakePlan(const Tensor& x, const Tensor& w, Plan*, TensorShape* y_shape);
//   ::absl::Status Accumulate(Context&, const Plan&, const Tensor& x_q, const Tensor& w, Acc* acc):
//     the exact product of the input's mantissas and the weights (int32, or
//     int64 for T = int16).
template <typename Op, typename Context, typename T>
class LayerOpBase : public OpKernel {
 public:
  // `weights` is the name of the weights input ("kernel", "filter"); `op`
  // prefixes error messages ("dense").
  LayerOpBase(OpKernelConstruction* ctx, const char* op, const char* weights)
      : OpKernel(ctx), op_(op), weights_(weights) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("relu", &relu_));
    // error_bits is the registered gradient's; checked here so that a bad
    // value fails where the layer is called.
    int error_bits;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("error_bits", &error_bits));
    OP_REQUIRES(ctx, error_bits == 8 || error_bits == 16,
                ::tensorflow::errors::InvalidArgument(op, ": error_bits must be 8 or 16, got ", error_bits));
    int num_biases;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &num_biases));
    OP_REQUIRES(ctx, num_biases <= 1,
                ::tensorflow::errors::InvalidArgument("a layer op takes at most one bias, got N = ", num_biases));
  }

  void Compute(OpKernelContext* ctx) override {
    const std::string exponent_name = std::string(weights_) + "_exponent";
    int w_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, exponent_name, (std::string(op_) + ": " + exponent_name).c_str(),
                                    kMinExponent, kMaxExponent, &w_exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    OP_REQUIRES_OK(ctx, Run(ctx, device, w_exponent, seed));
  }

 private:
  ::absl::Status Run(OpKernelContext* ctx, Context& device, int w_exponent, RoundingSeed seed) {
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> weights;
    TF_RETURN_IF_ERROR(LookupVariable(ctx, weights_, &weights));
    // The weights stay locked (shared) while they are copied.
    Tensor w;
    {
      ::tensorflow::tf_shared_lock lock(*weights->mu());
      TF_RETURN_IF_ERROR(SnapshotWeights(ctx, device, *weights->tensor(), &w));
    }
    const Tensor* x;
    TF_RETURN_IF_ERROR(ctx->input("x", &x));
    typename Op::Plan plan;
    TensorShape y_shape;
    TF_RETURN_IF_ERROR(static_cast<Op*>(this)->MakePlan(*x, w, &plan, &y_shape));
    const Tensor* x_q;
    int x_exponent;
    TF_RETURN_IF_ERROR(QuantizeInput(ctx, device, *x, &x_q, &x_exponent));
    Tensor* y;
    int32_t* acc;
    TF_RETURN_IF_ERROR(AllocateOutput(ctx, y_shape, &y, &acc));
    if constexpr (std::is_same_v<T, int16_t>) {
      // DFP16: int16 products are summed exactly in int64 (docs/algorithms.md
      // 16), which does not fit the carrier's memory: a temporary.
      Tensor wide;
      TF_RETURN_IF_ERROR(ctx->allocate_temp(::tensorflow::DT_INT64, y_shape, &wide));
      int64_t* acc64 = wide.flat<int64_t>().data();
      if (y_shape.num_elements() > 0) TF_RETURN_IF_ERROR(Op::Accumulate(device, plan, *x_q, w, acc64));
      TF_RETURN_IF_ERROR(AddBias(ctx, device, acc64, y_shape, x_exponent));
      return EmitOutput(ctx, device, acc64, y, x_exponent + w_exponent, seed);
    } else {
      if (y_shape.num_elements() > 0) TF_RETURN_IF_ERROR(Op::Accumulate(device, plan, *x_q, w, acc));
      TF_RETURN_IF_ERROR(AddBias(ctx, device, acc, y_shape, x_exponent));
      return EmitOutput(ctx, device, acc, y, x_exponent + w_exponent, seed);
    }
  }

  // Copies the weights into the output `<weights>_q` (what the gradient
  // multiplies with: the optimizer may update the variable before the
  // backward pass runs) and returns that copy in *w.
  ::absl::Status SnapshotWeights(OpKernelContext* ctx, Context& device, const Tensor& variable, Tensor* w) {
    if (variable.dtype() != ::tensorflow::DataTypeToEnum<T>::v()) {
      return ::tensorflow::errors::InvalidArgument(
          op_, ": ", weights_, " variable must be ", ::tensorflow::DataTypeString(::tensorflow::DataTypeToEnum<T>::v()),
          ", got ", ::tensorflow::DataTypeString(variable.dtype()));
    }
    Tensor* snapshot = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(std::string(weights_) + "_q", variable.shape(), &snapshot));
    TF_RETURN_IF_ERROR(ToTf(Copy(device, snapshot->flat<T>().data(), variable.flat<T>().data(), variable.TotalBytes())));
    *w = *snapshot;
    return ::absl::OkStatus();
  }

  // Quantizes x into the outputs x_q and x_exponent.
  ::absl::Status QuantizeInput(OpKernelContext* ctx, Context& device, const Tensor& x, const Tensor** x_q,
                               int* x_exponent) {
    Tensor* q = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output("x_q", x.shape(), &q));
    TF_RETURN_IF_ERROR(ToTf(Quantize<T>(device, x.flat<float>().data(), x.NumElements(), q->flat<T>().data(),
                                        x_exponent)));
    TF_RETURN_IF_ERROR(SetScalarInt32(ctx, "x_exponent", *x_exponent));
    *x_q = q;
    return ::absl::OkStatus();
  }

  // Allocates the output carrier y; the int32 accumulator is computed in
  // its memory and then replaced by the carrier in place (EmitOutput), so
  // no accumulator-sized temporary exists. Called after QuantizeInput: the
  // input carrier is dead by then, so when nothing else holds it and it has
  // as many elements (a convolution keeping its width), its buffer becomes
  // the output.
  ::absl::Status AllocateOutput(OpKernelContext* ctx, const TensorShape& shape, Tensor** y, int32_t** acc) {
    TF_RETURN_IF_ERROR(ctx->forward_input_or_allocate_output({"x"}, "y", shape, y));
    static_assert(sizeof(float) == sizeof(int32_t), "a carrier element holds an accumulator");
    *acc = reinterpret_cast<int32_t*>((*y)->flat<float>().data());
    return ::absl::OkStatus();
  }

  // Adds the optional int32 bias (at the weights' exponent) to acc (int32,
  // or int64 for DFP16), whose exponent is x_exponent + the weights' exponent.
  template <typename Acc>
  ::absl::Status AddBias(OpKernelContext* ctx, Context& device, Acc* acc, const TensorShape& shape,
                         int x_exponent) {
    ::tensorflow::OpInputList biases;
    TF_RETURN_IF_ERROR(ctx->input_list("bias", &biases));
    if (biases.size() == 0) return ::absl::OkStatus();
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> var;
    TF_RETURN_IF_ERROR(::tensorflow::LookupResource(ctx, biases[0].flat<::tensorflow::ResourceHandle>()(0), &var));
    ::tensorflow::tf_shared_lock lock(*var->mu());
    const Tensor& bias = *var->tensor();
    const int64_t channels = shape.dim_size(shape.dims() - 1);
    if (bias.dtype() != ::tensorflow::DT_INT32) {
      return ::tensorflow::errors::InvalidArgument(op_, ": bias variable must be int32, got ",
                                                   ::tensorflow::DataTypeString(bias.dtype()));
    }
    if (bias.dims() != 1 || bias.dim_size(0) != channels) {
      return ::tensorflow::errors::InvalidArgument(op_, ": bias must have shape [", channels, "], got ",
                                                   bias.shape().DebugString());
    }
    if (shape.num_elements() == 0) return ::absl::OkStatus();  // no rows, or no channels to divide them by
    return ToTf(keras_int::AddBias(device, acc, shape.num_elements() / channels, channels,
                                   bias.flat<int32_t>().data(), -x_exponent));
  }

  // Requantizes the accumulator acc (at acc_exponent; for int8 it is y's own
  // memory) into the carrier y of T's width and the output y_exponent, with
  // the ReLU and its mask in the same pass when the op has relu = true (the
  // mask is empty otherwise).
  template <typename Acc>
  ::absl::Status EmitOutput(OpKernelContext* ctx, Context& device, const Acc* acc, Tensor* y, int acc_exponent,
                            RoundingSeed seed) {
    const int64_t n = y->NumElements();
    Tensor* mask = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output("mask", TensorShape({relu_ ? ReluMaskWords(n) : 0}), &mask));
    int exponent;
    float* out = y->flat<float>().data();
    if (relu_) {
      TF_RETURN_IF_ERROR(ToTf(RequantizeReluToCarrier(device, acc, n, acc_exponent, rounding_, seed, out, &exponent,
                                                      reinterpret_cast<uint32_t*>(mask->flat<int32_t>().data()),
                                                      8 * sizeof(T))));
    } else {
      TF_RETURN_IF_ERROR(
          ToTf(RequantizeToCarrier(device, acc, n, acc_exponent, rounding_, seed, out, &exponent, 8 * sizeof(T))));
    }
    return SetScalarInt32(ctx, "y_exponent", exponent);
  }

  const char* op_;
  const char* weights_;
  Rounding rounding_;
  bool relu_;
};

}  // namespace

template <typename Context, typename T>
class DenseLayerOp : public LayerOpBase<DenseLayerOp<Context, T>, Context, T> {
 public:
  explicit DenseLayerOp(OpKernelConstruction* ctx) : LayerOpBase<DenseLayerOp, Context, T>(ctx, "dense", "kernel") {}

  struct Plan {
    int64_t M, N, K;
  };
  ::absl::Status MakePlan(const Tensor& x, const Tensor& w, Plan* plan, TensorShape* y_shape) const {
    TF_RETURN_IF_ERROR(CheckRank(x, 2, "dense: x"));
    TF_RETURN_IF_ERROR(CheckRank(w, 2, "dense: kernel"));
    if (w.dim_size(0) != x.dim_size(1)) {
      return ::tensorflow::errors::InvalidArgument("dense: input has ", x.dim_size(1),
                                                   " features, the kernel expects ", w.dim_size(0));
    }
    *plan = Plan{x.dim_size(0), w.dim_size(1), x.dim_size(1)};
    return MakeShape("dense: output shape", {plan->M, plan->N}, y_shape);
  }
  template <typename Acc>
  static ::absl::Status Accumulate(Context& device, const Plan& plan, const Tensor& x_q, const Tensor& w, Acc* acc) {
    return ToTf(MatMul(device, x_q.flat<T>().data(), w.flat<T>().data(), plan.M, plan.N, plan.K, false, false, acc));
  }
};

template <typename Context, typename T>
class Conv2DLayerOp : public LayerOpBase<Conv2DLayerOp<Context, T>, Context, T> {
 public:
  explicit Conv2DLayerOp(OpKernelConstruction* ctx)
      : LayerOpBase<Conv2DLayerOp, Context, T>(ctx, "conv2d", "filter"), attrs_(ctx) {}

  using Plan = Conv2DGeometry;
  ::absl::Status MakePlan(const Tensor& x, const Tensor& w, Plan* plan, TensorShape* y_shape) const {
    TF_RETURN_IF_ERROR(CheckRank(w, 4, "conv2d: filter"));
    TF_RETURN_IF_ERROR(attrs_.Geometry(x.shape(), w.shape(), plan));
    return OutputShape(*plan, y_shape);
  }
  template <typename Acc>
  static ::absl::Status Accumulate(Context& device, const Plan& plan, const Tensor& x_q, const Tensor& w, Acc* acc) {
    return ToTf(Conv2D(device, plan, x_q.flat<T>().data(), w.flat<T>().data(), acc));
  }

 private:
  ConvAttrs attrs_;
};

// The weights and biases are resource handles (host); exponents and seeds
// are host scalars on every device.
#define KI_REGISTER_LAYERS_OF_TYPE(device_type, Context, T)                                                   \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Dense").Device(device_type).TypeConstraint<T>("T")                       \
                              .HostMemory("kernel").HostMemory("bias").HostMemory("kernel_exponent")            \
                              .HostMemory("seed").HostMemory("y_exponent").HostMemory("error_exponent")         \
                              .HostMemory("x_exponent"),                                                        \
                          DenseLayerOp<Context, T>);                                                            \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DLayer").Device(device_type).TypeConstraint<T>("T")                 \
                              .HostMemory("filter").HostMemory("bias").HostMemory("filter_exponent")            \
                              .HostMemory("seed").HostMemory("error_exponent").HostMemory("y_exponent")         \
                              .HostMemory("x_exponent"),                                                        \
                          Conv2DLayerOp<Context, T>)
#define KI_REGISTER_LAYERS(device_type, Context)            \
  KI_REGISTER_LAYERS_OF_TYPE(device_type, Context, int8_t); \
  KI_REGISTER_LAYERS_OF_TYPE(device_type, Context, int16_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_LAYERS);
#undef KI_REGISTER_LAYERS
#undef KI_REGISTER_LAYERS_OF_TYPE

}  // namespace keras_int

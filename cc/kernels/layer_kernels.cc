#include "cc/kernels/common.h"
#include "cc/kernels/conv_kernels.h"
#include "cc/kernels/layer_device.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"

namespace keras_int {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

namespace {

// Shared steps of the layer ops: the input carrier to int8, the int32
// accumulator back to an output carrier. The helpers take the device the
// kernel computes on.
class LayerOpBase : public OpKernel {
 public:
  explicit LayerOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &num_biases_));
    OP_REQUIRES(ctx, num_biases_ <= 1,
                ::tensorflow::errors::InvalidArgument("a layer op takes at most one bias, got N = ", num_biases_));
  }

 protected:
  // Quantizes input 0 into output 2 (x_q) and 3 (x_exponent).
  template <typename Device>
  bool QuantizeInput(OpKernelContext* ctx, Device& device, const Tensor** x_q, int* x_exponent) {
    const Tensor& x = ctx->input(0);
    Tensor* q = nullptr;
    ::absl::Status status = ctx->allocate_output(2, x.shape(), &q);
    if (status.ok()) {
      status = ToTf(device.template Quantize<int8_t>(x.flat<float>().data(), x.NumElements(),
                                                     q->flat<int8_t>().data(), x_exponent));
    }
    if (!status.ok()) {
      ctx->CtxFailure(__FILE__, __LINE__, status);
      return false;
    }
    SetScalarInt32(ctx, 3, *x_exponent);
    *x_q = q;
    return true;
  }

  // Allocates output 0 (the carrier) with `shape`; the int32 accumulator is
  // computed in its memory and then replaced by the carrier in place
  // (EmitOutput), so no accumulator-sized temporary exists. Called after
  // QuantizeInput: the input carrier is dead by then, so when nothing else
  // holds it and it has as many elements (a convolution keeping its width),
  // its buffer becomes the output.
  bool AllocateOutput(OpKernelContext* ctx, const TensorShape& shape, Tensor** y, int32_t** acc) {
    ::absl::Status status = ctx->forward_input_or_allocate_output({0}, 0, shape, y);
    if (!status.ok()) {
      ctx->CtxFailure(__FILE__, __LINE__, status);
      return false;
    }
    static_assert(sizeof(float) == sizeof(int32_t), "a carrier element holds an accumulator");
    *acc = reinterpret_cast<int32_t*>((*y)->flat<float>().data());
    return true;
  }

  // Requantizes the accumulator in y (at acc_exponent) into the carrier y
  // and output 1 (its exponent).
  template <typename Device>
  void EmitOutput(OpKernelContext* ctx, Device& device, Tensor* y, int acc_exponent) {
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, SeedIndex(), &seed));
    float* carrier = y->flat<float>().data();
    int exponent;
    KI_OP_REQUIRES_OK(ctx, device.RequantizeToCarrier(reinterpret_cast<const int32_t*>(carrier), y->NumElements(),
                                                      acc_exponent, rounding_, seed, carrier, &exponent));
    SetScalarInt32(ctx, 1, exponent);
  }

  // The int8 weights behind input 1, copied under the variable's lock into
  // output 4; fn computes with that copy.
  template <typename Device, typename Fn>
  void WithWeights(OpKernelContext* ctx, Device& device, const char* name, int rank, Fn fn) {
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> var;
    OP_REQUIRES_OK(ctx, ::tensorflow::LookupResource(ctx, ::tensorflow::HandleFromInput(ctx, 1), &var));
    ::tensorflow::tf_shared_lock lock(*var->mu());
    const Tensor& w = *var->tensor();
    OP_REQUIRES(ctx, w.dtype() == ::tensorflow::DT_INT8,
                ::tensorflow::errors::InvalidArgument(name, " variable must be int8, got ",
                                                      ::tensorflow::DataTypeString(w.dtype())));
    OP_REQUIRES_OK(ctx, CheckRank(w, rank, name));
    // A snapshot of the weights for the gradient (output 4).
    Tensor* snapshot = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, w.shape(), &snapshot));
    KI_OP_REQUIRES_OK(ctx, device.Copy(snapshot->flat<int8_t>().data(), w.flat<int8_t>().data(), w.TotalBytes()));
    fn(*snapshot);
  }

  // Inputs: x, weights, N biases, weight exponent, seed.
  int ExponentIndex() const { return 2 + num_biases_; }
  int SeedIndex() const { return 3 + num_biases_; }

  // Adds the optional int32 bias (at the weights' exponent) to acc, whose
  // exponent is x_exponent + the weights' exponent.
  template <typename Device>
  void AddOptionalBias(OpKernelContext* ctx, Device& device, int32_t* acc, const TensorShape& shape, int x_exponent,
                       const char* name) {
    if (num_biases_ == 0) return;
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> var;
    OP_REQUIRES_OK(ctx, ::tensorflow::LookupResource(ctx, ::tensorflow::HandleFromInput(ctx, 2), &var));
    ::tensorflow::tf_shared_lock lock(*var->mu());
    const Tensor& bias = *var->tensor();
    const int64_t channels = shape.dim_size(shape.dims() - 1);
    OP_REQUIRES(ctx, bias.dtype() == ::tensorflow::DT_INT32,
                ::tensorflow::errors::InvalidArgument(name, " bias variable must be int32, got ",
                                                      ::tensorflow::DataTypeString(bias.dtype())));
    OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == channels,
                ::tensorflow::errors::InvalidArgument(name, " bias must have shape [", channels,
                                                      "], got ", bias.shape().DebugString()));
    if (shape.num_elements() == 0) return;  // no rows, or no channels to divide them by
    KI_OP_REQUIRES_OK(ctx, device.AddBias(acc, shape.num_elements() / channels, channels,
                                          bias.flat<int32_t>().data(), -x_exponent));
  }

  Rounding rounding_;
  int num_biases_;
};

}  // namespace

template <typename Device>
class DenseLayerOp : public LayerOpBase {
 public:
  using LayerOpBase::LayerOpBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES_OK(ctx, CheckRank(x, 2, "dense: x"));
    int w_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, ExponentIndex(), "dense: kernel_exponent", kMinExponent,
                                    kMaxExponent, &w_exponent));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    WithWeights(ctx, device, "dense: kernel", 2, [&](const Tensor& w) {
      const int64_t M = x.dim_size(0), K = x.dim_size(1), N = w.dim_size(1);
      OP_REQUIRES(ctx, w.dim_size(0) == K,
                  ::tensorflow::errors::InvalidArgument("dense: input has ", K,
                                                        " features, the kernel expects ",
                                                        w.dim_size(0)));
      const Tensor* x_q;
      int x_exponent;
      if (!QuantizeInput(ctx, device, &x_q, &x_exponent)) return;
      TensorShape shape;
      OP_REQUIRES_OK(ctx, MakeShape("dense: output shape", {M, N}, &shape));
      Tensor* y;
      int32_t* acc;
      if (!AllocateOutput(ctx, shape, &y, &acc)) return;
      KI_OP_REQUIRES_OK(ctx, device.MatMul(x_q->flat<int8_t>().data(), w.flat<int8_t>().data(), M, N, K,
                                           false, false, acc));
      AddOptionalBias(ctx, device, acc, shape, x_exponent, "dense:");
      if (!ctx->status().ok()) return;
      EmitOutput(ctx, device, y, x_exponent + w_exponent);
    });
  }
};

template <typename Device>
class Conv2DLayerOp : public LayerOpBase {
 public:
  explicit Conv2DLayerOp(OpKernelConstruction* ctx) : LayerOpBase(ctx), attrs_(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    int w_exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, ExponentIndex(), "conv2d: filter_exponent", kMinExponent,
                                    kMaxExponent, &w_exponent));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    WithWeights(ctx, device, "conv2d: filter", 4, [&](const Tensor& w) {
      Conv2DGeometry g;
      OP_REQUIRES_OK(ctx, attrs_.Geometry(x.shape(), w.shape(), &g));
      const Tensor* x_q;
      int x_exponent;
      if (!QuantizeInput(ctx, device, &x_q, &x_exponent)) return;
      TensorShape shape;
      OP_REQUIRES_OK(ctx, OutputShape(g, &shape));
      Tensor* y;
      int32_t* acc;
      if (!AllocateOutput(ctx, shape, &y, &acc)) return;
      KI_OP_REQUIRES_OK(ctx, device.Conv2D(g, x_q->flat<int8_t>().data(), w.flat<int8_t>().data(), acc));
      AddOptionalBias(ctx, device, acc, shape, x_exponent, "conv2d:");
      if (!ctx->status().ok()) return;
      EmitOutput(ctx, device, y, x_exponent + w_exponent);
    });
  }

 private:
  ConvAttrs attrs_;
};

// The weights and biases are resource handles (host); exponents and seeds
// are host scalars on every device.
#define KI_REGISTER_LAYERS(device_type, DeviceClass)                                                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Dense").Device(device_type).HostMemory("kernel").HostMemory("bias") \
                              .HostMemory("kernel_exponent").HostMemory("seed").HostMemory("y_exponent") \
                              .HostMemory("error_exponent")                                              \
                              .HostMemory("x_exponent"),                                                 \
                          DenseLayerOp<DeviceClass>);                                                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Conv2DLayer").Device(device_type).HostMemory("filter")             \
                              .HostMemory("bias").HostMemory("filter_exponent").HostMemory("seed")       \
                              .HostMemory("error_exponent")                                              \
                              .HostMemory("y_exponent").HostMemory("x_exponent"),                        \
                          Conv2DLayerOp<DeviceClass>)
KI_REGISTER_LAYERS(::tensorflow::DEVICE_CPU, CpuDevice);
#if KERAS_INT_CUDA
KI_REGISTER_LAYERS(::tensorflow::DEVICE_GPU, GpuDevice);
#endif
#undef KI_REGISTER_LAYERS

}  // namespace keras_int

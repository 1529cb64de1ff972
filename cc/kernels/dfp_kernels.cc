#include <memory>
#include <type_traits>

#include "cc/kernels/add_device.h"
#include "cc/kernels/dfp_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

template <typename Device, typename T>
class QuantizeOp : public OpKernel {
 public:
  explicit QuantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    Tensor* q = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("q", x.shape(), &q));
    int exponent = 0;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Quantize<T>(device, x.flat<float>().data(), x.NumElements(),
                                                       q->flat<T>().data(), &exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "exponent", exponent));
  }
};

template <typename Device, typename T>
class DequantizeOp : public OpKernel {
 public:
  explicit DequantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "q", q);
    int exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "exponent", "dequantize: exponent", kMinExponent, kMaxExponent,
                                    &exponent));
    Tensor* x = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("x", q.shape(), &x));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, Dequantize<T>(device, q.flat<T>().data(), q.NumElements(), exponent,
                                                         x->flat<float>().data()));
  }
};

// Requantize an int32 (int64: DFP16) accumulator into int8/int16 mantissas
// (Out = T), or into the float32 carrier of `bits`-bit mantissas in one pass
// (Out = float: RequantizeToCarrier).
template <typename Device, typename Out, typename Acc>
class RequantizeOp : public OpKernel {
 public:
  explicit RequantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    if constexpr (std::is_same_v<Out, float>) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("bits", &bits_));
      OP_REQUIRES_OK(ctx, ToTf(CheckMantissaBits(bits_)));
    }
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "acc", acc);
    int exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "exponent", "requantize: exponent", kMinAccExponent,
                                    kMaxAccExponent, &exponent));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    int out_exponent = 0;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    const Acc* in = acc.flat<Acc>().data();
    if constexpr (std::is_same_v<Out, float> && std::is_same_v<Acc, int64_t>) {
      Tensor* y = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output("y", acc.shape(), &y));
      KI_OP_REQUIRES_OK(ctx, RequantizeToCarrier(device, in, acc.NumElements(), exponent, rounding_, seed,
                                                 y->flat<float>().data(), &out_exponent, bits_));
    } else if constexpr (std::is_same_v<Out, float>) {
      // When nothing else holds the accumulator (a gradient's backprop
      // product), the carrier replaces it in its own buffer: same size,
      // reinterpreted as float32, one accumulator-sized buffer less.
      int acc_index = 0, y_index = 0;
      OP_REQUIRES_OK(ctx, ArgIndex(ctx, "acc", /*output=*/false, &acc_index));
      OP_REQUIRES_OK(ctx, ArgIndex(ctx, "y", /*output=*/true, &y_index));
      std::unique_ptr<Tensor> forwarded =
          ctx->forward_input(acc_index, y_index, ::tensorflow::DT_INT32, acc.shape(),
                             ctx->input_memory_type(acc_index), ctx->output_alloc_attr(y_index));
      Tensor carrier;
      if (forwarded != nullptr) {
        OP_REQUIRES_OK(ctx, carrier.BitcastFrom(*forwarded, ::tensorflow::DT_FLOAT, acc.shape()));
      } else {
        OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_FLOAT, acc.shape(), &carrier,
                                               ctx->output_alloc_attr(y_index)));
      }
      KI_OP_REQUIRES_OK(ctx, RequantizeToCarrier(device, in, acc.NumElements(), exponent, rounding_, seed,
                                                 carrier.flat<float>().data(), &out_exponent, bits_));
      OP_REQUIRES_OK(ctx, ctx->set_output("y", carrier));
    } else {
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output("q", acc.shape(), &out));
      KI_OP_REQUIRES_OK(ctx, Requantize<Out>(device, in, acc.NumElements(), exponent, rounding_, seed,
                                             out->flat<Out>().data(), &out_exponent));
    }
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "out_exponent", out_exponent));
  }

 private:
  Rounding rounding_;
  int bits_ = 8;
};

template <typename Device>
class RoundShiftOp : public OpKernel {
 public:
  explicit RoundShiftOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, GetRounding(ctx, &rounding_));
    int64_t limit;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("limit", &limit));
    OP_REQUIRES(ctx, limit >= 0 && limit <= INT32_MAX,
                ::tensorflow::errors::InvalidArgument("limit must be in [0, 2**31 - 1], got ", limit));
    limit_ = static_cast<int32_t>(limit);
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "shift", shift);
    OP_REQUIRES(ctx, ::tensorflow::TensorShapeUtils::IsScalar(shift.shape()),
                ::tensorflow::errors::InvalidArgument("shift must be a scalar"));
    RoundingSeed seed;
    OP_REQUIRES_OK(ctx, GetSeed(ctx, "seed", &seed));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", x.shape(), &y));
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, RoundShiftTensor(device, x.flat<int32_t>().data(), x.NumElements(),
                                                   shift.scalar<int32_t>()(), rounding_, seed, limit_,
                                                   y->flat<int32_t>().data()));
  }

 private:
  Rounding rounding_;
  int32_t limit_;
};

template <typename Device, typename T, typename Acc>
class AlignedAddOp : public OpKernel {
 public:
  explicit AlignedAddOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "a", a);
    KI_INPUT(ctx, "b", b);
    OP_REQUIRES(ctx, a.shape() == b.shape(),
                ::tensorflow::errors::InvalidArgument("add: a and b must have the same shape, got ",
                                                      a.shape().DebugString(), " and ",
                                                      b.shape().DebugString()));
    int ea, eb;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "a_exponent", "add: a_exponent", kMinExponent, kMaxExponent, &ea));
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "b_exponent", "add: b_exponent", kMinExponent, kMaxExponent, &eb));
    Tensor* acc = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("acc", a.shape(), &acc));
    int acc_exponent;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, AlignedAdd(device, a.flat<T>().data(), ea, b.flat<T>().data(), eb, a.NumElements(),
                                      acc->flat<Acc>().data(), &acc_exponent));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "acc_exponent", acc_exponent));
  }
};

template <typename Device, typename T>
class BitLengthOp : public OpKernel {
 public:
  explicit BitLengthOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    int bits = 0;
    KI_OP_REQUIRES_OK(ctx, MaxBitLength(device, x.flat<T>().data(), x.NumElements(), &bits));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "bits", bits));
  }
};

#define KI_REGISTER_REQUANTIZE(device_type, DeviceClass, Acc)                                             \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Requantize").Device(device_type).TypeConstraint<int8_t>("out_type")   \
                              .TypeConstraint<Acc>("Tacc").HostMemory("exponent").HostMemory("seed")         \
                              .HostMemory("out_exponent"), RequantizeOp<DeviceClass, int8_t, Acc>);          \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Requantize").Device(device_type).TypeConstraint<int16_t>("out_type")  \
                              .TypeConstraint<Acc>("Tacc").HostMemory("exponent").HostMemory("seed")         \
                              .HostMemory("out_exponent"), RequantizeOp<DeviceClass, int16_t, Acc>);         \
  REGISTER_KERNEL_BUILDER(Name("IntOps>RequantizeToCarrier").Device(device_type).TypeConstraint<Acc>("Tacc") \
                              .HostMemory("exponent").HostMemory("seed").HostMemory("out_exponent"),         \
                          RequantizeOp<DeviceClass, float, Acc>)
#define KI_REGISTER_ALIGNED_ADD(device_type, DeviceClass, T, Acc)                                          \
  REGISTER_KERNEL_BUILDER(Name("IntOps>AlignedAdd").Device(device_type).TypeConstraint<T>("T")                \
                              .TypeConstraint<Acc>("Tacc").HostMemory("a_exponent").HostMemory("b_exponent")  \
                              .HostMemory("acc_exponent"),                                                   \
                          AlignedAddOp<DeviceClass, T, Acc>)
// Exponents, seeds and shifts are host scalars on every device.
#define KI_REGISTER_DFP(device_type, DeviceClass)                                                       \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BitLength").Device(device_type).TypeConstraint<int32_t>("T")        \
                              .HostMemory("bits"), BitLengthOp<DeviceClass, int32_t>);                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Quantize").Device(device_type).TypeConstraint<int8_t>("out_type")  \
                              .HostMemory("exponent"), QuantizeOp<DeviceClass, int8_t>);                  \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Quantize").Device(device_type).TypeConstraint<int16_t>("out_type") \
                              .HostMemory("exponent"), QuantizeOp<DeviceClass, int16_t>);                 \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Dequantize").Device(device_type).TypeConstraint<int8_t>("T")       \
                              .HostMemory("exponent"), DequantizeOp<DeviceClass, int8_t>);                \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Dequantize").Device(device_type).TypeConstraint<int16_t>("T")      \
                              .HostMemory("exponent"), DequantizeOp<DeviceClass, int16_t>);               \
  KI_REGISTER_REQUANTIZE(device_type, DeviceClass, int32_t);                                              \
  KI_REGISTER_REQUANTIZE(device_type, DeviceClass, int64_t);                                              \
  KI_REGISTER_ALIGNED_ADD(device_type, DeviceClass, int16_t, int64_t);                                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BitLength").Device(device_type).TypeConstraint<int64_t>("T")        \
                              .HostMemory("bits"), BitLengthOp<DeviceClass, int64_t>);                    \
  REGISTER_KERNEL_BUILDER(Name("IntOps>RoundShift").Device(device_type).HostMemory("shift").HostMemory("seed"), \
                          RoundShiftOp<DeviceClass>);                                                     \
  KI_REGISTER_ALIGNED_ADD(device_type, DeviceClass, int8_t, int32_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_DFP);
#undef KI_REGISTER_DFP
#undef KI_REGISTER_ALIGNED_ADD
#undef KI_REGISTER_REQUANTIZE

}  // namespace keras_int

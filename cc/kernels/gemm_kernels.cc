#include "cc/kernels/gemm_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

template <typename Device, typename T, typename Acc>
class MatMulOp : public OpKernel {
 public:
  explicit MatMulOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("transpose_x", &transpose_x_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("transpose_w", &transpose_w_));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "w", w);
    OP_REQUIRES_OK(ctx, CheckRank(x, 2, "matmul: x"));
    OP_REQUIRES_OK(ctx, CheckRank(w, 2, "matmul: w"));
    const int64_t M = x.dim_size(transpose_x_ ? 1 : 0), K = x.dim_size(transpose_x_ ? 0 : 1);
    const int64_t Kw = w.dim_size(transpose_w_ ? 1 : 0), N = w.dim_size(transpose_w_ ? 0 : 1);
    OP_REQUIRES(ctx, K == Kw,
                ::tensorflow::errors::InvalidArgument(
                    "matmul: inner dimensions of x ", x.shape().DebugString(), " and w ",
                    w.shape().DebugString(), " do not match (", K, " vs ", Kw, ")"));
    ::tensorflow::TensorShape out_shape;
    OP_REQUIRES_OK(ctx, MakeShape("matmul: output shape", {M, N}, &out_shape));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("out", out_shape, &out));
    if (out->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, MatMul(device, x.flat<T>().data(), w.flat<T>().data(), M, N, K, transpose_x_,
                                  transpose_w_, out->flat<Acc>().data()));
  }

 private:
  bool transpose_x_, transpose_w_;
};

// x [..., M, K] and w [..., K, N] (transposes: [..., K, M], [..., N, K])
// with the same batch dimensions -> out [..., M, N].
template <typename Device>
class BatchMatMulOp : public OpKernel {
 public:
  explicit BatchMatMulOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("transpose_x", &transpose_x_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("transpose_w", &transpose_w_));
  }
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "x", x);
    KI_INPUT(ctx, "w", w);
    OP_REQUIRES(ctx, x.dims() >= 2 && x.dims() == w.dims(),
                ::tensorflow::errors::InvalidArgument("batch_matmul: x and w must have one rank >= 2, got shapes ",
                                                      x.shape().DebugString(), " and ", w.shape().DebugString()));
    const int rank = x.dims();
    ::tensorflow::TensorShape out_shape;
    int64_t batch = 1;
    for (int i = 0; i < rank - 2; ++i) {
      OP_REQUIRES(ctx, x.dim_size(i) == w.dim_size(i),
                  ::tensorflow::errors::InvalidArgument("batch_matmul: batch dimensions of x ",
                                                        x.shape().DebugString(), " and w ", w.shape().DebugString(),
                                                        " differ"));
      OP_REQUIRES_OK(ctx, out_shape.AddDimWithStatus(x.dim_size(i)));
      batch *= x.dim_size(i);
    }
    const int64_t M = x.dim_size(rank - (transpose_x_ ? 1 : 2)), K = x.dim_size(rank - (transpose_x_ ? 2 : 1));
    const int64_t Kw = w.dim_size(rank - (transpose_w_ ? 1 : 2)), N = w.dim_size(rank - (transpose_w_ ? 2 : 1));
    OP_REQUIRES(ctx, K == Kw,
                ::tensorflow::errors::InvalidArgument("batch_matmul: inner dimensions of x ", x.shape().DebugString(),
                                                      " and w ", w.shape().DebugString(), " do not match (", K,
                                                      " vs ", Kw, ")"));
    OP_REQUIRES_OK(ctx, out_shape.AddDimWithStatus(M));
    OP_REQUIRES_OK(ctx, out_shape.AddDimWithStatus(N));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("out", out_shape, &out));
    if (out->NumElements() == 0) return;
    Device device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, BatchMatMul(device, x.flat<int8_t>().data(), w.flat<int8_t>().data(), batch, M, N, K,
                                       transpose_x_, transpose_w_, out->flat<int32_t>().data()));
  }

 private:
  bool transpose_x_, transpose_w_;
};

#define KI_REGISTER_GEMM(device_type, Context)                                                             \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MatMul").Device(device_type).TypeConstraint<int8_t>("T")             \
                              .TypeConstraint<int32_t>("Tacc"), MatMulOp<Context, int8_t, int32_t>);       \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MatMul").Device(device_type).TypeConstraint<int16_t>("T")            \
                              .TypeConstraint<int64_t>("Tacc"), MatMulOp<Context, int16_t, int64_t>);      \
  REGISTER_KERNEL_BUILDER(Name("IntOps>BatchMatMul").Device(device_type), BatchMatMulOp<Context>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_GEMM);
#undef KI_REGISTER_GEMM


}  // namespace keras_int

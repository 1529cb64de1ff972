#include "cc/kernels/gemm_device.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

template <typename Device>
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
    KI_OP_REQUIRES_OK(ctx, MatMul(device, x.flat<int8_t>().data(), w.flat<int8_t>().data(), M, N, K,
                                         transpose_x_, transpose_w_, out->flat<int32_t>().data()));
  }

 private:
  bool transpose_x_, transpose_w_;
};

#define KI_REGISTER_GEMM(device_type, Context) \
  REGISTER_KERNEL_BUILDER(Name("IntOps>MatMul").Device(device_type), MatMulOp<Context>)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_GEMM);
#undef KI_REGISTER_GEMM

}  // namespace keras_int

// Embedding kernels (cc/ops/embedding_ops.cc; docs/algorithms.md section
// 12). The table is read through its resource handle, under its lock.
#include <cstdint>

#include "cc/kernels/common.h"
#include "cc/kernels/dfp_device.h"
#include "cc/kernels/embedding_device.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"

namespace keras_int {

template <typename Context, typename Id>
class EmbeddingOp : public OpKernel {
 public:
  explicit EmbeddingOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "ids", ids);
    int exponent;
    OP_REQUIRES_OK(ctx, GetExponent(ctx, "table_exponent", "embedding: table_exponent", kMinExponent, kMaxExponent,
                                    &exponent));
    ::tensorflow::core::RefCountPtr<::tensorflow::Var> table_var;
    OP_REQUIRES_OK(ctx, LookupVariable(ctx, "table", &table_var));
    ::tensorflow::tf_shared_lock lock(*table_var->mu());
    const Tensor& table = *table_var->tensor();
    OP_REQUIRES(ctx, table.dtype() == ::tensorflow::DT_INT8 && table.dims() == 2,
                ::tensorflow::errors::InvalidArgument("embedding: table must be an int8 matrix [vocab, dim], got ",
                                                      ::tensorflow::DataTypeString(table.dtype()), " ",
                                                      table.shape().DebugString()));
    const int64_t vocab = table.dim_size(0), dim = table.dim_size(1);
    ::tensorflow::TensorShape y_shape = ids.shape();
    OP_REQUIRES_OK(ctx, y_shape.AddDimWithStatus(dim));
    Tensor* y;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("y", y_shape, &y));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    KI_OP_REQUIRES_OK(ctx, EmbeddingLookup<Id>(device, ids.flat<Id>().data(), ids.NumElements(),
                                               table.flat<int8_t>().data(), vocab, dim, exponent,
                                               y->flat<float>().data()));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "y_exponent", exponent));
  }
};

template <typename Context, typename Id>
class EmbeddingGradOp : public OpKernel {
 public:
  explicit EmbeddingGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    KI_INPUT(ctx, "dy", dy);
    KI_INPUT(ctx, "ids", ids);
    KI_INPUT(ctx, "vocab", vocab_t);
    OP_REQUIRES(ctx, dy.dims() == ids.dims() + 1,
                ::tensorflow::errors::InvalidArgument("embedding_grad: dy ", dy.shape().DebugString(),
                                                      " must be the ids' shape ", ids.shape().DebugString(),
                                                      " plus the embedding dimension"));
    for (int i = 0; i < ids.dims(); ++i) {
      OP_REQUIRES(ctx, dy.dim_size(i) == ids.dim_size(i),
                  ::tensorflow::errors::InvalidArgument("embedding_grad: dy ", dy.shape().DebugString(),
                                                        " must be the ids' shape ", ids.shape().DebugString(),
                                                        " plus the embedding dimension"));
    }
    OP_REQUIRES(ctx, ::tensorflow::TensorShapeUtils::IsScalar(vocab_t.shape()) && vocab_t.scalar<int64_t>()() >= 0,
                ::tensorflow::errors::InvalidArgument("embedding_grad: vocab must be a scalar >= 0"));
    const int64_t vocab = vocab_t.scalar<int64_t>()(), dim = dy.dim_size(dy.dims() - 1);
    ::tensorflow::TensorShape table_shape;
    OP_REQUIRES_OK(ctx, MakeShape("embedding_grad: table shape", {vocab, dim}, &table_shape));
    Tensor* dtable;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("dtable", table_shape, &dtable));
    Context device(ctx);
    OP_REQUIRES_OK(ctx, device.status());
    Tensor err;
    int err_exponent = 0;
    OP_REQUIRES_OK(ctx, QuantizeToTemp(ctx, device, dy, &err, &err_exponent));
    KI_OP_REQUIRES_OK(ctx, EmbeddingGrad<Id>(device, err.flat<int8_t>().data(), ids.flat<Id>().data(),
                                             ids.NumElements(), vocab, dim, dtable->flat<int32_t>().data()));
    OP_REQUIRES_OK(ctx, SetScalarInt32(ctx, "err_exponent", err_exponent));
  }
};

// The ids are read on the device that runs the op; the table through its
// handle (host); exponents and the vocabulary size are host scalars.
#define KI_REGISTER_EMBEDDING_ID(device_type, Context, Id)                                                   \
  REGISTER_KERNEL_BUILDER(Name("IntOps>Embedding").Device(device_type).TypeConstraint<Id>("Tidx")            \
                              .HostMemory("table").HostMemory("table_exponent").HostMemory("error_exponent") \
                              .HostMemory("y_exponent"),                                                     \
                          EmbeddingOp<Context, Id>);                                                         \
  REGISTER_KERNEL_BUILDER(Name("IntOps>EmbeddingGrad").Device(device_type).TypeConstraint<Id>("Tidx")        \
                              .HostMemory("vocab").HostMemory("err_exponent"),                               \
                          EmbeddingGradOp<Context, Id>)
#define KI_REGISTER_EMBEDDING(device_type, Context)          \
  KI_REGISTER_EMBEDDING_ID(device_type, Context, int32_t); \
  KI_REGISTER_EMBEDDING_ID(device_type, Context, int64_t)
KI_REGISTER_ON_EVERY_DEVICE(KI_REGISTER_EMBEDDING);
#undef KI_REGISTER_EMBEDDING
#undef KI_REGISTER_EMBEDDING_ID

}  // namespace keras_int

// Shared glue between TensorFlow OpKernels and the TensorFlow-free core.
#ifndef KERAS_INT_CC_KERNELS_COMMON_H_
#define KERAS_INT_CC_KERNELS_COMMON_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "cc/core/dfp.h"
#include "cc/core/parallel.h"
#include "cc/core/status.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace keras_int {

// The TensorFlow names every kernel file uses.
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// The core's status as TensorFlow's, with the same code.
inline ::absl::Status ToTf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return ::absl::OkStatus();
    case Status::Code::kInternal:
      return ::tensorflow::errors::Internal(status.message());
    case Status::Code::kResourceExhausted:
      return ::tensorflow::errors::ResourceExhausted(status.message());
    case Status::Code::kInvalidArgument:
      break;
  }
  return ::tensorflow::errors::InvalidArgument(status.message());
}

#define KI_OP_REQUIRES_OK(ctx, expr) OP_REQUIRES_OK(ctx, ::keras_int::ToTf(expr))

// TensorFlow's intra-op thread pool, seen through the core's interface.
inline ParallelFor MakeParallelFor(::tensorflow::OpKernelContext* ctx) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [workers](int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)>& fn) {
    workers->ParallelFor(n, cost, fn);
  };
}

inline ::absl::Status GetRounding(::tensorflow::OpKernelConstruction* ctx, Rounding* rounding) {
  std::string name;
  TF_RETURN_IF_ERROR(ctx->GetAttr("rounding", &name));
  if (!ParseRounding(name, rounding)) {
    return ::tensorflow::errors::InvalidArgument(
        "rounding must be one of nearest, pseudo_stochastic, stochastic, truncate; got '", name, "'");
  }
  return ::absl::OkStatus();
}

// Inputs and outputs are addressed by the names REGISTER_OP gives them
// (cc/ops), never by position: an op that gains an input (a list such as
// `bias: N * resource` changes length with an attribute) must not shift
// another input's meaning.

// Binds `const Tensor& var` to the op's input `name`, or fails the op (an
// OpKernel's Compute returns at once, as with OP_REQUIRES_OK).
#define KI_INPUT(ctx, name, var)                                \
  const ::tensorflow::Tensor* var##_input = nullptr;            \
  OP_REQUIRES_OK(ctx, (ctx)->input(name, &var##_input));        \
  const ::tensorflow::Tensor& var = *var##_input

// The seed input `name`: int64 [key, step].
inline ::absl::Status GetSeed(::tensorflow::OpKernelContext* ctx, std::string_view name, RoundingSeed* seed) {
  const ::tensorflow::Tensor* t;
  TF_RETURN_IF_ERROR(ctx->input(name, &t));
  if (t->dtype() != ::tensorflow::DT_INT64 || t->NumElements() != 2) {
    return ::tensorflow::errors::InvalidArgument("seed must be an int64 tensor [key, step], got shape ",
                                                 t->shape().DebugString());
  }
  auto v = t->flat<int64_t>();
  seed->key = static_cast<uint64_t>(v(0));
  seed->step = static_cast<uint64_t>(v(1));
  return ::absl::OkStatus();
}

// The scalar int32 exponent input `name`, checked against [lo, hi]; `what`
// names it in errors ("dense: kernel_exponent").
inline ::absl::Status GetExponent(::tensorflow::OpKernelContext* ctx, std::string_view name, const char* what,
                                  int lo, int hi, int* exponent) {
  const ::tensorflow::Tensor* t;
  TF_RETURN_IF_ERROR(ctx->input(name, &t));
  if (!::tensorflow::TensorShapeUtils::IsScalar(t->shape())) {
    return ::tensorflow::errors::InvalidArgument(what, " must be a scalar, got shape ",
                                                 t->shape().DebugString());
  }
  const int64_t e = t->scalar<int32_t>()();
  TF_RETURN_IF_ERROR(ToTf(CheckExponent(what, e, lo, hi)));
  *exponent = static_cast<int>(e);
  return ::absl::OkStatus();
}

// Writes the scalar int32 output `name` (an exponent, a bit count).
inline ::absl::Status SetScalarInt32(::tensorflow::OpKernelContext* ctx, std::string_view name, int value) {
  ::tensorflow::Tensor* out = nullptr;
  TF_RETURN_IF_ERROR(ctx->allocate_output(name, ::tensorflow::TensorShape({}), &out));
  out->scalar<int32_t>()() = value;
  return ::absl::OkStatus();
}

// The position of the single input (or, with `output`, output) `name`, for
// the TensorFlow calls that take only positions (forward_input,
// input_memory_type, output_alloc_attr).
inline ::absl::Status ArgIndex(::tensorflow::OpKernelContext* ctx, std::string_view name, bool output,
                               int* index) {
  const ::tensorflow::OpKernel& kernel = ctx->op_kernel();
  int start, stop;
  TF_RETURN_IF_ERROR(output ? kernel.OutputRange(name, &start, &stop) : kernel.InputRange(name, &start, &stop));
  if (stop != start + 1) {
    return ::tensorflow::errors::Internal("'", name, "' is a list, not a single tensor");
  }
  *index = start;
  return ::absl::OkStatus();
}

inline ::absl::Status CheckRank(const ::tensorflow::Tensor& t, int rank, const char* name) {
  if (t.dims() != rank) {
    return ::tensorflow::errors::InvalidArgument(name, " must have rank ", rank, ", got shape ",
                                                 t.shape().DebugString());
  }
  return ::absl::OkStatus();
}

// A shape from dimensions computed from inputs or size arguments.
// TensorShape's constructor aborts the process on a negative dimension or an
// element count beyond int64; this is an InvalidArgument error naming `what`.
inline ::absl::Status MakeShape(const char* what, std::initializer_list<int64_t> dims,
                                ::tensorflow::TensorShape* shape) {
  const ::absl::Status status = ::tensorflow::TensorShape::BuildTensorShape(dims, shape);
  if (status.ok()) return status;
  return ::tensorflow::errors::InvalidArgument(what, ": the element count overflows int64 (",
                                               status.message(), ")");
}

// The variable behind the resource input `name` (read it under
// `tf_shared_lock lock(*var->mu())`).
inline ::absl::Status LookupVariable(::tensorflow::OpKernelContext* ctx, std::string_view name,
                                     ::tensorflow::core::RefCountPtr<::tensorflow::Var>* var) {
  ::tensorflow::ResourceHandle handle;
  TF_RETURN_IF_ERROR(::tensorflow::HandleFromInput(ctx, name, &handle));
  return ::tensorflow::LookupResource(ctx, handle, var);
}

// Reads a 2-element list attribute (strides, dilations, ksize), each >= 1.
inline ::absl::Status GetPair(::tensorflow::OpKernelConstruction* ctx, const char* name,
                                     int64_t* first, int64_t* second) {
  std::vector<int32_t> values;
  TF_RETURN_IF_ERROR(ctx->GetAttr(name, &values));
  if (values.size() != 2) {
    return ::tensorflow::errors::InvalidArgument(name, " must have 2 elements, got ", values.size());
  }
  if (values[0] < 1 || values[1] < 1) {
    return ::tensorflow::errors::InvalidArgument(name, " must be >= 1, got [", values[0], ", ",
                                                 values[1], "]");
  }
  *first = values[0];
  *second = values[1];
  return ::absl::OkStatus();
}

inline ::absl::Status GetPadding(::tensorflow::OpKernelConstruction* ctx, bool* same) {
  std::string padding;
  TF_RETURN_IF_ERROR(ctx->GetAttr("padding", &padding));
  if (padding != "SAME" && padding != "VALID") {
    return ::tensorflow::errors::InvalidArgument("padding must be SAME or VALID, got '", padding, "'");
  }
  *same = padding == "SAME";
  return ::absl::OkStatus();
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_COMMON_H_

// Shared glue between TensorFlow OpKernels and the TensorFlow-free core.
#ifndef KERAS_INT_CC_KERNELS_COMMON_H_
#define KERAS_INT_CC_KERNELS_COMMON_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "cc/core/dfp.h"
#include "cc/core/parallel.h"
#include "cc/core/status.h"
#include "tensorflow/core/framework/op_kernel.h"
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

// Seed input: int64 [key, step].
inline ::absl::Status GetSeed(::tensorflow::OpKernelContext* ctx, int index,
                                     RoundingSeed* seed) {
  const ::tensorflow::Tensor& t = ctx->input(index);
  if (t.dtype() != ::tensorflow::DT_INT64 || t.NumElements() != 2) {
    return ::tensorflow::errors::InvalidArgument("seed must be an int64 tensor [key, step], got shape ",
                                                 t.shape().DebugString());
  }
  auto v = t.flat<int64_t>();
  seed->key = static_cast<uint64_t>(v(0));
  seed->step = static_cast<uint64_t>(v(1));
  return ::absl::OkStatus();
}

// A scalar int32 exponent input, checked against [lo, hi].
inline ::absl::Status GetExponent(::tensorflow::OpKernelContext* ctx, int index,
                                         const char* name, int lo, int hi, int* exponent) {
  const ::tensorflow::Tensor& t = ctx->input(index);
  if (!::tensorflow::TensorShapeUtils::IsScalar(t.shape())) {
    return ::tensorflow::errors::InvalidArgument(name, " must be a scalar, got shape ",
                                                 t.shape().DebugString());
  }
  const int64_t e = t.scalar<int32_t>()();
  TF_RETURN_IF_ERROR(ToTf(CheckExponent(name, e, lo, hi)));
  *exponent = static_cast<int>(e);
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

inline void SetScalarInt32(::tensorflow::OpKernelContext* ctx, int index, int value) {
  ::tensorflow::Tensor* out = nullptr;
  OP_REQUIRES_OK(ctx, ctx->allocate_output(index, ::tensorflow::TensorShape({}), &out));
  out->scalar<int32_t>()() = value;
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

// Attribute and shape handling shared by the convolution kernels.
#ifndef KERAS_INT_CC_KERNELS_CONV_KERNELS_H_
#define KERAS_INT_CC_KERNELS_CONV_KERNELS_H_

#include <string_view>

#include "cc/core/conv.h"
#include "cc/kernels/common.h"

namespace keras_int {

class ConvAttrs {
 public:
  explicit ConvAttrs(::tensorflow::OpKernelConstruction* ctx) {
    OP_REQUIRES_OK(ctx, GetPair(ctx, "strides", &stride_h_, &stride_w_));
    OP_REQUIRES_OK(ctx, GetPair(ctx, "dilations", &dilation_h_, &dilation_w_));
    OP_REQUIRES_OK(ctx, GetPadding(ctx, &same_));
  }

  // Geometry of x [N, H, W, C] convolved with a filter [KH, KW, C, O].
  ::absl::Status Geometry(const ::tensorflow::TensorShape& x,
                                const ::tensorflow::TensorShape& filter,
                                Conv2DGeometry* g) const {
    if (x.dims() != 4) {
      return ::tensorflow::errors::InvalidArgument("conv2d: input must have rank 4 (NHWC), got shape ",
                                                   x.DebugString());
    }
    if (filter.dims() != 4) {
      return ::tensorflow::errors::InvalidArgument(
          "conv2d: filter must have rank 4 (HWIO), got shape ", filter.DebugString());
    }
    if (x.dim_size(3) != filter.dim_size(2)) {
      return ::tensorflow::errors::InvalidArgument(
          "conv2d: input channels ", x.dim_size(3), " do not match the filter's input channels ",
          filter.dim_size(2), " (input ", x.DebugString(), ", filter ", filter.DebugString(), ")");
    }
    *g = Conv2DGeometry{x.dim_size(0), x.dim_size(1), x.dim_size(2), x.dim_size(3),
                        filter.dim_size(0), filter.dim_size(1), filter.dim_size(3),
                        stride_h_, stride_w_, dilation_h_, dilation_w_, 0, 0, 0, 0};
    return ToTf(ComputeConv2DGeometry(same_, g));
  }

 private:
  int64_t stride_h_, stride_w_, dilation_h_, dilation_w_;
  bool same_;
};

// Reads the 4-element int32 sizes input `input` (input_sizes /
// filter_sizes); `name` names it in errors.
inline ::absl::Status ShapeFromSizes(::tensorflow::OpKernelContext* ctx, std::string_view input, const char* name,
                                     ::tensorflow::TensorShape* shape) {
  const ::tensorflow::Tensor* sizes_input;
  TF_RETURN_IF_ERROR(ctx->input(input, &sizes_input));
  const ::tensorflow::Tensor& sizes = *sizes_input;
  if (sizes.dims() != 1 || sizes.NumElements() != 4) {
    return ::tensorflow::errors::InvalidArgument(name, " must be a vector of 4 sizes, got shape ",
                                                 sizes.shape().DebugString());
  }
  auto v = sizes.flat<int32_t>();
  for (int i = 0; i < 4; ++i) {
    if (v(i) < 0) return ::tensorflow::errors::InvalidArgument(name, " must be non-negative");
  }
  return MakeShape(name, {v(0), v(1), v(2), v(3)}, shape);
}

// The shape of the convolution's output (y, or dy of its gradients).
inline ::absl::Status OutputShape(const Conv2DGeometry& g, ::tensorflow::TensorShape* shape) {
  return MakeShape("conv2d: output shape", {g.batch, g.out_h, g.out_w, g.out_c}, shape);
}

inline ::absl::Status CheckOutBackprop(const Conv2DGeometry& g,
                                             const ::tensorflow::Tensor& dy) {
  ::tensorflow::TensorShape expected;
  TF_RETURN_IF_ERROR(OutputShape(g, &expected));
  if (dy.shape() != expected) {
    return ::tensorflow::errors::InvalidArgument("conv2d: out_backprop has shape ",
                                                 dy.shape().DebugString(), ", expected ",
                                                 expected.DebugString());
  }
  return ::absl::OkStatus();
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_KERNELS_CONV_KERNELS_H_

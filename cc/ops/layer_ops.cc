// Layer ops: float32 carriers in and out (values exactly q * 2**e), weights
// read through their resource handle so that TensorFlow's tape connects the
// int8 variable to the loss (ARCHITECTURE.md, "How integer tensors cross
// TensorFlow's autodiff"). Everything inside is integer. Besides the output
// carrier they return its exponent, the int8 input mantissas and the int8
// weights they used: all the gradient keeps. (The gradient must not read the
// variable again: the optimizer may already have updated it.)
//
// Bias (optional, N = 1): an int32 variable at the kernel's exponent, i.e. a
// weight on a constant input of 1. It is aligned exactly to the
// accumulator's exponent and added before requantize; a sum outside int32 is
// an error.
//
// T: the mantissa type of the quantized input and of the weights (int8;
// int16 is registered and dispatches, but its GEMM comes with the DFP16
// datapath: the kernel says so).
//
// Error exponent (optional, M = 1): an int32 variable the op does not touch;
// the registered gradient stores the exponent of the incoming error in it
// (the one it quantizes the error with anyway), for ExponentTracker.
//
// relu (attribute): ReLU on the output in the requantize pass (Keras'
// activation="relu"); `mask` then has bit i % 32 of word i / 32 set where
// output i is positive, for the gradient (as IntOps>Relu's), and is empty
// otherwise.
//
// error_bits (attribute, 8 or 16): the mantissa width at which the
// registered gradient quantizes the incoming error (docs/algorithms.md 5);
// the forward pass only checks it. A 16-bit op's errors are 16-bit anyway.
#include <string>
#include <vector>

#include "cc/core/relu.h"
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {
// Shape of the variable behind a resource input, when the graph knows it.
bool VariableShape(InferenceContext* c, int index, ShapeHandle* shape) {
  const auto* data = c->input_handle_shapes_and_types(index);
  if (data == nullptr || data->empty()) return false;
  *shape = (*data)[0].shape;
  return true;
}

// The words of a ReLU mask of `values` (one bit per element), where known.
ShapeHandle ReluMaskOf(InferenceContext* c, ShapeHandle values) {
  const int64_t n = c->Value(c->NumElements(values));
  return c->Vector(n == InferenceContext::kUnknownDim ? n : ReluMaskWords(n));
}

// Output `mask` of a layer op: the ReLU mask of output y with relu = true,
// no words without.
::absl::Status ReluMaskShape(InferenceContext* c, int y, int mask) {
  bool relu;
  TF_RETURN_IF_ERROR(c->GetAttr("relu", &relu));
  c->set_output(mask, relu ? ReluMaskOf(c, c->output(y)) : c->Vector(0));
  return ::absl::OkStatus();
}
}  // namespace

REGISTER_OP("IntOps>Dense")
    .Input("x: float")
    .Input("kernel: resource")
    .Input("bias: N * resource")
    .Input("kernel_exponent: int32")
    .Input("seed: int64")
    .Input("error_exponent: M * resource")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_q: T")
    .Output("x_exponent: int32")
    .Output("kernel_q: T")
    .Output("mask: int32")
    .Attr(kMantissaTypeAttr)
    .Attr("N: int >= 0 = 0")
    .Attr("M: int >= 0 = 0")
    .Attr(kRoundingAttr)
    .Attr("relu: bool = false")
    .Attr("error_bits: int = 8")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, kernel;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &x));
      DimensionHandle units = c->UnknownDim();
      if (VariableShape(c, 1, &kernel) && c->RankKnown(kernel) && c->Rank(kernel) == 2) {
        units = c->Dim(kernel, 1);
      } else {
        kernel = c->Matrix(c->Dim(x, 1), units);
      }
      c->set_output(0, c->Matrix(c->Dim(x, 0), units));
      c->set_output(1, c->Scalar());
      c->set_output(2, x);
      c->set_output(3, c->Scalar());
      c->set_output(4, kernel);
      return ReluMaskShape(c, 0, 5);
    })
    .Doc("Integer dense layer: y = requantize(quantize(x) @ kernel), ReLU'd with relu = true.");

REGISTER_OP("IntOps>Conv2DLayer")
    .Input("x: float")
    .Input("filter: resource")
    .Input("bias: N * resource")
    .Input("filter_exponent: int32")
    .Input("seed: int64")
    .Input("error_exponent: M * resource")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_q: T")
    .Output("x_exponent: int32")
    .Output("filter_q: T")
    .Output("mask: int32")
    .Attr("strides: list(int) = [1, 1]")
    .Attr(kPaddingAttr)
    .Attr("dilations: list(int) = [1, 1]")
    .Attr(kMantissaTypeAttr)
    .Attr("N: int >= 0 = 0")
    .Attr("M: int >= 0 = 0")
    .Attr(kRoundingAttr)
    .Attr("relu: bool = false")
    .Attr("error_bits: int = 8")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, filter;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      DimensionHandle channels = c->UnknownDim();
      if (VariableShape(c, 1, &filter) && c->RankKnown(filter) && c->Rank(filter) == 4) {
        channels = c->Dim(filter, 3);
      } else {
        filter = c->UnknownShapeOfRank(4);
      }
      // Output rows and columns, TensorFlow's SAME/VALID rules, where known.
      std::vector<int32_t> strides, dilations;
      std::string padding;
      TF_RETURN_IF_ERROR(c->GetAttr("strides", &strides));
      TF_RETURN_IF_ERROR(c->GetAttr("dilations", &dilations));
      TF_RETURN_IF_ERROR(c->GetAttr("padding", &padding));
      DimensionHandle spatial[2] = {c->UnknownDim(), c->UnknownDim()};
      for (int d = 0; d < 2 && strides.size() == 2 && dilations.size() == 2; ++d) {
        const int64_t in = c->Value(c->Dim(x, 1 + d));
        const int64_t k = c->RankKnown(filter) ? c->Value(c->Dim(filter, d)) : InferenceContext::kUnknownDim;
        if (in == InferenceContext::kUnknownDim || strides[d] < 1 || dilations[d] < 1) continue;
        if (padding == "SAME") {
          spatial[d] = c->MakeDim((in + strides[d] - 1) / strides[d]);
        } else if (padding == "VALID" && k != InferenceContext::kUnknownDim) {
          const int64_t effective = (k - 1) * dilations[d] + 1;
          if (in >= effective) spatial[d] = c->MakeDim((in - effective) / strides[d] + 1);
        }
      }
      c->set_output(0, c->MakeShape({c->Dim(x, 0), spatial[0], spatial[1], channels}));
      c->set_output(1, c->Scalar());
      c->set_output(2, x);
      c->set_output(3, c->Scalar());
      c->set_output(4, filter);
      return ReluMaskShape(c, 0, 5);
    })
    .Doc("Integer conv layer: y = requantize(conv2d(quantize(x), filter)), ReLU'd with relu = true.");

}  // namespace keras_int

namespace keras_int {

REGISTER_OP("IntOps>Relu")
    .Input("x: float")
    .Output("y: float")
    .Output("mask: int32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, ReluMaskOf(c, c->input(0)));
      return ::absl::OkStatus();
    })
    .Doc("ReLU of a carrier: q * 2**e with q > 0 kept, others 0. For a carrier, q > 0 "
         "exactly when the sign bit is clear and the value is not zero, so this is an "
         "integer test on the representation; the exponent is unchanged. mask: bit i % 32 "
         "of word i / 32 is set when element i was positive (for the gradient).");

REGISTER_OP("IntOps>ReluGrad")
    .Input("dy: float")
    .Input("mask: int32")
    .Output("dx: float")
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("The error where the forward input was positive (its mask bit is set), 0 elsewhere.");

}  // namespace keras_int

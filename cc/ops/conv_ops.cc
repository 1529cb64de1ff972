#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {
// Output shape is checked by the kernel; here only ranks and what is cheap.
::absl::Status ShapeFromSizesInput(InferenceContext* c, int sizes_index) {
  ShapeHandle out;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(sizes_index, &out));
  TF_RETURN_IF_ERROR(c->WithRank(out, 4, &out));
  c->set_output(0, out);
  return ::absl::OkStatus();
}
}  // namespace

#define KI_CONV_ATTRS                   \
  Attr("strides: list(int) = [1, 1]")   \
      .Attr(kPaddingAttr)          \
      .Attr("dilations: list(int) = [1, 1]")

REGISTER_OP("IntOps>Conv2D")
    .Input("x: T")
    .Input("filter: T")
    .Output("out: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .KI_CONV_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, f;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &f));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), c->UnknownDim(), c->UnknownDim(), c->Dim(f, 3)}));
      return ::absl::OkStatus();
    })
    .Doc("Exact int8 2-D convolution (NHWC, HWIO) -> int32.");

REGISTER_OP("IntOps>Conv2DBackpropInput")
    .Input("input_sizes: int32")
    .Input("filter: T")
    .Input("out_backprop: T")
    .Output("out: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .KI_CONV_ATTRS
    .SetShapeFn([](InferenceContext* c) { return ShapeFromSizesInput(c, 0); })
    .Doc("Gradient of IntOps>Conv2D with respect to its input, in integers.");

REGISTER_OP("IntOps>Conv2DBackpropFilter")
    .Input("x: T")
    .Input("filter_sizes: int32")
    .Input("out_backprop: T")
    .Output("out: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .KI_CONV_ATTRS
    .SetShapeFn([](InferenceContext* c) { return ShapeFromSizesInput(c, 1); })
    .Doc("Gradient of IntOps>Conv2D with respect to its filter, in integers.");

}  // namespace keras_int

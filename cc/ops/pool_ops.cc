#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {
::absl::Status PoolShape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
  c->set_output(0, c->MakeShape({c->Dim(x, 0), c->UnknownDim(), c->UnknownDim(), c->Dim(x, 3)}));
  return ::absl::OkStatus();
}
::absl::Status SizesShape(InferenceContext* c, int index) {
  ShapeHandle out;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(index, &out));
  TF_RETURN_IF_ERROR(c->WithRank(out, 4, &out));
  c->set_output(0, out);
  return ::absl::OkStatus();
}
}  // namespace

#define KI_POOL_ATTRS               \
  Attr("ksize: list(int)")          \
      .Attr("strides: list(int)")   \
      .Attr(kPaddingAttr)

REGISTER_OP("IntOps>MaxPool")
    .Input("x: int8")
    .Output("y: int8")
    .KI_POOL_ATTRS
    .SetShapeFn(PoolShape)
    .Doc("Integer max pooling, NHWC; the exponent is unchanged.");

REGISTER_OP("IntOps>MaxPoolGrad")
    .Input("x: int8")
    .Input("dy: int8")
    .Output("dx: int32")
    .KI_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return ::absl::OkStatus();
    })
    .Doc("Routes each error to the first maximum of its window; int32 sums.");

REGISTER_OP("IntOps>MaxPoolCarrier")
    .Input("x: float")
    .Output("y: float")
    .Output("which: uint8")
    .KI_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(PoolShape(c));
      c->set_output(1, c->output(0));
      return ::absl::OkStatus();
    })
    .Doc("Max pooling of a float32 carrier by integer comparison of its bit patterns (windows must "
         "not overlap); `which` is each maximum's tap in its window, for the gradient.");

REGISTER_OP("IntOps>MaxPoolCarrierGrad")
    .Input("input_sizes: int32")
    .Input("dy: float")
    .Input("which: uint8")
    .Output("dx: float")
    .KI_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) { return SizesShape(c, 0); })
    .Doc("Routes each error carrier to its window's recorded tap; +0.0 elsewhere.");

REGISTER_OP("IntOps>AvgPool")
    .Input("x: T")
    .Output("acc: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .KI_POOL_ATTRS
    .SetShapeFn(PoolShape)
    .Doc("Window sums times round(2**16 / n): the average at exponent offset -16.");

REGISTER_OP("IntOps>AvgPoolGrad")
    .Input("input_sizes: int32")
    .Input("dy: T")
    .Output("acc: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .KI_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) { return SizesShape(c, 0); })
    .Doc("Gradient of IntOps>AvgPool at exponent offset -16.");

}  // namespace keras_int

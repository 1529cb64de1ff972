// Integer softmax ops (docs/algorithms.md section 10) over the last axis,
// with an optional boolean mask (True: keep) and a scale folded into the
// logits as multiplier * 2**-shift. The forward returns the int8
// probabilities its gradient needs.
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("IntOps>Softmax")
    .Input("x: float")
    .Input("mask: N * bool")
    .Input("seed: int64")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("y_q: int8")
    .Attr("N: int >= 0 = 0")
    .Attr("scale_multiplier: int = 1")
    .Attr("scale_shift: int = 0")
    .Attr(kRoundingAttr)
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->input(0));
      return ::absl::OkStatus();
    })
    .Doc("Integer softmax of multiplier * 2**-shift * x over the last axis, masked entries 0.");

REGISTER_OP("IntOps>SoftmaxGrad")
    .Input("dy: float")
    .Input("y_q: int8")
    .Input("y_exponent: int32")
    .Output("dx: float")
    .Output("dx_exponent: int32")
    .Output("err_exponent: int32")
    .Attr("scale_multiplier: int = 1")
    .Attr("scale_shift: int = 0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The integer backward pass of IntOps>Softmax: scale * y * (dy - sum(y * dy)), requantized.");

}  // namespace keras_int

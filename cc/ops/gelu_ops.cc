// Integer GELU ops (docs/algorithms.md section 11): the forward returns the
// int8 input mantissas its gradient needs.
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("IntOps>Gelu")
    .Input("x: float")
    .Input("seed: int64")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_q: int8")
    .Output("x_exponent: int32")
    .Attr(kRoundingAttr)
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->input(0));
      c->set_output(3, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("Integer GELU of a carrier (I-BERT's polynomial in fixed point), requantized.");

REGISTER_OP("IntOps>GeluGrad")
    .Input("dy: float")
    .Input("x_q: int8")
    .Input("x_exponent: int32")
    .Output("dx: float")
    .Output("dx_exponent: int32")
    .Output("err_exponent: int32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The integer backward pass of IntOps>Gelu: quantized dy times the polynomial's derivative, requantized.");

}  // namespace keras_int

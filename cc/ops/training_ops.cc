// The integer loss gradient and the integer weight update.
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("IntOps>SoftmaxCrossEntropyGrad")
    .Input("logits: T")
    .Input("exponent: int32")
    .Input("labels: Tlabels")
    .Input("seed: int64")
    .Output("err: T")
    .Output("err_exponent: int32")
    .Attr(kMantissaTypeAttr)
    .Attr("Tlabels: {int32, int64} = DT_INT64")
    .Attr("rounding: {'pseudo_stochastic', 'stochastic'} = 'pseudo_stochastic'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle logits;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &logits));
      c->set_output(0, logits);
      c->set_output(1, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("NITI's integer softmax cross-entropy gradient (docs/algorithms.md 4).");

REGISTER_OP("IntOps>SgdUpdate")
    .Input("w: T")
    .Input("grad: G")
    .Input("momentum_buffer: T")
    .Input("mu: int32")
    .Output("new_w: T")
    .Output("new_momentum_buffer: T")
    .Attr("T: {int8, int16, int32}")
    .Attr("G: {int32, int64} = DT_INT32")
    .Attr("momentum: int = 0")
    .Attr("weight_decay: int = 0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(2));
      return ::absl::OkStatus();
    })
    .Doc("NITI's integer SGD step (docs/algorithms.md 6).");

REGISTER_OP("IntOps>AdamUpdate")
    .Input("w: T")
    .Input("grad: G")
    .Input("m: int32")
    .Input("v: int32")
    .Input("step: int64")
    .Output("new_w: T")
    .Output("new_m: int32")
    .Output("new_v: int32")
    .Attr("T: {int8, int16, int32}")
    .Attr("G: {int32, int64} = DT_INT32")
    .Attr("beta_1: int = 58982")
    .Attr("beta_2: int = 65470")
    .Attr("step_shift: int = 0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return ::absl::OkStatus();
    })
    .Doc("Integer Adam step t (docs/algorithms.md 14): moments of the normalised gradient, bias-corrected, "
         "m_hat / (isqrt(v_hat) + 1) * 2**step_shift subtracted from the weights.");

}  // namespace keras_int

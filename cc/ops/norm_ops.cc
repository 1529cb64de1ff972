// Batch normalization ops (docs/algorithms.md section 8) and layer
// normalization ops (section 9). Like the layer
// ops, IntOps>BatchNorm reads gamma and beta through their resource handles
// (so that the tape connects the variables to the loss) and returns what
// its gradient needs: the quantized input x_q, and per channel its sum
// and inverse square root (from which the gradient recomputes xhat) and
// the gamma it used. It also returns the batch statistics, which the Keras
// layer folds into its moving averages with IntOps>NormMovingAverage.
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {
// The channel vector [C] of an input [..., C].
ShapeHandle Channels(InferenceContext* c, ShapeHandle x) {
  if (!c->RankKnown(x) || c->Rank(x) == 0) return c->Vector(InferenceContext::kUnknownDim);
  return c->Vector(c->Dim(x, c->Rank(x) - 1));
}
// The row shape [...] of an input [..., C] of rank >= 1 (layer norm's per-row outputs).
::absl::Status Rows(InferenceContext* c, ShapeHandle x, ShapeHandle* rows) {
  if (!c->RankKnown(x)) {
    *rows = c->UnknownShape();
    return ::absl::OkStatus();
  }
  return c->Subshape(x, 0, c->Rank(x) - 1, rows);
}
}  // namespace

REGISTER_OP("IntOps>BatchNorm")
    .Input("x: float")
    .Input("gamma: resource")
    .Input("beta: resource")
    .Input("gamma_exponent: int32")
    .Input("seed: int64")
    .Input("error_exponent: M * resource")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_q: int8")
    .Output("x_exponent: int32")
    .Output("x_sum: int64")
    .Output("inv_sqrt: int64")
    .Output("inv_shift: int32")
    .Output("gamma_q: int8")
    .Output("batch_mean: int32")
    .Output("batch_mean_exponent: int32")
    .Output("batch_variance: int32")
    .Output("batch_variance_exponent: int32")
    .Attr("epsilon_mantissa: int")
    .Attr("epsilon_exponent: int")
    .Attr("M: int >= 0 = 0")
    .Attr(kRoundingAttr)
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &x));
      const ShapeHandle channels = Channels(c, x);
      c->set_output(0, x);
      c->set_output(1, c->Scalar());
      c->set_output(2, x);
      c->set_output(3, c->Scalar());
      c->set_output(4, channels);
      c->set_output(5, channels);
      c->set_output(6, channels);
      c->set_output(7, channels);
      c->set_output(8, channels);
      c->set_output(9, c->Scalar());
      c->set_output(10, channels);
      c->set_output(11, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("Integer batch normalization over all axes but the last, with the batch's statistics.");

REGISTER_OP("IntOps>BatchNormGrad")
    .Input("dy: float")
    .Input("x_q: int8")
    .Input("x_exponent: int32")
    .Input("x_sum: int64")
    .Input("inv_sqrt: int64")
    .Input("inv_shift: int32")
    .Input("gamma_q: int8")
    .Input("gamma_exponent: int32")
    .Output("dx: float")
    .Output("dx_exponent: int32")
    .Output("dgamma: int32")
    .Output("dbeta: int32")
    .Output("err_exponent: int32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->input(6));
      c->set_output(3, c->input(6));
      c->set_output(4, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The integer backward pass of IntOps>BatchNorm: dy is quantized to int8 (err_exponent), "
         "dx is an error carrier, dgamma and dbeta int32.");

REGISTER_OP("IntOps>BatchNormInference")
    .Input("x: float")
    .Input("gamma: resource")
    .Input("beta: resource")
    .Input("gamma_exponent: int32")
    .Input("moving_mean: int32")
    .Input("moving_mean_exponent: int32")
    .Input("moving_variance: int32")
    .Input("moving_variance_exponent: int32")
    .Input("seed: int64")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_exponent: int32")
    .Output("count: int64")
    .Output("inv_sqrt: int64")
    .Output("inv_shift: int32")
    .Output("gamma_q: int8")
    .Attr("epsilon_mantissa: int")
    .Attr("epsilon_exponent: int")
    .Attr(kRoundingAttr)
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &x));
      const ShapeHandle channels = Channels(c, x);
      c->set_output(0, x);
      c->set_output(1, c->Scalar());
      c->set_output(2, c->Scalar());
      for (int i = 3; i < 7; ++i) c->set_output(i, channels);
      return ::absl::OkStatus();
    })
    .Doc("Integer batch normalization with the moving statistics (inference); also returns what the frozen "
         "backward pass needs: x_exponent and per channel the virtual count, inv_sqrt, inv_shift and gamma.");

REGISTER_OP("IntOps>BatchNormFrozenGrad")
    .Input("dy: float")
    .Input("x_exponent: int32")
    .Input("count: int64")
    .Input("inv_sqrt: int64")
    .Input("inv_shift: int32")
    .Input("gamma_q: int8")
    .Input("gamma_exponent: int32")
    .Output("dx: float")
    .Output("dx_exponent: int32")
    .Output("err_exponent: int32")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The integer backward pass of IntOps>BatchNormInference (a frozen layer: constant statistics): "
         "dx = requantize_channels(err * gamma * rho).");

REGISTER_OP("IntOps>NormMovingAverage")
    .Input("moving: int32")
    .Input("moving_exponent: int32")
    .Input("batch: int32")
    .Input("batch_exponent: int32")
    .Output("result: int32")
    .Output("result_exponent: int32")
    .Attr("momentum: int")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("moving * p + batch * (1 - p), p = momentum / 2**16, renormalised to 30-bit mantissas.");

REGISTER_OP("IntOps>LayerNorm")
    .Input("x: float")
    .Input("gamma: resource")
    .Input("beta: resource")
    .Input("gamma_exponent: int32")
    .Input("seed: int64")
    .Input("error_exponent: M * resource")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Output("x_q: int8")
    .Output("x_exponent: int32")
    .Output("x_sum: int64")
    .Output("inv_sqrt: int64")
    .Output("inv_shift: int32")
    .Output("gamma_q: int8")
    .Attr("epsilon_mantissa: int")
    .Attr("epsilon_exponent: int")
    .Attr("M: int >= 0 = 0")
    .Attr(kRoundingAttr)
    .Attr("dx_bits: int = 8")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &x));
      ShapeHandle rows;
      TF_RETURN_IF_ERROR(Rows(c, x, &rows));
      c->set_output(0, x);
      c->set_output(1, c->Scalar());
      c->set_output(2, x);
      c->set_output(3, c->Scalar());
      c->set_output(4, rows);
      c->set_output(5, rows);
      c->set_output(6, rows);
      c->set_output(7, Channels(c, x));
      return ::absl::OkStatus();
    })
    .Doc("Integer layer normalization of each row over the last axis (training and inference alike); returns "
         "what its gradient needs: x_q and per row the sum, inv_sqrt and inv_shift, and the gamma it used. "
         "dx_bits (8 or 16) is the mantissa width of the error its registered gradient passes back.");

REGISTER_OP("IntOps>LayerNormGrad")
    .Input("dy: float")
    .Input("x_q: int8")
    .Input("x_exponent: int32")
    .Input("x_sum: int64")
    .Input("inv_sqrt: int64")
    .Input("inv_shift: int32")
    .Input("gamma_q: int8")
    .Input("gamma_exponent: int32")
    .Output("dx: float")
    .Output("dx_exponent: int32")
    .Output("dgamma: int32")
    .Output("dbeta: int32")
    .Output("err_exponent: int32")
    .Attr("dx_bits: int = 8")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      c->set_output(2, c->input(6));
      c->set_output(3, c->input(6));
      c->set_output(4, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The integer backward pass of IntOps>LayerNorm: dy is quantized to int8 (err_exponent), dx is an "
         "error carrier of dx_bits (8 or 16) mantissas, dgamma and dbeta int32.");

}  // namespace keras_int

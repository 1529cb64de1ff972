// Boundary conversions and requantization of DFP tensors.
#include "cc/ops/op_attrs.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;

namespace {
::absl::Status SameShapeAndScalarExponent(InferenceContext* c) {
  c->set_output(0, c->input(0));
  c->set_output(1, c->Scalar());
  return ::absl::OkStatus();
}
}  // namespace

REGISTER_OP("IntOps>Quantize")
    .Input("x: float")
    .Output("q: out_type")
    .Output("exponent: int32")
    .Attr("out_type: {int8, int16}")
    .SetShapeFn(SameShapeAndScalarExponent)
    .Doc("Exact float32 -> DFP conversion: q * 2**exponent ~= x (docs/algorithms.md 1).");

REGISTER_OP("IntOps>Dequantize")
    .Input("q: T")
    .Input("exponent: int32")
    .Output("x: float")
    .Attr("T: {int8, int16}")
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("x = q * 2**exponent as float32 (exact).");

REGISTER_OP("IntOps>Requantize")
    .Input("acc: Tacc")
    .Input("exponent: int32")
    .Input("seed: int64")
    .Output("q: out_type")
    .Output("out_exponent: int32")
    .Attr("out_type: {int8, int16}")
    .Attr(kProductTypeAttr)
    .Attr(kRoundingAttr)
    .SetShapeFn(SameShapeAndScalarExponent)
    .Doc("int32 (int64: DFP16) accumulator -> int8/int16 mantissas with a shared exponent (docs/algorithms.md 2, "
         "16).");

REGISTER_OP("IntOps>RequantizeToCarrier")
    .Input("acc: Tacc")
    .Input("exponent: int32")
    .Input("seed: int64")
    .Output("y: float")
    .Output("out_exponent: int32")
    .Attr(kProductTypeAttr)
    .Attr("bits: int = 8")
    .Attr(kRoundingAttr)
    .SetShapeFn(SameShapeAndScalarExponent)
    .Doc("IntOps>Requantize to `bits` (8 or 16) followed by IntOps>Dequantize, in one pass: the float32 carrier "
         "of the requantized mantissas.");

REGISTER_OP("IntOps>RoundShift")
    .Input("x: int32")
    .Input("shift: int32")
    .Input("seed: int64")
    .Output("y: int32")
    .Attr(kRoundingAttr)
    .Attr("limit: int = 2147483647")
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("y = clip(round(x / 2**shift), -limit, limit) on magnitudes.");

REGISTER_OP("IntOps>AlignedAdd")
    .Input("a: T")
    .Input("a_exponent: int32")
    .Input("b: T")
    .Input("b_exponent: int32")
    .Output("acc: Tacc")
    .Output("acc_exponent: int32")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle shape;
      TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(2), &shape));
      c->set_output(0, shape);
      c->set_output(1, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("a * 2**a_exponent + b * 2**b_exponent, exactly, as an int32 accumulator (int16 operands: int64).");

}  // namespace keras_int

namespace keras_int {

REGISTER_OP("IntOps>BitLength")
    .Input("x: T")
    .Attr("T: {int32, int64} = DT_INT32")
    .Output("bits: int32")
    .SetShapeFn(::tensorflow::shape_inference::ScalarShape)
    .Doc("bit_length(max |x|), 0 for an all-zero tensor (from the leading-zero count).");

}  // namespace keras_int

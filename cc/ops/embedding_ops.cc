// Embedding ops (docs/algorithms.md section 12). IntOps>Embedding reads its
// int8 table through the resource handle (so that the tape connects the
// variable to the loss); its gradient IntOps>EmbeddingGrad is the int32
// scatter-add of the quantized errors of the looked-up rows.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("IntOps>Embedding")
    .Input("ids: Tidx")
    .Input("table: resource")
    .Input("table_exponent: int32")
    .Input("error_exponent: M * resource")
    .Output("y: float")
    .Output("y_exponent: int32")
    .Attr("Tidx: {int32, int64}")
    .Attr("M: int >= 0 = 0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle y;
      TF_RETURN_IF_ERROR(c->Concatenate(c->input(0), c->Vector(InferenceContext::kUnknownDim), &y));
      c->set_output(0, y);
      c->set_output(1, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("Rows of an int8 embedding table as a float32 carrier (exact), at the table's exponent.");

REGISTER_OP("IntOps>EmbeddingGrad")
    .Input("dy: float")
    .Input("ids: Tidx")
    .Input("vocab: int64")
    .Output("dtable: int32")
    .Output("err_exponent: int32")
    .Attr("Tidx: {int32, int64}")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Matrix(InferenceContext::kUnknownDim, InferenceContext::kUnknownDim));
      c->set_output(1, c->Scalar());
      return ::absl::OkStatus();
    })
    .Doc("The int32 table gradient of IntOps>Embedding: dy quantized to int8 (err_exponent), its rows added "
         "into the rows of their ids.");

}  // namespace keras_int

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_int {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("IntOps>MatMul")
    .Input("x: int8")
    .Input("w: int8")
    .Output("out: int32")
    .Attr("transpose_x: bool = false")
    .Attr("transpose_w: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, w;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &w));
      bool tx, tw;
      TF_RETURN_IF_ERROR(c->GetAttr("transpose_x", &tx));
      TF_RETURN_IF_ERROR(c->GetAttr("transpose_w", &tw));
      DimensionHandle kx = c->Dim(x, tx ? 0 : 1), kw = c->Dim(w, tw ? 1 : 0), k;
      TF_RETURN_IF_ERROR(c->Merge(kx, kw, &k));
      c->set_output(0, c->Matrix(c->Dim(x, tx ? 1 : 0), c->Dim(w, tw ? 0 : 1)));
      return ::absl::OkStatus();
    })
    .Doc("Exact int8 x int8 -> int32 matrix product.");

}  // namespace keras_int

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

#include "cc/ops/op_attrs.h"

namespace keras_int {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("IntOps>MatMul")
    .Input("x: T")
    .Input("w: T")
    .Output("out: Tacc")
    .Attr(kMantissaTypeAttr)
    .Attr(kProductTypeAttr)
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
    .Doc("Exact int8 x int8 -> int32 (int16 x int16 -> int64) matrix product.");

REGISTER_OP("IntOps>BatchMatMul")
    .Input("x: int8")
    .Input("w: int8")
    .Output("out: int32")
    .Attr("transpose_x: bool = false")
    .Attr("transpose_w: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, w;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 2, &x));
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(1), 2, &w));
      if (!c->RankKnown(x) || !c->RankKnown(w)) {
        c->set_output(0, c->UnknownShape());
        return ::absl::OkStatus();
      }
      const int rank = c->Rank(x);
      TF_RETURN_IF_ERROR(c->WithRank(w, rank, &w));
      ShapeHandle x_batch, w_batch, batch;
      TF_RETURN_IF_ERROR(c->Subshape(x, 0, rank - 2, &x_batch));
      TF_RETURN_IF_ERROR(c->Subshape(w, 0, rank - 2, &w_batch));
      TF_RETURN_IF_ERROR(c->Merge(x_batch, w_batch, &batch));
      bool tx, tw;
      TF_RETURN_IF_ERROR(c->GetAttr("transpose_x", &tx));
      TF_RETURN_IF_ERROR(c->GetAttr("transpose_w", &tw));
      DimensionHandle kx = c->Dim(x, tx ? rank - 2 : rank - 1), kw = c->Dim(w, tw ? rank - 1 : rank - 2), k;
      TF_RETURN_IF_ERROR(c->Merge(kx, kw, &k));
      ShapeHandle out;
      TF_RETURN_IF_ERROR(c->Concatenate(
          batch, c->Matrix(c->Dim(x, tx ? rank - 1 : rank - 2), c->Dim(w, tw ? rank - 2 : rank - 1)), &out));
      c->set_output(0, out);
      return ::absl::OkStatus();
    })
    .Doc("Exact int8 x int8 -> int32 products of matching batches of matrices: the products of two activation "
         "tensors (attention).");

}  // namespace keras_int

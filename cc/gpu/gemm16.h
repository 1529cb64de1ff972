// Exact int16 x int16 -> int64 products on the GPU (the DFP16 datapath,
// docs/algorithms.md 16): the twins of cc/core/gemm16.h and conv.h's
// int16 forms. Each value is split into two signed bytes and the four byte
// products are one int8 tensor-core GEMM (gemm.h) per exact depth part,
// combined in int64.
#ifndef KERAS_INT_CC_GPU_GEMM16_H_
#define KERAS_INT_CC_GPU_GEMM16_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/conv.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

// Device workspace of each call: the byte planes of one depth part, their
// int32 products and the int8 GEMM's own workspace.
size_t MatMul16WorkspaceBytes(int64_t M, int64_t N, int64_t K);
size_t Conv2D16WorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropInput16WorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropFilter16WorkspaceBytes(const Conv2DGeometry& g);

Status MatMul(const Context& ctx, const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K,
              bool transpose_x, bool transpose_w, int64_t* out, void* workspace);
Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* w, int64_t* out,
              void* workspace);
Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int16_t* w, const int16_t* dy,
                           int64_t* dx, void* workspace);
Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* dy,
                            int64_t* dw, void* workspace);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_GEMM16_H_

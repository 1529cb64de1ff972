// Exact int8 GEMM and convolutions on int8 tensor cores: the twins of
// cc/core/gemm.h and conv.h.
#ifndef KERAS_INT_CC_GPU_GEMM_H_
#define KERAS_INT_CC_GPU_GEMM_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/conv.h"
#include "cc/core/status.h"
#include "cc/gpu/context.h"

namespace keras_int {
namespace gpu {

// Device workspace the GEMM behind each call needs (0 for most shapes):
// deep or narrow products are split along the depth, each part exact in
// int32, and summed exactly in int64.
size_t GemmWorkspaceBytes(int64_t M, int64_t N, int64_t K);
size_t MatMulWorkspaceBytes(int64_t M, int64_t N, int64_t K);
size_t Conv2DWorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropInputWorkspaceBytes(const Conv2DGeometry& g);
size_t Conv2DBackpropFilterWorkspaceBytes(const Conv2DGeometry& g);

Status MatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t M, int64_t N,
              int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace);
// `batch` MatMuls one after the other on the stream, sharing the workspace
// of MatMulWorkspaceBytes(M, N, K).
Status BatchMatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N,
                   int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace);
Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
              int32_t* out, void* workspace);
Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int8_t* w,
                           const int8_t* dy, int32_t* dx, void* workspace);
Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int8_t* x,
                            const int8_t* dy, int32_t* dw, void* workspace);

// fp16 x fp16 -> fp32 on tensor cores with the same tiling: the benchmark's
// yardstick for the int8 GEMM (not used by any op).
Status HalfMatMul(const Context& ctx, const void* x_half, const void* w_half, int64_t M,
                  int64_t N, int64_t K, float* out);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_GEMM_H_

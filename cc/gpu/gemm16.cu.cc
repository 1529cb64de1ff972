// The DFP16 products on the GPU (gemm16.h), over the int16 forms of
// gemm_plan.h's element readers and problems: per depth part of at most
// kMaxExactDepth, A's rows are split into [high; low] byte rows plus a row
// of ones ((2M + 1) x kc) and B's columns into [high, low] byte columns plus
// a column of ones (kc x (2N + 1)); one exact int8 GEMM (gemm.h) gives all
// byte products and the planes' sums, which CombineBytePlanes turns into
// int64 results, as on the CPU.
#include <string>

#include "cc/core/gemm16.h"
#include "cc/core/gemm16_element.h"
#include "cc/core/limits.h"
#include "cc/gpu/gemm.h"
#include "cc/gpu/gemm16.h"
#include "cc/gpu/gemm_plan.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

// (2M + 1) x kc bytes: row 2i the high bytes of A's row i over depths
// [k0, k0 + kc), row 2i + 1 its low bytes, row 2M ones.
template <typename A>
__global__ void SplitRowsKernel(A a, int64_t M, int64_t k0, int64_t kc, int8_t* out) {
  KI_GRID_STRIDE(index, (2 * M + 1) * kc) {
    const int64_t i = index / kc, t = index % kc;
    if (i == 2 * M) {
      out[index] = 1;
    } else {
      const int16_t v = a(i / 2, k0 + t);
      out[index] = i % 2 == 0 ? HighByte(v) : LowByteCentred(v);
    }
  }
}

// kc x (2N + 1) bytes: columns [0, N) the high bytes of B's columns,
// [N, 2N) the low ones, column 2N ones.
template <typename B>
__global__ void SplitColumnsKernel(B b, int64_t N, int64_t k0, int64_t kc, int8_t* out) {
  const int64_t width = 2 * N + 1;
  KI_GRID_STRIDE(index, kc * width) {
    const int64_t t = index / width, j = index % width;
    if (j == 2 * N) {
      out[index] = 1;
    } else {
      const int16_t v = b(k0 + t, j < N ? j : j - N);
      out[index] = j < N ? HighByte(v) : LowByteCentred(v);
    }
  }
}

__global__ void CombineKernel(const int32_t* planes, int64_t M, int64_t N, int64_t kc, bool first, int64_t* c) {
  const int64_t width = 2 * N + 1;
  KI_GRID_STRIDE(index, M * N) {
    const int64_t i = index / N, j = index % N;
    const int64_t part = CombineBytePlanes(planes + 2 * i * width, planes + (2 * i + 1) * width,
                                           planes + 2 * M * width, N, j, kc);
    c[index] = first ? part : c[index] + part;
  }
}

constexpr size_t kAlign = 256;
size_t Aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

struct Layout {
  size_t rows, columns, planes, inner;
  size_t Total() const { return rows + columns + planes + inner; }
};

Layout LayoutOf(int64_t M, int64_t N, int64_t K) {
  const int64_t kc = K < kMaxExactDepth ? K : kMaxExactDepth;
  Layout layout;
  layout.rows = Aligned(static_cast<size_t>((2 * M + 1) * kc));
  layout.columns = Aligned(static_cast<size_t>(kc * (2 * N + 1)));
  layout.planes = Aligned(static_cast<size_t>((2 * M + 1) * (2 * N + 1)) * sizeof(int32_t));
  layout.inner = Aligned(MatMulWorkspaceBytes(2 * M + 1, 2 * N + 1, kc));
  return layout;
}

template <typename A, typename B>
Status Gemm16(const Context& ctx, const GemmProblem<A, B>& problem, int64_t* c, void* workspace) {
  const int64_t M = problem.M, N = problem.N, K = problem.K;
  if (K > kMaxGemm16Depth) {
    return Status::Error("int16 matmul: depth " + std::to_string(K) + " exceeds " + std::to_string(kMaxGemm16Depth) +
                         ", beyond which an int64 sum of int16 products can overflow");
  }
  if (M == 0 || N == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  if (K == 0) return CudaStatus(cudaMemsetAsync(c, 0, sizeof(int64_t) * M * N, stream), "memset");
  const Layout layout = LayoutOf(M, N, K);
  auto* base = static_cast<char*>(workspace);
  auto* rows = reinterpret_cast<int8_t*>(base);
  auto* columns = reinterpret_cast<int8_t*>(base + layout.rows);
  auto* planes = reinterpret_cast<int32_t*>(base + layout.rows + layout.columns);
  void* inner = base + layout.rows + layout.columns + layout.planes;
  for (int64_t k0 = 0; k0 < K; k0 += kMaxExactDepth) {
    const int64_t kc = K - k0 < kMaxExactDepth ? K - k0 : kMaxExactDepth;
    SplitRowsKernel<A><<<BlocksFor((2 * M + 1) * kc), kThreads, 0, stream>>>(problem.a, M, k0, kc, rows);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
    SplitColumnsKernel<B><<<BlocksFor(kc * (2 * N + 1)), kThreads, 0, stream>>>(problem.b, N, k0, kc, columns);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
    KERAS_INT_RETURN_IF_ERROR(MatMul(ctx, rows, columns, 2 * M + 1, 2 * N + 1, kc, false, false, planes, inner));
    CombineKernel<<<BlocksFor(M * N), kThreads, 0, stream>>>(planes, M, N, kc, k0 == 0, c);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
  }
  return Status::OK();
}

template <typename A, typename B>
size_t WorkspaceBytes(const GemmProblem<A, B>& problem) {
  return LayoutOf(problem.M, problem.N, problem.K).Total();
}

}  // namespace

size_t MatMul16WorkspaceBytes(int64_t M, int64_t N, int64_t K) { return LayoutOf(M, N, K).Total(); }
size_t Conv2D16WorkspaceBytes(const Conv2DGeometry& g) {
  return WorkspaceBytes(Conv2DProblem<int16_t>(g, nullptr, nullptr));
}
size_t Conv2DBackpropInput16WorkspaceBytes(const Conv2DGeometry& g) {
  return WorkspaceBytes(Conv2DBackpropInputProblem<int16_t>(g, nullptr, nullptr));
}
size_t Conv2DBackpropFilter16WorkspaceBytes(const Conv2DGeometry& g) {
  return WorkspaceBytes(Conv2DBackpropFilterProblem<int16_t>(g, nullptr, nullptr));
}

Status MatMul(const Context& ctx, const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K,
              bool transpose_x, bool transpose_w, int64_t* out, void* workspace) {
  return Gemm16(ctx, MatMulProblem(x, w, M, N, K, transpose_x, transpose_w), out, workspace);
}

Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* w, int64_t* out,
              void* workspace) {
  return Gemm16(ctx, Conv2DProblem(g, x, w), out, workspace);
}

Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int16_t* w, const int16_t* dy,
                           int64_t* dx, void* workspace) {
  return Gemm16(ctx, Conv2DBackpropInputProblem(g, w, dy), dx, workspace);
}

Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* dy,
                            int64_t* dw, void* workspace) {
  return Gemm16(ctx, Conv2DBackpropFilterProblem(g, x, dy), dw, workspace);
}

}  // namespace gpu
}  // namespace keras_int

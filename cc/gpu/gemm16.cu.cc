// The DFP16 products on the GPU (gemm16.h): per depth part of at most
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
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

// Element readers: operand(i, k) of A (M x K) or operand(k, j) of B (K x N).
struct Strided16 {
  const int16_t* data;
  int64_t row_stride, col_stride;
  __device__ int16_t operator()(int64_t r, int64_t k) const { return data[r * row_stride + k * col_stride]; }
};

// A[pixel, (kh, kw, c)]: x at tap (kh, kw) of output pixel `pixel` (0 in the padding).
struct Patch16 {
  Conv2DGeometry g;
  const int16_t* x;
  __device__ int16_t operator()(int64_t pixel, int64_t k) const {
    const int64_t ow = pixel % g.out_w, oh = pixel / g.out_w % g.out_h, n = pixel / (g.out_w * g.out_h);
    const int64_t c = k % g.in_c, kw = k / g.in_c % g.k_w, kh = k / (g.in_c * g.k_w);
    const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
    const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
    if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) return 0;
    return x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c];
  }
};

// The patches transposed: A[(kh, kw, c), pixel] (the filter gradient's left operand).
struct PatchTransposed16 {
  Patch16 patch;
  __device__ int16_t operator()(int64_t tap, int64_t pixel) const { return patch(pixel, tap); }
};

// A[(n, h, w), (kh, kw, o)]: dy at the output pixel that tap (kh, kw) of
// input pixel (h, w) feeds, 0 where none does.
struct Scatter16 {
  Conv2DGeometry g;
  const int16_t* dy;
  __device__ int16_t operator()(int64_t pixel, int64_t k) const {
    const int64_t w = pixel % g.in_w, h = pixel / g.in_w % g.in_h, n = pixel / (g.in_w * g.in_h);
    const int64_t o = k % g.out_c, kw = k / g.out_c % g.k_w, kh = k / (g.out_c * g.k_w);
    const int64_t th = h + g.pad_top - kh * g.dilation_h, tw = w + g.pad_left - kw * g.dilation_w;
    if (th < 0 || tw < 0 || th % g.stride_h != 0 || tw % g.stride_w != 0) return 0;
    const int64_t oh = th / g.stride_h, ow = tw / g.stride_w;
    if (oh >= g.out_h || ow >= g.out_w) return 0;
    return dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o];
  }
};

// B[(kh, kw, o), c] = w[kh, kw, c, o].
struct FilterTransposed16 {
  Conv2DGeometry g;
  const int16_t* w;
  __device__ int16_t operator()(int64_t k, int64_t c) const {
    const int64_t tap = k / g.out_c, o = k % g.out_c;
    return w[(tap * g.in_c + c) * g.out_c + o];
  }
};

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
Status Gemm16(const Context& ctx, int64_t M, int64_t N, int64_t K, A a, B b, int64_t* c, void* workspace) {
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
    SplitRowsKernel<A><<<BlocksFor((2 * M + 1) * kc), kThreads, 0, stream>>>(a, M, k0, kc, rows);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
    SplitColumnsKernel<B><<<BlocksFor(kc * (2 * N + 1)), kThreads, 0, stream>>>(b, N, k0, kc, columns);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
    KERAS_INT_RETURN_IF_ERROR(MatMul(ctx, rows, columns, 2 * M + 1, 2 * N + 1, kc, false, false, planes, inner));
    CombineKernel<<<BlocksFor(M * N), kThreads, 0, stream>>>(planes, M, N, kc, k0 == 0, c);
    KERAS_INT_RETURN_IF_ERROR(LaunchStatus("int16 matmul"));
  }
  return Status::OK();
}

int64_t OutPixels(const Conv2DGeometry& g) { return g.batch * g.out_h * g.out_w; }
int64_t InPixels(const Conv2DGeometry& g) { return g.batch * g.in_h * g.in_w; }
int64_t Taps(const Conv2DGeometry& g) { return g.k_h * g.k_w * g.in_c; }

}  // namespace

size_t MatMul16WorkspaceBytes(int64_t M, int64_t N, int64_t K) { return LayoutOf(M, N, K).Total(); }
size_t Conv2D16WorkspaceBytes(const Conv2DGeometry& g) { return LayoutOf(OutPixels(g), g.out_c, Taps(g)).Total(); }
size_t Conv2DBackpropInput16WorkspaceBytes(const Conv2DGeometry& g) {
  return LayoutOf(InPixels(g), g.in_c, g.k_h * g.k_w * g.out_c).Total();
}
size_t Conv2DBackpropFilter16WorkspaceBytes(const Conv2DGeometry& g) {
  return LayoutOf(Taps(g), g.out_c, OutPixels(g)).Total();
}

Status MatMul(const Context& ctx, const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K,
              bool transpose_x, bool transpose_w, int64_t* out, void* workspace) {
  const Strided16 a = transpose_x ? Strided16{x, 1, M} : Strided16{x, K, 1};
  const Strided16 b = transpose_w ? Strided16{w, 1, K} : Strided16{w, N, 1};
  return Gemm16(ctx, M, N, K, a, b, out, workspace);
}

Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* w, int64_t* out,
              void* workspace) {
  return Gemm16(ctx, OutPixels(g), g.out_c, Taps(g), Patch16{g, x}, Strided16{w, g.out_c, 1}, out, workspace);
}

Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int16_t* w, const int16_t* dy,
                           int64_t* dx, void* workspace) {
  return Gemm16(ctx, InPixels(g), g.in_c, g.k_h * g.k_w * g.out_c, Scatter16{g, dy}, FilterTransposed16{g, w}, dx,
                workspace);
}

Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int16_t* x, const int16_t* dy,
                            int64_t* dw, void* workspace) {
  // dw [(kh, kw, c), o] = patches^T [(kh, kw, c), pixels] * dy [pixels, o].
  return Gemm16(ctx, Taps(g), g.out_c, OutPixels(g), PatchTransposed16{Patch16{g, x}}, Strided16{dy, g.out_c, 1},
                dw, workspace);
}

}  // namespace gpu
}  // namespace keras_int

// How the GPU GEMM reads its operands and splits its depth (gemm.cu.cc):
// element readers A(i, k) / B(k, j) for plain matrices and for the three
// convolutions (implicit GEMM, no patch matrix), and the depth split.
// Host-callable too, so that tests/gpu can check this arithmetic on a
// machine without a GPU.
//
// Exactness: |int8 * int8| <= 2**14, so a dot product of depth <= 131071 is
// exact in int32. The depth is split into parts no deeper than that (and
// more parts when the output is too small to fill the GPU); with more than
// one part, each part's int32 result is added atomically into an int64
// workspace, which is exact and order-independent, and a last pass checks
// that every sum fits int32 (else an error, never a wrapped value).
#ifndef KERAS_INT_CC_GPU_GEMM_PLAN_H_
#define KERAS_INT_CC_GPU_GEMM_PLAN_H_

#include <cstdint>

#include "cc/core/conv.h"
#include "cc/core/host_device.h"
#include "cc/core/limits.h"

namespace keras_int {
namespace gpu {

constexpr int kBM = 128, kBN = 128, kBK = 32;  // block tile
// Parts of the depth are multiples of kBK no deeper than kMaxExactDepth.
constexpr int64_t kMaxPartDepth = kMaxExactDepth / kBK * kBK;
// Fewer output tiles than this split the depth (about two waves on an H100).
constexpr int64_t kTargetBlocks = 264;
constexpr int64_t kMinPartDepth = 2048;

// Depth parts: enough to keep every part exact, and more (down to
// kMinPartDepth deep) while there are too few output tiles.
inline int64_t DepthParts(int64_t M, int64_t N, int64_t K) {
  const int64_t tiles = ((M + kBM - 1) / kBM) * ((N + kBN - 1) / kBN);
  if (tiles == 0 || K == 0) return 1;  // an empty product: nothing to split
  int64_t parts = (K + kMaxPartDepth - 1) / kMaxPartDepth;
  const int64_t wanted = (kTargetBlocks + tiles - 1) / tiles;
  const int64_t deepest = (K + kMinPartDepth - 1) / kMinPartDepth;
  const int64_t extra = wanted < deepest ? wanted : deepest;
  if (extra > parts) parts = extra;
  return parts > 65535 ? 65535 : parts;
}

// How the depth K is split: *part_depth (a multiple of kBK) and the number
// of parts.
inline int64_t SplitDepth(int64_t M, int64_t N, int64_t K, int64_t* part_depth) {
  const int64_t parts = DepthParts(M, N, K);
  *part_depth = ((K + parts - 1) / parts + kBK - 1) / kBK * kBK;
  return (K + *part_depth - 1) / *part_depth;
}

// ---- element readers: A(i, k) of an M x K matrix, B(k, j) of K x N ----

template <typename E>
struct StridedReader {
  const E* data;
  int64_t row_stride, col_stride;
  KI_HOST_DEVICE E operator()(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// The convolutions' readers take the element type E: int8_t, or int16_t
// for the DFP16 products (gemm16.cu.cc).

// A[pixel, (kh, kw, c)] = x at tap (kh, kw) of output pixel `pixel` (forward).
template <typename E>
struct PatchReader {
  Conv2DGeometry g;
  const E* x;
  KI_HOST_DEVICE E operator()(int64_t pixel, int64_t k) const {
    const int64_t ow = pixel % g.out_w, oh = (pixel / g.out_w) % g.out_h, n = pixel / (g.out_w * g.out_h);
    const int64_t c = k % g.in_c, tap = k / g.in_c;
    const int64_t ih = oh * g.stride_h - g.pad_top + (tap / g.k_w) * g.dilation_h;
    const int64_t iw = ow * g.stride_w - g.pad_left + (tap % g.k_w) * g.dilation_w;
    if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) return 0;
    return x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c];
  }
};

// A[(n, h, w), (kh, kw, o)] = dy at the output pixel that tap (kh, kw) of
// input pixel (h, w) feeds, 0 where none does (backprop-input).
template <typename E>
struct ScatterReader {
  Conv2DGeometry g;
  const E* dy;
  KI_HOST_DEVICE E operator()(int64_t pixel, int64_t k) const {
    const int64_t w = pixel % g.in_w, h = (pixel / g.in_w) % g.in_h, n = pixel / (g.in_w * g.in_h);
    const int64_t o = k % g.out_c, tap = k / g.out_c;
    const int64_t th = h + g.pad_top - (tap / g.k_w) * g.dilation_h;
    const int64_t tw = w + g.pad_left - (tap % g.k_w) * g.dilation_w;
    if (th < 0 || tw < 0 || th % g.stride_h != 0 || tw % g.stride_w != 0) return 0;
    const int64_t oh = th / g.stride_h, ow = tw / g.stride_w;
    if (oh >= g.out_h || ow >= g.out_w) return 0;
    return dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o];
  }
};

// B[(kh, kw, o), c] = w[kh, kw, c, o] (backprop-input).
template <typename E>
struct FilterTransposedReader {
  Conv2DGeometry g;
  const E* w;
  KI_HOST_DEVICE E operator()(int64_t k, int64_t c) const {
    return w[((k / g.out_c) * g.in_c + c) * g.out_c + k % g.out_c];
  }
};

// A[(kh, kw, c), (n, oh, ow)] = x at that tap of that output pixel (backprop-filter).
template <typename E>
struct TapPixelReader {
  PatchReader<E> patches;
  KI_HOST_DEVICE E operator()(int64_t tap_channel, int64_t pixel) const {
    return patches(pixel, tap_channel);
  }
};

// ---- each op as one GEMM problem: C (M x N) = A (M x K) * B (K x N) ----

template <typename ReaderA, typename ReaderB>
struct GemmProblem {
  int64_t M, N, K;
  ReaderA a;
  ReaderB b;
};

template <typename E>
GemmProblem<StridedReader<E>, StridedReader<E>> MatMulProblem(const E* x, const E* w, int64_t M, int64_t N, int64_t K,
                                                              bool transpose_x, bool transpose_w) {
  // A transposed operand is read with swapped strides.
  const StridedReader<E> a{x, transpose_x ? 1 : K, transpose_x ? M : 1};
  const StridedReader<E> b{w, transpose_w ? 1 : N, transpose_w ? K : 1};
  return {M, N, K, a, b};
}

// out [pixels, o] = patches [pixels, (kh, kw, c)] * w [(kh, kw, c), o].
template <typename E>
GemmProblem<PatchReader<E>, StridedReader<E>> Conv2DProblem(const Conv2DGeometry& g, const E* x, const E* w) {
  return {g.batch * g.out_h * g.out_w, g.out_c, g.k_h * g.k_w * g.in_c, PatchReader<E>{g, x},
          StridedReader<E>{w, g.out_c, 1}};
}

// dx [pixels, c] = scattered dy [pixels, (kh, kw, o)] * w^T [(kh, kw, o), c].
template <typename E>
GemmProblem<ScatterReader<E>, FilterTransposedReader<E>> Conv2DBackpropInputProblem(const Conv2DGeometry& g,
                                                                                    const E* w, const E* dy) {
  return {g.batch * g.in_h * g.in_w, g.in_c, g.k_h * g.k_w * g.out_c, ScatterReader<E>{g, dy},
          FilterTransposedReader<E>{g, w}};
}

// dw [(kh, kw, c), o] = patches^T [(kh, kw, c), pixels] * dy [pixels, o].
template <typename E>
GemmProblem<TapPixelReader<E>, StridedReader<E>> Conv2DBackpropFilterProblem(const Conv2DGeometry& g, const E* x,
                                                                             const E* dy) {
  return {g.k_h * g.k_w * g.in_c, g.out_c, g.batch * g.out_h * g.out_w, TapPixelReader<E>{PatchReader<E>{g, x}},
          StridedReader<E>{dy, g.out_c, 1}};
}

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_GEMM_PLAN_H_

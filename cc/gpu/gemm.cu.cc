// Exact int8 x int8 -> int32 GEMM on tensor cores (WMMA m16n16k16, s8 in,
// s32 accumulate), and the convolutions as implicit GEMMs over the same
// element readers as the CPU core (no patch matrix is materialised).
//
// Exactness: |int8 * int8| <= 2**14, so a dot product of depth <= 131071 is
// exact in int32. The depth is split into parts no deeper than that (and
// more parts when the output is too small to fill the GPU); with more than
// one part, each part's int32 tile is added atomically into an int64
// workspace, which is exact and order-independent, and a last pass checks
// that every sum fits int32 (else an error, never a wrapped value).
#include <cuda_fp16.h>
#include <mma.h>

#include <string>

#include "cc/core/gemm.h"
#include "cc/gpu/gpu.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

using namespace nvcuda;

constexpr int kBM = 128, kBN = 128, kBK = 32;  // block tile
constexpr int kWarpsM = 4, kWarpsN = 2;        // 8 warps, each 32 x 64
constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;
constexpr int kFragsM = kWM / 16, kFragsN = kWN / 16;
constexpr int kGemmThreads = kWarpsM * kWarpsN * 32;
// WMMA loads need 32-byte aligned fragment pointers; an int8 fragment 16
// columns to the right is only 16 bytes away. So both tiles are stored as
// slices 16 wide, each row of a slice padded to kSliceStride elements.
constexpr int kSliceStride = 32;
// Parts of the depth are multiples of kBK no deeper than kMaxExactDepth.
constexpr int64_t kMaxPartDepth = kMaxExactDepth / kBK * kBK;
// Fewer output tiles than this split the depth (about two waves on an H100).
constexpr int64_t kTargetBlocks = 264;
constexpr int64_t kMinPartDepth = 2048;

// ---- element readers: A(i, k) of an M x K matrix, B(k, j) of K x N ----

template <typename E>
struct StridedReader {
  const E* data;
  int64_t row_stride, col_stride;
  __device__ E operator()(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// A[pixel, (kh, kw, c)] = x at tap (kh, kw) of output pixel `pixel` (forward).
struct PatchReader {
  Conv2DGeometry g;
  const int8_t* x;
  __device__ int8_t operator()(int64_t pixel, int64_t k) const {
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
struct ScatterReader {
  Conv2DGeometry g;
  const int8_t* dy;
  __device__ int8_t operator()(int64_t pixel, int64_t k) const {
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
struct FilterTransposedReader {
  Conv2DGeometry g;
  const int8_t* w;
  __device__ int8_t operator()(int64_t k, int64_t c) const {
    return w[((k / g.out_c) * g.in_c + c) * g.out_c + k % g.out_c];
  }
};

// A[(kh, kw, c), (n, oh, ow)] = x at that tap of that output pixel (backprop-filter).
struct TapPixelReader {
  PatchReader patches;
  __device__ int8_t operator()(int64_t tap_channel, int64_t pixel) const {
    return patches(pixel, tap_channel);
  }
};

// ---- the tensor-core GEMM ----

template <typename E>
struct Fragments;
template <>
struct Fragments<int8_t> {
  using A = wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major>;
  using B = wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::row_major>;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, int>;
  using Out = int32_t;
  using Raw = signed char;
};
template <>
struct Fragments<__half> {
  using A = wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major>;
  using B = wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major>;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using Out = float;
  using Raw = __half;
};

// One block computes a kBM x kBN tile of C over the depth part blockIdx.z
// (`part_depth` deep). With one part, C is written directly; otherwise the
// part is added into the int64 workspace `total`.
template <typename E, typename ReaderA, typename ReaderB>
__global__ void __launch_bounds__(kGemmThreads)
    GemmKernel(int64_t M, int64_t N, int64_t K, int64_t part_depth, ReaderA a, ReaderB b,
               typename Fragments<E>::Out* c, long long* total) {
  using F = Fragments<E>;
  using Out = typename F::Out;
  __shared__ __align__(32) E a_tile[kBK / 16][kBM][kSliceStride];  // [depth slice][row][depth]
  __shared__ __align__(32) E b_tile[kBN / 16][kBK][kSliceStride];  // [column slice][depth][column]
  __shared__ __align__(32) Out staging[kWarpsM * kWarpsN][16 * 16];

  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kBM, j0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * part_depth;
  const int64_t k_end = k_begin + part_depth < K ? k_begin + part_depth : K;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = warp / kWarpsN, warp_n = warp % kWarpsN;

  typename F::Acc acc[kFragsM][kFragsN];
  for (int fm = 0; fm < kFragsM; ++fm)
    for (int fn = 0; fn < kFragsN; ++fn) wmma::fill_fragment(acc[fm][fn], static_cast<Out>(0));

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    // Consecutive threads read consecutive depths of A and columns of B, the
    // contiguous direction of row-major operands and of NHWC channels.
    for (int t = threadIdx.x; t < kBM * kBK; t += kGemmThreads) {
      const int r = t / kBK, kk = t % kBK;
      const int64_t i = i0 + r, k = k0 + kk;
      a_tile[kk / 16][r][kk % 16] = (i < M && k < k_end) ? static_cast<E>(a(i, k)) : static_cast<E>(0);
    }
    for (int t = threadIdx.x; t < kBK * kBN; t += kGemmThreads) {
      const int kk = t / kBN, s = t % kBN;
      const int64_t k = k0 + kk, j = j0 + s;
      b_tile[s / 16][kk][s % 16] = (j < N && k < k_end) ? static_cast<E>(b(k, j)) : static_cast<E>(0);
    }
    __syncthreads();
    for (int kk = 0; kk < kBK; kk += 16) {
      typename F::A a_frag[kFragsM];
      typename F::B b_frag[kFragsN];
      for (int fm = 0; fm < kFragsM; ++fm) {
        wmma::load_matrix_sync(a_frag[fm], reinterpret_cast<const typename F::Raw*>(
                                               &a_tile[kk / 16][warp_m * kWM + fm * 16][0]), kSliceStride);
      }
      for (int fn = 0; fn < kFragsN; ++fn) {
        wmma::load_matrix_sync(b_frag[fn], reinterpret_cast<const typename F::Raw*>(
                                               &b_tile[(warp_n * kWN + fn * 16) / 16][kk][0]), kSliceStride);
      }
      for (int fm = 0; fm < kFragsM; ++fm)
        for (int fn = 0; fn < kFragsN; ++fn) wmma::mma_sync(acc[fm][fn], a_frag[fm], b_frag[fn], acc[fm][fn]);
    }
    __syncthreads();
  }

  // Each warp stages its 16 x 16 fragments through shared memory, so edge
  // tiles are written element by element inside the bounds.
  Out* stage = staging[warp];
  for (int fm = 0; fm < kFragsM; ++fm) {
    for (int fn = 0; fn < kFragsN; ++fn) {
      wmma::store_matrix_sync(stage, acc[fm][fn], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t fi = i0 + warp_m * kWM + fm * 16, fj = j0 + warp_n * kWN + fn * 16;
      for (int e = lane; e < 256; e += 32) {
        const int64_t i = fi + e / 16, j = fj + e % 16;
        if (i < M && j < N) {
          if (total == nullptr) {
            c[i * N + j] = stage[e];
          } else {
            atomicAdd(reinterpret_cast<unsigned long long*>(&total[i * N + j]),
                      static_cast<unsigned long long>(static_cast<long long>(stage[e])));
          }
        }
      }
      __syncwarp();
    }
  }
}

// int64 sums -> int32 C; a sum outside int32 raises the flag and records it.
__global__ void FinishSplitKernel(const long long* total, int64_t n, int32_t* c, uint32_t* overflow,
                                  long long* bad_value) {
  KI_GRID_STRIDE(i, n) {
    const long long v = total[i];
    if (v > INT32_MAX || v < INT32_MIN) {
      if (atomicOr(overflow, 1u) == 0) *bad_value = v;
    } else {
      c[i] = static_cast<int32_t>(v);
    }
  }
}

// Depth parts: enough to keep every part exact, and more (down to
// kMinPartDepth deep) while there are too few output tiles.
int64_t DepthParts(int64_t M, int64_t N, int64_t K) {
  const int64_t tiles = ((M + kBM - 1) / kBM) * ((N + kBN - 1) / kBN);
  int64_t parts = (K + kMaxPartDepth - 1) / kMaxPartDepth;
  const int64_t wanted = (kTargetBlocks + tiles - 1) / tiles;
  const int64_t deepest = (K + kMinPartDepth - 1) / kMinPartDepth;
  const int64_t extra = wanted < deepest ? wanted : deepest;
  if (extra > parts) parts = extra;
  return parts > 65535 ? 65535 : parts;
}

int64_t PartDepth(int64_t K, int64_t parts) {
  const int64_t depth = (K + parts - 1) / parts;
  return (depth + kBK - 1) / kBK * kBK;
}

template <typename E, typename ReaderA, typename ReaderB>
Status Gemm(const Context& ctx, int64_t M, int64_t N, int64_t K, const ReaderA& a,
            const ReaderB& b, typename Fragments<E>::Out* c, void* workspace) {
  using Out = typename Fragments<E>::Out;
  const cudaStream_t stream = StreamOf(ctx);
  if (M == 0 || N == 0) return Status::OK();
  if (K == 0) return CudaStatus(cudaMemsetAsync(c, 0, sizeof(Out) * M * N, stream), "memset");
  const int64_t parts = DepthParts(M, N, K);
  const int64_t part_depth = PartDepth(K, parts);
  const int64_t used_parts = (K + part_depth - 1) / part_depth;
  const int64_t grid_y = (M + kBM - 1) / kBM;
  if (grid_y > 65535) return Status::Error("gemm: " + std::to_string(M) + " rows exceed the GPU grid");
  const dim3 grid(static_cast<unsigned>((N + kBN - 1) / kBN), static_cast<unsigned>(grid_y),
                  static_cast<unsigned>(used_parts));
  if (used_parts == 1) {
    GemmKernel<E><<<grid, kGemmThreads, 0, stream>>>(M, N, K, part_depth, a, b, c, nullptr);
    return LaunchStatus("gemm");
  }
  if (workspace == nullptr) return Status::Error("gemm: a split product needs its workspace");
  long long* total = static_cast<long long*>(workspace);
  KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(total, 0, sizeof(long long) * M * N, stream), "memset");
  GemmKernel<E><<<grid, kGemmThreads, 0, stream>>>(M, N, K, part_depth, a, b, nullptr, total);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("gemm"));
  uint32_t* overflow;
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, 4, &overflow));
  long long* bad_value = reinterpret_cast<long long*>(overflow + 2);
  FinishSplitKernel<<<BlocksFor(M * N), kThreads, 0, stream>>>(total, M * N, c, overflow, bad_value);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("gemm"));
  uint32_t words[4];
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, overflow, words, 4));
  if (words[0]) {
    long long value;
    static_assert(sizeof(value) == 2 * sizeof(uint32_t), "two words");
    memcpy(&value, &words[2], sizeof(value));
    return Status::Error("int32 overflow: a dot product of depth " + std::to_string(K) + " sums to " +
                         std::to_string(value) + ", outside the int32 range of the accumulator");
  }
  return Status::OK();
}

// Only int8 products are split (fp16 has no exactness to keep).
template <>
Status Gemm<__half, StridedReader<__half>, StridedReader<__half>>(
    const Context& ctx, int64_t M, int64_t N, int64_t K, const StridedReader<__half>& a,
    const StridedReader<__half>& b, float* c, void*) {
  if (M == 0 || N == 0 || K == 0) return Status::Error("half gemm: empty shape");
  const dim3 grid(static_cast<unsigned>((N + kBN - 1) / kBN), static_cast<unsigned>((M + kBM - 1) / kBM), 1);
  GemmKernel<__half><<<grid, kGemmThreads, 0, StreamOf(ctx)>>>(M, N, K, (K + kBK - 1) / kBK * kBK, a, b, c,
                                                               nullptr);
  return LaunchStatus("half gemm");
}

StridedReader<int8_t> MatrixA(const int8_t* x, int64_t M, int64_t K, bool transpose) {
  return transpose ? StridedReader<int8_t>{x, 1, M} : StridedReader<int8_t>{x, K, 1};
}

StridedReader<int8_t> MatrixB(const int8_t* w, int64_t N, int64_t K, bool transpose) {
  return transpose ? StridedReader<int8_t>{w, 1, K} : StridedReader<int8_t>{w, N, 1};
}

}  // namespace

size_t GemmWorkspaceBytes(int64_t M, int64_t N, int64_t K) {
  if (M == 0 || N == 0 || K == 0) return 0;
  const int64_t parts = (K + PartDepth(K, DepthParts(M, N, K)) - 1) / PartDepth(K, DepthParts(M, N, K));
  return parts > 1 ? sizeof(long long) * M * N : 0;
}

size_t MatMulWorkspaceBytes(int64_t M, int64_t N, int64_t K) { return GemmWorkspaceBytes(M, N, K); }

size_t Conv2DWorkspaceBytes(const Conv2DGeometry& g) {
  return GemmWorkspaceBytes(g.batch * g.out_h * g.out_w, g.out_c, g.k_h * g.k_w * g.in_c);
}

size_t Conv2DBackpropInputWorkspaceBytes(const Conv2DGeometry& g) {
  return GemmWorkspaceBytes(g.batch * g.in_h * g.in_w, g.in_c, g.k_h * g.k_w * g.out_c);
}

size_t Conv2DBackpropFilterWorkspaceBytes(const Conv2DGeometry& g) {
  return GemmWorkspaceBytes(g.k_h * g.k_w * g.in_c, g.out_c, g.batch * g.out_h * g.out_w);
}

Status MatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t M, int64_t N,
              int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace) {
  return Gemm<int8_t>(ctx, M, N, K, MatrixA(x, M, K, transpose_x), MatrixB(w, N, K, transpose_w), out,
                      workspace);
}

Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
              int32_t* out, void* workspace) {
  return Gemm<int8_t>(ctx, g.batch * g.out_h * g.out_w, g.out_c, g.k_h * g.k_w * g.in_c,
                      PatchReader{g, x}, StridedReader<int8_t>{w, g.out_c, 1}, out, workspace);
}

Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int8_t* w,
                           const int8_t* dy, int32_t* dx, void* workspace) {
  return Gemm<int8_t>(ctx, g.batch * g.in_h * g.in_w, g.in_c, g.k_h * g.k_w * g.out_c,
                      ScatterReader{g, dy}, FilterTransposedReader{g, w}, dx, workspace);
}

Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int8_t* x,
                            const int8_t* dy, int32_t* dw, void* workspace) {
  // dw [(kh, kw, c), o] = patches^T [(kh, kw, c), pixels] * dy [pixels, o].
  return Gemm<int8_t>(ctx, g.k_h * g.k_w * g.in_c, g.out_c, g.batch * g.out_h * g.out_w,
                      TapPixelReader{PatchReader{g, x}}, StridedReader<int8_t>{dy, g.out_c, 1}, dw,
                      workspace);
}

Status HalfMatMul(const Context& ctx, const void* x_half, const void* w_half, int64_t M, int64_t N,
                  int64_t K, float* out) {
  return Gemm<__half>(ctx, M, N, K, StridedReader<__half>{static_cast<const __half*>(x_half), K, 1},
                      StridedReader<__half>{static_cast<const __half*>(w_half), N, 1}, out, nullptr);
}

}  // namespace gpu
}  // namespace keras_int

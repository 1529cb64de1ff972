// Exact int8 x int8 -> int32 GEMM on tensor cores (WMMA m16n16k16, s8 in,
// s32 accumulate), and the convolutions as implicit GEMMs over the element
// readers and depth split of gemm_plan.h (no patch matrix is materialised).
#include <cuda_fp16.h>
#include <mma.h>

#include <string>

#include "cc/gpu/gemm.h"
#include "cc/gpu/gemm_plan.h"
#include "cc/gpu/launch.cuh"

namespace keras_int {
namespace gpu {

namespace {

using namespace nvcuda;

constexpr int kWarpsM = 4, kWarpsN = 2;        // 8 warps, each 32 x 64
constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;
constexpr int kFragsM = kWM / 16, kFragsN = kWN / 16;
constexpr int kGemmThreads = kWarpsM * kWarpsN * 32;
// WMMA loads need 32-byte aligned fragment pointers; an int8 fragment 16
// columns to the right is only 16 bytes away. So both tiles are stored as
// slices 16 wide, each row of a slice padded to kSliceStride elements.
constexpr int kSliceStride = 32;

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

  // Row tiles on x (up to 2**31 - 1 blocks: convolutions have many pixels).
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kBM, j0 = static_cast<int64_t>(blockIdx.y) * kBN;
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

template <typename E, typename ReaderA, typename ReaderB>
Status Gemm(const Context& ctx, int64_t M, int64_t N, int64_t K, const ReaderA& a,
            const ReaderB& b, typename Fragments<E>::Out* c, void* workspace) {
  using Out = typename Fragments<E>::Out;
  const cudaStream_t stream = StreamOf(ctx);
  if (M == 0 || N == 0) return Status::OK();
  if (K == 0) return CudaStatus(cudaMemsetAsync(c, 0, sizeof(Out) * M * N, stream), "memset");
  int64_t part_depth;
  const int64_t used_parts = SplitDepth(M, N, K, &part_depth);
  const int64_t column_tiles = (N + kBN - 1) / kBN;
  if (column_tiles > 65535) return Status::Error("gemm: " + std::to_string(N) + " columns exceed the GPU grid");
  const dim3 grid(static_cast<unsigned>((M + kBM - 1) / kBM), static_cast<unsigned>(column_tiles),
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
  const dim3 grid(static_cast<unsigned>((M + kBM - 1) / kBM), static_cast<unsigned>((N + kBN - 1) / kBN), 1);
  GemmKernel<__half><<<grid, kGemmThreads, 0, StreamOf(ctx)>>>(M, N, K, (K + kBK - 1) / kBK * kBK, a, b, c,
                                                               nullptr);
  return LaunchStatus("half gemm");
}

template <typename Problem>
Status Run(const Context& ctx, const Problem& p, int32_t* c, void* workspace) {
  return Gemm<int8_t>(ctx, p.M, p.N, p.K, p.a, p.b, c, workspace);
}

template <typename Problem>
size_t WorkspaceBytes(const Problem& p) {
  return GemmWorkspaceBytes(p.M, p.N, p.K);
}

}  // namespace

size_t GemmWorkspaceBytes(int64_t M, int64_t N, int64_t K) {
  if (M == 0 || N == 0 || K == 0) return 0;
  int64_t part_depth;
  return SplitDepth(M, N, K, &part_depth) > 1 ? sizeof(long long) * M * N : 0;
}

size_t MatMulWorkspaceBytes(int64_t M, int64_t N, int64_t K) { return GemmWorkspaceBytes(M, N, K); }

size_t Conv2DWorkspaceBytes(const Conv2DGeometry& g) { return WorkspaceBytes(Conv2DProblem<int8_t>(g, nullptr, nullptr)); }

size_t Conv2DBackpropInputWorkspaceBytes(const Conv2DGeometry& g) {
  return WorkspaceBytes(Conv2DBackpropInputProblem<int8_t>(g, nullptr, nullptr));
}

size_t Conv2DBackpropFilterWorkspaceBytes(const Conv2DGeometry& g) {
  return WorkspaceBytes(Conv2DBackpropFilterProblem<int8_t>(g, nullptr, nullptr));
}

Status MatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t M, int64_t N,
              int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace) {
  return Run(ctx, MatMulProblem(x, w, M, N, K, transpose_x, transpose_w), out, workspace);
}

Status BatchMatMul(const Context& ctx, const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N,
                   int64_t K, bool transpose_x, bool transpose_w, int32_t* out, void* workspace) {
  for (int64_t b = 0; b < batch; ++b) {
    KERAS_INT_RETURN_IF_ERROR(MatMul(ctx, x + b * M * K, w + b * K * N, M, N, K, transpose_x, transpose_w,
                                     out + b * M * N, workspace));
  }
  return Status::OK();
}

Status Conv2D(const Context& ctx, const Conv2DGeometry& g, const int8_t* x, const int8_t* w,
              int32_t* out, void* workspace) {
  return Run(ctx, Conv2DProblem(g, x, w), out, workspace);
}

Status Conv2DBackpropInput(const Context& ctx, const Conv2DGeometry& g, const int8_t* w,
                           const int8_t* dy, int32_t* dx, void* workspace) {
  return Run(ctx, Conv2DBackpropInputProblem(g, w, dy), dx, workspace);
}

Status Conv2DBackpropFilter(const Context& ctx, const Conv2DGeometry& g, const int8_t* x,
                            const int8_t* dy, int32_t* dw, void* workspace) {
  return Run(ctx, Conv2DBackpropFilterProblem(g, x, dy), dw, workspace);
}

Status HalfMatMul(const Context& ctx, const void* x_half, const void* w_half, int64_t M, int64_t N,
                  int64_t K, float* out) {
  return Gemm<__half>(ctx, M, N, K, StridedReader<__half>{static_cast<const __half*>(x_half), K, 1},
                      StridedReader<__half>{static_cast<const __half*>(w_half), N, 1}, out, nullptr);
}

}  // namespace gpu
}  // namespace keras_int

#include "cc/core/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace keras_int {
namespace gemm_internal {

void MicroKernelPortable(int64_t k_pairs, const int16_t* a, const int16_t* b, int32_t* c,
                         int64_t ldc, bool accumulate) {
  int32_t acc[kMR][kNR] = {};
  for (int64_t p = 0; p < k_pairs; ++p) {
    const int16_t* ap = a + p * 2 * kMR;
    const int16_t* bp = b + p * 2 * kNR;
    for (int r = 0; r < kMR; ++r) {
      for (int j = 0; j < kNR; ++j) {
        acc[r][j] += int32_t{ap[2 * r]} * bp[2 * j] + int32_t{ap[2 * r + 1]} * bp[2 * j + 1];
      }
    }
  }
  for (int r = 0; r < kMR; ++r) {
    for (int j = 0; j < kNR; ++j) c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0) + acc[r][j];
  }
}

MicroKernel SelectedMicroKernel() {
  static const MicroKernel kernel =
      __builtin_cpu_supports("avx2") ? MicroKernelAvx2 : MicroKernelPortable;
  return kernel;
}

QuadKernel SelectedQuadKernel() {
  // KERAS_INT_GEMM=pairs forces the int16-pair kernels (to compare the two).
  static const QuadKernel kernel =
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
              !(std::getenv("KERAS_INT_GEMM") && std::string(std::getenv("KERAS_INT_GEMM")) == "pairs")
          ? QuadKernelAvx512Vnni
          : nullptr;
  return kernel;
}

}  // namespace gemm_internal

Status MatMul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int32_t* out, const ParallelFor& parallel_for) {
  const StridedMatrix b = transpose_w ? StridedMatrix{w, 1, K} : StridedMatrix{w, N, 1};
  if (transpose_x && N < M) {
    // x^T w with few columns (a dense layer's weight gradient, x^T err):
    // packing rows of x^T gathers bytes M apart, so compute (w^T x)^T, whose
    // operands are read along contiguous rows of x, and transpose the result.
    const StridedMatrix w_t = transpose_w ? StridedMatrix{w, K, 1} : StridedMatrix{w, 1, N};
    std::vector<int32_t> transposed(N * M);
    KERAS_INT_RETURN_IF_ERROR(Gemm(N, M, K, w_t, StridedMatrix{x, M, 1}, transposed.data(), parallel_for));
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) out[i * N + j] = transposed[j * M + i];
    }
    return Status::OK();
  }
  const StridedMatrix a = transpose_x ? StridedMatrix{x, 1, M} : StridedMatrix{x, K, 1};
  return Gemm(M, N, K, a, b, out, parallel_for);
}

Status BatchMatMul(const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N, int64_t K,
                   bool transpose_x, bool transpose_w, int32_t* out, const ParallelFor& parallel_for) {
  if (batch == 1) return MatMul(x, w, M, N, K, transpose_x, transpose_w, out, parallel_for);
  // Every product is exact on its own (MatMul's int32 parts, int64 totals);
  // the first error, by batch index, is reported.
  std::vector<Status> status(static_cast<size_t>(batch), Status::OK());
  parallel_for(batch, std::max<int64_t>(1, M * N * K / 8), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      status[b] = MatMul(x + b * M * K, w + b * K * N, M, N, K, transpose_x, transpose_w, out + b * M * N, SerialFor);
    }
  });
  for (const Status& s : status) KERAS_INT_RETURN_IF_ERROR(s);
  return Status::OK();
}

}  // namespace keras_int

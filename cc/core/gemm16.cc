#include "cc/core/gemm16.h"

namespace keras_int {

Status MatMul(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int64_t* out, const ParallelFor& parallel_for) {
  const StridedMatrix16 a = transpose_x ? StridedMatrix16{x, 1, M} : StridedMatrix16{x, K, 1};
  const StridedMatrix16 b = transpose_w ? StridedMatrix16{w, 1, K} : StridedMatrix16{w, N, 1};
  return Gemm16(M, N, K, a, b, out, parallel_for);
}

}  // namespace keras_int

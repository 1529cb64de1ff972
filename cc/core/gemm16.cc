#include "cc/core/gemm16.h"

#include <algorithm>

#include "cc/core/host_device.h"

namespace keras_int {
namespace gemm16_internal {

KI_VECTOR_CLONES void ShallowRows(const int16_t* a, int64_t rows, int64_t K, const int32_t* b, int64_t N,
                                  int64_t* c) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t* __restrict out = c + r * N;
    for (int64_t j = 0; j < N; ++j) out[j] = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t v = a[r * K + k];
      const int32_t* __restrict w = b + k * N;
      for (int64_t j = 0; j < N; ++j) out[j] += v * w[j];  // |v w| < 2**30: exact in int32
    }
  }
}

KI_VECTOR_CLONES void ShallowRowsNarrow(const int16_t* a, int64_t rows, int64_t K, const int32_t* b, int64_t N,
                                        int64_t* c) {
  constexpr int64_t kColumns = 256;
  int32_t sums[kColumns];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j0 = 0; j0 < N; j0 += kColumns) {
      const int64_t n = std::min(kColumns, N - j0);
      for (int64_t j = 0; j < n; ++j) sums[j] = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int32_t v = a[r * K + k];
        const int32_t* __restrict w = b + k * N + j0;
        for (int64_t j = 0; j < n; ++j) sums[j] += v * w[j];  // |sum| < 32 * 2**22: exact in int32
      }
      for (int64_t j = 0; j < n; ++j) c[r * N + j0 + j] = sums[j];
    }
  }
}

}  // namespace gemm16_internal

bool FitsInt8(const int16_t* values, int64_t n, const ParallelFor& parallel_for) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<unsigned char> fits(blocks);
  parallel_for(blocks, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int16_t* v = values + block * kBlock;
      const int64_t count = std::min(kBlock, n - block * kBlock);
      int16_t low = 0, high = 0;  // a min/max reduction: a vector loop
      for (int64_t t = 0; t < count; ++t) low = std::min(low, v[t]), high = std::max(high, v[t]);
      fits[block] = low >= -128 && high <= 127;
    }
  });
  return std::all_of(fits.begin(), fits.end(), [](unsigned char f) { return f != 0; });
}

// `rows` x `cols` (row-major) transposed, so that the GEMM reads its rows
// contiguously (a strided int16 row would be gathered element by element,
// once per row block).
std::vector<int16_t> Transposed16(const int16_t* m, int64_t rows, int64_t cols, const ParallelFor& parallel_for) {
  std::vector<int16_t> t(rows * cols);
  parallel_for(cols, rows, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t i = 0; i < rows; ++i) t[j * rows + i] = m[i * cols + j];
    }
  });
  return t;
}

Status MatMul(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int64_t* out, const ParallelFor& parallel_for) {
  std::vector<int16_t> x_t, w_t;
  if (transpose_x) x_t = Transposed16(x, K, M, parallel_for), x = x_t.data();
  if (transpose_w) w_t = Transposed16(w, N, K, parallel_for), w = w_t.data();
  const Gemm16Widths widths{!FitsInt8(x, M * K, parallel_for), !FitsInt8(w, K * N, parallel_for)};
  return Gemm16(M, N, K, StridedMatrix16{x, K, 1}, StridedMatrix16{w, N, 1}, out, parallel_for, widths);
}

}  // namespace keras_int

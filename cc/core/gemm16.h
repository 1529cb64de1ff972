// Exact int16 x int16 -> int64 matrix multiplication (the DFP16 datapath,
// docs/algorithms.md section 16) on the int8 GEMM of gemm.h.
//
// Each int16 value is split into two signed bytes, v = 256 h + l + 128 with
// h = v >> 8 and l = (v & 255) - 128, both in [-128, 127]. With
// v~ = 256 h + l = v - 128,
//   sum_k a b = sum_k a~ b~ + 128 (sum_k a + sum_k b) - 16384 K,
//   sum_k a~ b~ = 65536 (Ah Bh) + 256 (Ah Bl + Al Bh) + Al Bl,
// and the four byte products are one int8 GEMM of the stacked planes
// [Ah; Al; 1] ((2M + 1) x K) by [Bh, Bl, 1] (K x (2N + 1)), exact in int32
// for every depth up to kMaxExactDepth, combined in int64. The row and the
// column of ones give the planes' sums, from which sum_k a and sum_k b
// follow (sum_k a = 256 sum_k h + sum_k l + 128 K): no second pass over
// the operands. This is how int16 runs on int8
// tensor cores; on this CPU it keeps vpdpbusd's 64 byte products per
// instruction (16 int16 products' worth) where vpmaddwd pair sums would need
// a widening to int64 after every instruction, since one pair sum of int16
// products already reaches 2**31.
//
// Operands are read through int16 row readers, as gemm.h's int8 ones:
//   A: void ReadRow(int64_t i, int64_t k0, int64_t kc, int16_t* out)
//   B: void ReadRow(int64_t k, int64_t j0, int64_t nj, int16_t* out)
#ifndef KERAS_INT_CC_CORE_GEMM16_H_
#define KERAS_INT_CC_CORE_GEMM16_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cc/core/gemm.h"

namespace keras_int {

// A row reader over a strided int16 matrix: element (r, k) at data[r*rs + k*cs].
struct StridedMatrix16 {
  const int16_t* data;
  int64_t row_stride;
  int64_t col_stride;
  void ReadRow(int64_t r, int64_t k0, int64_t count, int16_t* out) const {
    const int16_t* p = data + r * row_stride + k0 * col_stride;
    if (col_stride == 1) {
      std::memcpy(out, p, count * sizeof(int16_t));
    } else {
      for (int64_t t = 0; t < count; ++t) out[t] = p[t * col_stride];
    }
  }
};

namespace gemm16_internal {

// The two signed bytes of v: v = 256 * HighByte(v) + LowByteCentred(v) + 128.
inline int8_t HighByte(int16_t v) { return static_cast<int8_t>(v >> 8); }
inline int8_t LowByteCentred(int16_t v) { return static_cast<int8_t>((v & 255) - 128); }

// Reads `count` int16 values at a time in chunks through a stack buffer and
// writes one byte plane of them.
constexpr int64_t kChunk = 256;
template <typename Read>
inline void ReadPlane(int64_t count, bool low, int8_t* out, const Read& read) {
  int16_t buffer[kChunk];
  for (int64_t t0 = 0; t0 < count; t0 += kChunk) {
    const int64_t n = std::min(kChunk, count - t0);
    read(t0, n, buffer);
    if (low) {
      for (int64_t t = 0; t < n; ++t) out[t0 + t] = LowByteCentred(buffer[t]);
    } else {
      for (int64_t t = 0; t < n; ++t) out[t0 + t] = HighByte(buffer[t]);
    }
  }
}

// [Ah; Al; 1] of the M rows of A from `first`: rows [0, M) are their high
// bytes, [M, 2M) their low ones, row 2M is ones.
template <typename Reader16>
struct StackedRowPlanes {
  const Reader16& a;
  int64_t first;
  int64_t M;
  void ReadRow(int64_t i, int64_t k0, int64_t count, int8_t* out) const {
    if (i == 2 * M) {
      std::memset(out, 1, count);
      return;
    }
    const bool low = i >= M;
    const int64_t row = first + (low ? i - M : i);
    ReadPlane(count, low, out, [&](int64_t t0, int64_t n, int16_t* buffer) { a.ReadRow(row, k0 + t0, n, buffer); });
  }
};

// [Bh, Bl, 1]: columns [0, N) are the high bytes of B's columns, [N, 2N)
// the low ones, column 2N is ones.
template <typename Reader16>
struct SideBySidePlanes {
  const Reader16& b;
  int64_t N;
  void ReadRow(int64_t k, int64_t j0, int64_t count, int8_t* out) const {
    if (j0 < N) {
      const int64_t high = std::min(count, N - j0);
      ReadPlane(high, false, out, [&](int64_t t0, int64_t n, int16_t* buffer) { b.ReadRow(k, j0 + t0, n, buffer); });
      out += high, j0 += high, count -= high;
    }
    if (j0 < 2 * N && count > 0) {
      const int64_t low = std::min(count, 2 * N - j0);
      ReadPlane(low, true, out, [&](int64_t t0, int64_t n, int16_t* buffer) { b.ReadRow(k, j0 - N + t0, n, buffer); });
      out += low, j0 += low, count -= low;
    }
    if (count > 0) *out = 1;  // column 2N
  }
};

template <typename Reader16>
struct DepthOffset16A {
  const Reader16& a;
  int64_t offset;
  void ReadRow(int64_t i, int64_t k0, int64_t kc, int16_t* out) const { a.ReadRow(i, k0 + offset, kc, out); }
};

template <typename Reader16>
struct DepthOffset16B {
  const Reader16& b;
  int64_t offset;
  void ReadRow(int64_t k, int64_t j0, int64_t nj, int16_t* out) const { b.ReadRow(k + offset, j0, nj, out); }
};

}  // namespace gemm16_internal

// |sum_k a b| <= K * 32767**2 < 2**63 for K below 2**33.
constexpr int64_t kMaxGemm16Depth = (int64_t{1} << 33) - 1;

// C (M x N, row-major, int64) = A (M x K) * B (K x N), int16 operands, exact.
template <typename ReaderA, typename ReaderB>
Status Gemm16(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
              const ParallelFor& parallel_for) {
  using namespace gemm16_internal;
  if (K > kMaxGemm16Depth) {
    return Status::Error("int16 matmul: depth " + std::to_string(K) + " exceeds " +
                         std::to_string(kMaxGemm16Depth) + ", beyond which an int64 sum of int16 products can overflow");
  }
  if (M == 0 || N == 0) return Status::OK();
  if (K == 0) {
    std::fill(c, c + M * N, int64_t{0});
    return Status::OK();
  }
  // Rows of A in blocks, so that a block's byte products stay in cache
  // (about 2 MiB) instead of streaming 16 bytes per result through memory;
  // B is packed again per block, a 1/rows share of the work.
  const int64_t width = 2 * N + 1;
  const int64_t block_rows = std::min(M, std::max<int64_t>(96, (int64_t{1} << 18) / width));
  // Byte products of one block and one exact part (<= kMaxExactDepth deep),
  // (2R + 1) x (2N + 1): [[HH, HL, sum Ah], [LH, LL, sum Al], [sum Bh, sum Bl, K]].
  std::unique_ptr<int32_t[]> planes(new int32_t[(2 * block_rows + 1) * width]);
  for (int64_t i0 = 0; i0 < M; i0 += block_rows) {
    const int64_t R = std::min(block_rows, M - i0);
    for (int64_t k0 = 0; k0 < K; k0 += kMaxExactDepth) {
      const int64_t kc = std::min(kMaxExactDepth, K - k0);
      const DepthOffset16A<ReaderA> a_part{a, k0};
      const DepthOffset16B<ReaderB> b_part{b, k0};
      gemm_internal::GemmExact(2 * R + 1, width, kc, StackedRowPlanes<DepthOffset16A<ReaderA>>{a_part, i0, R},
                               SideBySidePlanes<DepthOffset16B<ReaderB>>{b_part, N}, planes.get(), width,
                               parallel_for);
      const int32_t* b_sums = &planes[2 * R * width];
      const bool first_part = k0 == 0;
      parallel_for(R, 8 * N, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int32_t* high = &planes[i * width];
          const int32_t* low = &planes[(R + i) * width];
          // 128 (sum_k a + sum_k b) - 16384 kc, with sum_k v = 256 sum h + sum l + 128 kc.
          const int64_t a_term = 128 * (256 * int64_t{high[2 * N]} + low[2 * N]) + 16384 * kc;
          int64_t* row = c + (i0 + i) * N;
          for (int64_t j = 0; j < N; ++j) {
            const int64_t b_term = 128 * (256 * int64_t{b_sums[j]} + b_sums[N + j]);
            const int64_t part =
                int64_t{high[j]} * 65536 + (int64_t{high[N + j]} + low[j]) * 256 + low[N + j] + a_term + b_term;
            row[j] = first_part ? part : row[j] + part;
          }
        }
      });
    }
  }
  return Status::OK();
}

// Plain int16 matrix product with optional transposes (gemm.h's MatMul).
Status MatMul(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int64_t* out, const ParallelFor& parallel_for);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GEMM16_H_

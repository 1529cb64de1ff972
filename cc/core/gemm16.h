// Exact int16 x int16 -> int64 matrix multiplication (the DFP16 datapath,
// docs/algorithms.md section 16) on the int8 GEMM of gemm.h.
//
// Each int16 value is split into two signed bytes, v = 256 h + l + 128 with
// h = v >> 8 and l = (v & 255) - 128, both in [-128, 127]. With
// v~ = 256 h + l = v - 128,
//   sum_k a b = sum_k a~ b~ + 128 (sum_k a + sum_k b) - 16384 K,
//   sum_k a~ b~ = 65536 (Ah Bh) + 256 (Ah Bl + Al Bh) + Al Bl,
// and the four byte products are one int8 GEMM of A's planes, each row's
// high and low bytes as two rows plus a row of ones ((2M + 1) x K), by
// [Bh, Bl, 1] (K x (2N + 1)), exact in int32 for every depth up to
// kMaxExactDepth, combined in int64. The row and the column of ones give
// the planes' sums, from which sum_k a and sum_k b follow (sum_k a = 256
// sum_k h + sum_k l + 128 K) without another pass over the operands. This is how int16 runs on int8
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
#include "cc/core/gemm16_element.h"

namespace keras_int {

// A row reader over a strided int16 matrix (gemm.h's StridedRows).
using StridedMatrix16 = StridedRows<int16_t>;

namespace gemm16_internal {

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

// The M rows of A from `first` as 2M + 1 byte rows: row 2i is the high
// bytes of A's row first + i, row 2i + 1 its low bytes, row 2M is ones.
template <typename Reader16>
struct InterleavedRowPlanes {
  const Reader16& a;
  int64_t first;
  int64_t M;
  void ReadRow(int64_t i, int64_t k0, int64_t count, int8_t* out) const {
    if (i == 2 * M) {
      std::memset(out, 1, count);
      return;
    }
    ReadPlane(count, i % 2 == 1, out, [&](int64_t t0, int64_t n, int16_t* buffer) {
      a.ReadRow(first + i / 2, k0 + t0, n, buffer);
    });
  }
};

// The quad packing of those rows (found by argument-dependent lookup from
// gemm.h's QuadPacking, and more specialised than its reader template):
// each int16 row is read once for both of its byte rows.
template <typename Reader16>
void PackAQuads(const InterleavedRowPlanes<Reader16>& a, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                uint32_t* dst) {
  using gemm_internal::kMR;
  const int64_t k_quads = (kc + 3) / 4;
  alignas(32) gemm_internal::QuadRows block;
  alignas(32) int16_t values[gemm_internal::kQuadKC];
  for (int r = 0; r < kMR;) {
    const int64_t i = i0 + r;
    if (r >= rows) {
      std::memset(block[r], 0, k_quads * 4);
      ++r;
      continue;
    }
    if (i == 2 * a.M) {
      std::memset(block[r], 1, kc);
      std::memset(block[r] + kc, 0, k_quads * 4 - kc);
      ++r;
      continue;
    }
    a.a.ReadRow(a.first + i / 2, k0, kc, values);
    const bool both = i % 2 == 0 && r + 1 < rows && r + 1 < kMR;  // the low row follows in this block
    if (i % 2 == 0) {
      int8_t* high = block[r];
      for (int64_t t = 0; t < kc; ++t) high[t] = HighByte(values[t]);
      std::memset(high + kc, 0, k_quads * 4 - kc);
    }
    if (i % 2 == 1 || both) {
      int8_t* low = block[i % 2 == 1 ? r : r + 1];
      for (int64_t t = 0; t < kc; ++t) low[t] = LowByteCentred(values[t]);
      std::memset(low + kc, 0, k_quads * 4 - kc);
    }
    r += both ? 2 : 1;
  }
  gemm_internal::QuadsFromRows(block, k_quads, dst);
}

// [Bh, Bl, 1]: columns [0, N) are the high bytes of B's columns, [N, 2N)
// the low ones, and column 2N (when asked for) is ones.
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
      out += low, count -= low;
    }
    if (count > 0) *out = 1;  // column 2N
  }
};

}  // namespace gemm16_internal

// |sum_k a b| <= K * 32767**2 < 2**63 for K below 2**33.
constexpr int64_t kMaxGemm16Depth = (int64_t{1} << 33) - 1;

namespace gemm16_internal {

// Products at most this deep (a first layer's 3x3 taps over 1 or 3
// channels) are computed directly: int32 products (|a b| < 2**30) summed
// in int64, a vector loop over the columns; the byte planes' packing would
// cost more than their products.
constexpr int64_t kShallowDepth = 32;

// c[r, :] = sum_k a[r, k] * b[k, :] for `rows` rows of A (int16, K per
// row) and B as int32 (K x N), in int64 (gemm16.cc).
void ShallowRows(const int16_t* a, int64_t rows, int64_t K, const int32_t* b, int64_t N, int64_t* c);

template <typename ReaderA, typename ReaderB>
void ShallowGemm16(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
                   const ParallelFor& parallel_for) {
  std::vector<int32_t> b_wide(K * N);
  {
    std::vector<int16_t> row(N);
    for (int64_t k = 0; k < K; ++k) {
      b.ReadRow(k, 0, N, row.data());
      std::copy(row.begin(), row.end(), b_wide.begin() + k * N);
    }
  }
  constexpr int64_t kRows = 64;
  parallel_for((M + kRows - 1) / kRows, kRows * N * K, [&](int64_t begin, int64_t end) {
    int16_t rows[kRows * kShallowDepth];
    for (int64_t block = begin; block < end; ++block) {
      const int64_t r0 = block * kRows, count = std::min(kRows, M - r0);
      for (int64_t r = 0; r < count; ++r) a.ReadRow(r0 + r, 0, K, rows + r * K);
      ShallowRows(rows, count, K, b_wide.data(), N, c + r0 * N);
    }
  });
}

}  // namespace gemm16_internal

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
  if (K <= kShallowDepth) {
    ShallowGemm16(M, N, K, a, b, c, parallel_for);
    return Status::OK();
  }
  // The row of ones under A's planes gives B's column sums. A column of
  // ones beside B's gives A's row sums where the last 16-column panel has
  // a spare column; where it has none (2N a multiple of 16) the column
  // would cost a whole panel, and A's rows are summed by a pass of their own.
  const bool ones_column = (2 * N) % gemm_internal::kNR != 0;
  const int64_t width = 2 * N + (ones_column ? 1 : 0);
  // Rows of A in blocks, so that a block's byte products stay in cache
  // (about 2 MiB) instead of streaming 16 bytes per result through memory;
  // B is packed again per block, a 1/rows share of the work.
  const int64_t block_rows = std::min(M, std::max<int64_t>(96, (int64_t{1} << 18) / width));
  // Byte products of one block and one exact part (<= kMaxExactDepth deep),
  // (2R + 1) x width: row 2i is [HH, HL, sum Ah] and row 2i + 1 [LH, LL,
  // sum Al] of A's row i; row 2R is [sum Bh, sum Bl, kc].
  std::unique_ptr<int32_t[]> planes(new int32_t[(2 * block_rows + 1) * width]);
  std::vector<int64_t> a_sums(block_rows), b_sums(N);
  for (int64_t i0 = 0; i0 < M; i0 += block_rows) {
    const int64_t R = std::min(block_rows, M - i0);
    std::fill(a_sums.begin(), a_sums.end(), int64_t{0});
    std::fill(b_sums.begin(), b_sums.end(), int64_t{0});
    if (!ones_column) {
      parallel_for(R, 2 * K, [&](int64_t begin, int64_t end) {
        int16_t buffer[kChunk];
        for (int64_t i = begin; i < end; ++i) {
          int64_t sum = 0;
          for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
            const int64_t n = std::min(kChunk, K - k0);
            a.ReadRow(i0 + i, k0, n, buffer);
            for (int64_t t = 0; t < n; ++t) sum += buffer[t];
          }
          a_sums[i] = sum;
        }
      });
    }
    for (int64_t k0 = 0; k0 < K; k0 += kMaxExactDepth) {
      const int64_t kc = std::min(kMaxExactDepth, K - k0);
      const gemm_internal::DepthOffsetA<ReaderA> a_part{a, k0};
      const gemm_internal::DepthOffsetB<ReaderB> b_part{b, k0};
      gemm_internal::GemmExact(2 * R + 1, width, kc, InterleavedRowPlanes<gemm_internal::DepthOffsetA<ReaderA>>{a_part, i0, R},
                               SideBySidePlanes<gemm_internal::DepthOffsetB<ReaderB>>{b_part, N}, planes.get(), width,
                               parallel_for);
      // sum_k v = 256 sum_k h + sum_k l + 128 kc over this part.
      const int32_t* ones = &planes[2 * R * width];
      for (int64_t j = 0; j < N; ++j) b_sums[j] += 256 * int64_t{ones[j]} + ones[N + j] + 128 * kc;
      if (ones_column) {
        for (int64_t i = 0; i < R; ++i) {
          a_sums[i] += 256 * int64_t{planes[2 * i * width + 2 * N]} + planes[(2 * i + 1) * width + 2 * N] + 128 * kc;
        }
      }
      const bool first_part = k0 == 0;
      parallel_for(R, 8 * N, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int32_t* high = &planes[2 * i * width];
          const int32_t* low = &planes[(2 * i + 1) * width];
          int64_t* row = c + (i0 + i) * N;
          for (int64_t j = 0; j < N; ++j) {
            const int64_t part = int64_t{high[j]} * 65536 + (int64_t{high[N + j]} + low[j]) * 256 + low[N + j];
            row[j] = first_part ? part : row[j] + part;
          }
        }
      });
    }
    // The centring terms over all of K: 128 (sum_k a + sum_k b) - 16384 K.
    parallel_for(R, 2 * N, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t a_term = 128 * a_sums[i] - 16384 * K;
        int64_t* row = c + (i0 + i) * N;
        for (int64_t j = 0; j < N; ++j) row[j] += a_term + 128 * b_sums[j];
      }
    });
  }
  return Status::OK();
}

// rows x cols (row-major) as cols x rows.
std::vector<int16_t> Transposed16(const int16_t* m, int64_t rows, int64_t cols, const ParallelFor& parallel_for);

// Plain int16 matrix product with optional transposes (gemm.h's MatMul).
Status MatMul(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, bool transpose_x,
              bool transpose_w, int64_t* out, const ParallelFor& parallel_for);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_GEMM16_H_

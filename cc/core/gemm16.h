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
// sum_k h + sum_k l + 128 K) without another pass over the operands. An
// operand whose values all fit int8 (Gemm16Widths: an int8 mantissa beside
// a 16-bit one) is one plane, its values, and needs no centring: two byte
// products instead of four. This is how int16 runs on int8
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

// What a plane holds of each int16 value.
enum class Plane { kHigh, kLowCentred, kNarrow };

// E: int8_t for the byte GEMM, int16_t for the pair kernel (every plane
// value lies within int8 either way).
template <typename E>
inline void WritePlane(Plane plane, const int16_t* values, int64_t n, E* out) {
  switch (plane) {
    case Plane::kHigh:
      for (int64_t t = 0; t < n; ++t) out[t] = HighByte(values[t]);
      break;
    case Plane::kLowCentred:
      for (int64_t t = 0; t < n; ++t) out[t] = LowByteCentred(values[t]);
      break;
    case Plane::kNarrow:  // the operand fits int8: the value itself
      for (int64_t t = 0; t < n; ++t) out[t] = static_cast<int8_t>(values[t]);
      break;
  }
}

// Reads `count` int16 values at a time in chunks through a stack buffer and
// writes one plane of them.
constexpr int64_t kChunk = 256;
template <typename E, typename Read>
inline void ReadPlane(int64_t count, Plane plane, E* out, const Read& read) {
  int16_t buffer[kChunk];
  for (int64_t t0 = 0; t0 < count; t0 += kChunk) {
    const int64_t n = std::min(kChunk, count - t0);
    read(t0, n, buffer);
    WritePlane(plane, buffer, n, out + t0);
  }
}

// The M rows of A from `first` as byte rows. Wide (int16 values): 2M + 1
// rows, row 2i the high bytes of A's row first + i, row 2i + 1 its low
// bytes, row 2M ones. Narrow (every value fits int8): M rows, the values.
// Read as int8_t by the byte GEMM, as int16_t by the pair kernel.
template <typename Reader16>
struct InterleavedRowPlanes {
  const Reader16& a;
  int64_t first;
  int64_t M;
  bool wide;
  int64_t rows() const { return wide ? 2 * M + 1 : M; }
  template <typename E>
  void ReadRow(int64_t i, int64_t k0, int64_t count, E* out) const {
    if (wide && i == 2 * M) {
      std::fill(out, out + count, E{1});
      return;
    }
    const Plane plane = !wide ? Plane::kNarrow : i % 2 == 1 ? Plane::kLowCentred : Plane::kHigh;
    ReadPlane(count, plane, out, [&](int64_t t0, int64_t n, int16_t* buffer) {
      a.ReadRow(first + (wide ? i / 2 : i), k0 + t0, n, buffer);
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
  const auto write = [&](Plane plane, int r) {
    WritePlane(plane, values, kc, block[r]);
    std::memset(block[r] + kc, 0, k_quads * 4 - kc);
  };
  for (int r = 0; r < kMR;) {
    const int64_t i = i0 + r;
    if (r >= rows) {
      std::memset(block[r], 0, k_quads * 4);
      ++r;
      continue;
    }
    if (!a.wide) {
      a.a.ReadRow(a.first + i, k0, kc, values);
      write(Plane::kNarrow, r++);
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
    if (i % 2 == 0) write(Plane::kHigh, r);
    if (i % 2 == 1 || both) write(Plane::kLowCentred, i % 2 == 1 ? r : r + 1);
    r += both ? 2 : 1;
  }
  gemm_internal::QuadsFromRows(block, k_quads, dst);
}

// B's columns as byte columns. Wide: [Bh, Bl, 1], columns [0, N) the high
// bytes of B's columns, [N, 2N) the low ones, and column 2N (when asked
// for) ones. Narrow (every value fits int8): the N columns, the values.
template <typename Reader16>
struct SideBySidePlanes {
  const Reader16& b;
  int64_t N;
  bool wide;
  void ReadRow(int64_t k, int64_t j0, int64_t count, int8_t* out) const {
    if (!wide) {
      ReadPlane(count, Plane::kNarrow, out, [&](int64_t t0, int64_t n, int16_t* buffer) { b.ReadRow(k, j0 + t0, n, buffer); });
      return;
    }
    if (j0 < N) {
      const int64_t high = std::min(count, N - j0);
      ReadPlane(high, Plane::kHigh, out, [&](int64_t t0, int64_t n, int16_t* buffer) { b.ReadRow(k, j0 + t0, n, buffer); });
      out += high, j0 += high, count -= high;
    }
    if (j0 < 2 * N && count > 0) {
      const int64_t low = std::min(count, 2 * N - j0);
      ReadPlane(low, Plane::kLowCentred, out,
                [&](int64_t t0, int64_t n, int16_t* buffer) { b.ReadRow(k, j0 - N + t0, n, buffer); });
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
// channels; a 16-bit error times the weights of a layer with 32 outputs)
// are computed directly: int32 products (|a b| < 2**30) summed in int64, or
// in int32 where one operand fits int8 (|a b| <= 32767 * 128 < 2**22, 32 of
// them < 2**27), a vector loop over the columns; the byte planes' packing
// would cost more than their products.
constexpr int64_t kShallowDepth = 32;

// c[r, :] = sum_k a[r, k] * b[k, :] for `rows` rows of A (int16, K per
// row) and B as int32 (K x N), in int64; ShallowRowsNarrow sums in int32,
// for one operand within int8 (gemm16.cc).
void ShallowRows(const int16_t* a, int64_t rows, int64_t K, const int32_t* b, int64_t N, int64_t* c);
void ShallowRowsNarrow(const int16_t* a, int64_t rows, int64_t K, const int32_t* b, int64_t N, int64_t* c);

template <typename ReaderA, typename ReaderB>
void ShallowGemm16(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
                   const ParallelFor& parallel_for, bool one_narrow) {
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
      (one_narrow ? ShallowRowsNarrow : ShallowRows)(rows, count, K, b_wide.data(), N, c + r0 * N);
    }
  });
}

}  // namespace gemm16_internal

// Which operands hold values outside int8. An operand whose values all fit
// int8 (an int8 mantissa widened beside a 16-bit one: a 16-bit error times
// int8 weights or inputs, docs/algorithms.md 5) is one byte plane, the
// values themselves, instead of two: half the byte products.
struct Gemm16Widths {
  bool a_wide = true;
  bool b_wide = true;
};

// Whether every one of the n values lies in [-128, 127].
bool FitsInt8(const int16_t* values, int64_t n, const ParallelFor& parallel_for);

namespace gemm16_internal {

// row[j] (+)= part(j) for the N results of one row.
template <typename Part>
inline void AddParts(int64_t* row, int64_t N, bool first_part, const Part& part) {
  if (first_part) {
    for (int64_t j = 0; j < N; ++j) row[j] = part(j);
  } else {
    for (int64_t j = 0; j < N; ++j) row[j] += part(j);
  }
}

// Where an operand fits int8 and the CPU multiplies int16 pairs (gemm.h's
// pair kernel, no AVX-512 VNNI), the pairs take the other operand's int16
// values as they are: no byte planes. |a b| <= 32767 * 128, so int32 sums
// of up to kMixedPairDepth products are exact (512 * 4194176 < 2**31); the
// parts are summed in int64, split across threads where the result is
// small and the depth large (weight gradients), as gemm.h's depth shards.
constexpr int64_t kMixedPairDepth = gemm_internal::kKC;
static_assert(kMixedPairDepth * 32767 * 128 <= INT32_MAX, "int32 part of mixed int16 x int8 pairs");

template <typename ReaderA, typename ReaderB>
void MixedPairsGemm(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
                    const ParallelFor& parallel_for) {
  using namespace gemm_internal;
  const PairPackingOf<int16_t> packing{SelectedMicroKernel()};
  const int64_t parts = (K + kMixedPairDepth - 1) / kMixedPairDepth;
  const int64_t shards = M * N <= kDepthShardMaxOutputs ? std::min(parts, kDepthShards) : 1;
  // Shard s sums parts [s * parts / shards, (s + 1) * parts / shards) into `total`.
  const auto sum_parts = [&](int64_t shard, int64_t* total, const ParallelFor& inner) {
    std::vector<int32_t> part(M * N);
    for (int64_t p = shard * parts / shards; p < (shard + 1) * parts / shards; ++p) {
      const int64_t k0 = p * kMixedPairDepth, kc = std::min(kMixedPairDepth, K - k0);
      GemmBlocks(packing, M, N, 0, kc, DepthOffsetA<ReaderA>{a, k0}, DepthOffsetB<ReaderB>{b, k0}, part.data(), N,
                 inner);
      const bool first = p == shard * parts / shards;
      for (int64_t t = 0; t < M * N; ++t) total[t] = first ? part[t] : total[t] + part[t];
    }
  };
  if (shards == 1) {
    sum_parts(0, c, parallel_for);
    return;
  }
  std::vector<int64_t> totals(shards * M * N);
  parallel_for(shards, M * N * K / shards, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) sum_parts(s, &totals[s * M * N], SerialFor);
  });
  for (int64_t t = 0; t < M * N; ++t) {
    int64_t sum = 0;
    for (int64_t s = 0; s < shards; ++s) sum += totals[s * M * N + t];
    c[t] = sum;
  }
}

// Both operands 16-bit, on the pair kernel: only A is split into byte
// planes, whose values (within int8) multiply B's int16 values directly,
// MixedPairsGemm's products: sum_k a b = 256 (Ah B) + (Al~ B) + 128 sum_k b,
// two products instead of the byte planes' four. Rows of A in blocks, so
// that a block's int64 plane products stay in cache.
template <typename ReaderA, typename ReaderB>
void SplitRowsPairsGemm(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
                        const ParallelFor& parallel_for) {
  const int64_t block_rows = std::min(M, std::max<int64_t>(96, (int64_t{1} << 17) / N));
  std::vector<int64_t> planes((2 * block_rows + 1) * N);
  for (int64_t i0 = 0; i0 < M; i0 += block_rows) {
    const int64_t R = std::min(block_rows, M - i0);
    MixedPairsGemm(2 * R + 1, N, K, InterleavedRowPlanes<ReaderA>{a, i0, R, true}, b, planes.data(), parallel_for);
    const int64_t* ones = &planes[2 * R * N];  // sum_k b per column
    parallel_for(R, 4 * N, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t* high = &planes[2 * i * N];
        const int64_t* low = high + N;
        int64_t* row = c + (i0 + i) * N;
        for (int64_t j = 0; j < N; ++j) row[j] = 256 * high[j] + low[j] + 128 * ones[j];
      }
    });
  }
}

// The byte planes' products (K >= 1), all of A's rows in blocks.
template <typename ReaderA, typename ReaderB>
void BytePlanesGemm16(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
                      const ParallelFor& parallel_for, Gemm16Widths widths) {
  const bool wide_a = widths.a_wide, wide_b = widths.b_wide;
  // A wide value is a~ + 128 (a~ = 256 h + l), a narrow one itself: with
  // c_a, c_b the centrings (128 or 0), sum_k a b = sum_k a~ b~ + c_a sum_k b
  // + c_b sum_k a - c_a c_b K. The row of ones under wide A's planes gives
  // B's column sums. A column of ones beside wide B's gives A's row sums
  // where the last 16-column panel has a spare column; where it has none
  // (2N a multiple of 16) the column would cost a whole panel, and A's rows
  // are summed by a pass of their own.
  const int64_t a_planes = wide_a ? 2 : 1, b_planes = wide_b ? 2 : 1;
  const int64_t a_centre = wide_a ? 128 : 0, b_centre = wide_b ? 128 : 0;
  const bool ones_column = wide_b && (2 * N) % gemm_internal::kNR != 0;
  const int64_t width = b_planes * N + (ones_column ? 1 : 0);
  // Rows of A in blocks, so that a block's byte products stay in cache
  // (about 2 MiB) instead of streaming 16 bytes per result through memory;
  // B is packed again per block, a 1/rows share of the work.
  const int64_t block_rows = std::min(M, std::max<int64_t>(96, (int64_t{1} << 18) / width));
  // Byte products of one block and one exact part (<= kMaxExactDepth deep),
  // (a_planes R + 1) x width. Both wide: row 2i is [HH, HL, sum Ah] and row
  // 2i + 1 [LH, LL, sum Al] of A's row i; row 2R is [sum Bh, sum Bl, kc].
  std::unique_ptr<int32_t[]> planes(new int32_t[(a_planes * block_rows + 1) * width]);
  std::vector<int64_t> a_sums(block_rows), b_sums(N);
  for (int64_t i0 = 0; i0 < M; i0 += block_rows) {
    const int64_t R = std::min(block_rows, M - i0);
    std::fill(a_sums.begin(), a_sums.end(), int64_t{0});
    std::fill(b_sums.begin(), b_sums.end(), int64_t{0});
    if (wide_b && !ones_column) {
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
      const InterleavedRowPlanes<gemm_internal::DepthOffsetA<ReaderA>> a_rows{a_part, i0, R, wide_a};
      gemm_internal::GemmExact(a_rows.rows(), width, kc, a_rows,
                               SideBySidePlanes<gemm_internal::DepthOffsetB<ReaderB>>{b_part, N, wide_b}, planes.get(),
                               width, parallel_for);
      // A wide value's sum over this part is 256 sum_k h + sum_k l + 128 kc.
      if (wide_a) {
        const int32_t* ones = &planes[2 * R * width];
        for (int64_t j = 0; j < N; ++j) {
          b_sums[j] += wide_b ? 256 * int64_t{ones[j]} + ones[N + j] + 128 * kc : int64_t{ones[j]};
        }
      }
      if (ones_column) {
        for (int64_t i = 0; i < R; ++i) {
          a_sums[i] += wide_a ? 256 * int64_t{planes[2 * i * width + 2 * N]} + planes[(2 * i + 1) * width + 2 * N] +
                                    128 * kc
                              : int64_t{planes[i * width + 2 * N]};
        }
      }
      const bool first_part = k0 == 0;
      parallel_for(R, 8 * N, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          int64_t* row = c + (i0 + i) * N;
          const int32_t* high = &planes[a_planes * i * width];  // a narrow A's one row
          const int32_t* low = high + width;
          if (wide_a && wide_b) {
            AddParts(row, N, first_part, [&](int64_t j) {
              return int64_t{high[j]} * 65536 + (int64_t{high[N + j]} + low[j]) * 256 + low[N + j];
            });
          } else if (wide_a) {
            AddParts(row, N, first_part, [&](int64_t j) { return int64_t{high[j]} * 256 + low[j]; });
          } else if (wide_b) {
            AddParts(row, N, first_part, [&](int64_t j) { return int64_t{high[j]} * 256 + high[N + j]; });
          } else {
            AddParts(row, N, first_part, [&](int64_t j) { return int64_t{high[j]}; });
          }
        }
      });
    }
    // The centring terms over all of K: c_b sum_k a + c_a sum_k b - c_a c_b K.
    if (wide_a || wide_b) {
      parallel_for(R, 2 * N, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t a_term = b_centre * a_sums[i] - a_centre * b_centre * K;
          int64_t* row = c + (i0 + i) * N;
          for (int64_t j = 0; j < N; ++j) row[j] += a_term + a_centre * b_sums[j];
        }
      });
    }
  }
}

}  // namespace gemm16_internal

// C (M x N, row-major, int64) = A (M x K) * B (K x N), int16 operands, exact.
// Where the CPU multiplies int16 pairs (no VNNI): an operand within int8
// as it is, else A's rows split into two byte planes; with VNNI the byte
// planes of both (one for an operand within int8). Products at most 32
// deep directly, unless the pairs take them as they are.
template <typename ReaderA, typename ReaderB>
Status Gemm16(int64_t M, int64_t N, int64_t K, const ReaderA& a, const ReaderB& b, int64_t* c,
              const ParallelFor& parallel_for, Gemm16Widths widths = {}) {
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
  const bool one_narrow = !widths.a_wide || !widths.b_wide;
  const bool pairs = gemm_internal::SelectedQuadKernel() == nullptr;
  if (one_narrow && pairs) {
    MixedPairsGemm(M, N, K, a, b, c, parallel_for);
  } else if (K <= kShallowDepth) {
    ShallowGemm16(M, N, K, a, b, c, parallel_for, one_narrow);
  } else if (pairs) {
    SplitRowsPairsGemm(M, N, K, a, b, c, parallel_for);
  } else {
    BytePlanesGemm16(M, N, K, a, b, c, parallel_for, widths);
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

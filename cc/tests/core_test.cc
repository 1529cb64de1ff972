// Tests of the TensorFlow-free core against plain loops, meant to run under
// AddressSanitizer and UndefinedBehaviorSanitizer (`bazel test --config=asan
// //cc:core_test`): random and edge-case shapes exercise every packing,
// edge-tile and blocking path of the GEMM and the convolution readers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "cc/core/add.h"
#include "cc/core/conv.h"
#include "cc/core/cross_entropy.h"
#include "cc/core/dfp.h"
#include "cc/core/gemm.h"
#include "cc/core/gemm16.h"
#include "cc/core/index_split.h"
#include "cc/core/layer_norm.h"
#include "cc/core/norm_element.h"
#include "cc/core/norm_rows.h"
#include "cc/core/pool.h"
#include "cc/core/relu.h"
#include "cc/core/sgd.h"
#include "cc/core/softmax.h"
#include "cc/core/softmax_element.h"

namespace keras_int {
namespace {

int failures = 0;
int checks = 0;

#define EXPECT(cond, ...)                                  \
  do {                                                     \
    ++checks;                                              \
    if (!(cond)) {                                         \
      ++failures;                                          \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                   \
      std::fprintf(stderr, "\n");                          \
    }                                                      \
  } while (0)

std::mt19937 rng(42);

template <typename T>
std::vector<T> RandomInts(int64_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}
std::vector<int8_t> RandomInt8(int64_t n, int lo = -128, int hi = 127) { return RandomInts<int8_t>(n, lo, hi); }
std::vector<int16_t> RandomInt16(int64_t n, int lo = -32767, int hi = 32767) { return RandomInts<int16_t>(n, lo, hi); }

void TestMatMul() {
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 2}, {6, 16, 512}, {7, 17, 513}, {13, 33, 1000},
                               {97, 65, 511}, {0, 4, 3}, {3, 0, 5}, {4, 5, 0}, {2, 3, 131071 + 7},
                               {40, 50, 5000},   // depth split across threads
                               {300, 10, 64}};   // a dense weight gradient: x^T err computed as (err^T x)^T
  for (const auto& s : shapes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    for (int t = 0; t < 4; ++t) {
      const bool tx = t & 1, tw = t & 2;
      auto x = RandomInt8(M * K), w = RandomInt8(K * N);
      std::vector<int32_t> out(M * N, -1);
      Status status = MatMul(x.data(), w.data(), M, N, K, tx, tw, out.data(), SerialFor);
      EXPECT(status.ok(), "matmul %ld %ld %ld: %s", (long)M, (long)N, (long)K, status.message().c_str());
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          int64_t want = 0;
          for (int64_t k = 0; k < K; ++k) {
            want += int64_t{x[tx ? k * M + i : i * K + k]} * w[tw ? j * K + k : k * N + j];
          }
          if (out[i * N + j] != want) {
            EXPECT(false, "matmul %ldx%ldx%ld t=%d at (%ld, %ld): %d != %ld", (long)M, (long)N,
                   (long)K, t, (long)i, (long)j, out[i * N + j], (long)want);
            return;
          }
        }
      }
    }
  }
  // One past the exact depth with every product at 2**14: an error, not a wrap.
  const int64_t K = kMaxExactDepth + 1;
  std::vector<int8_t> x(K, -128), w(K, -128);
  std::vector<int32_t> out(1);
  EXPECT(!MatMul(x.data(), w.data(), 1, 1, K, false, false, out.data(), SerialFor).ok(),
         "overflow must be reported");
  std::vector<int8_t> x2(2 * K, -128);
  std::vector<int32_t> out2(2);
  EXPECT(!MatMul(x2.data(), w.data(), 2, 1, K, true, false, out2.data(), SerialFor).ok(),
         "overflow must be reported (transposed x, few columns)");
}

// Every micro-kernel the CPU can run gives the portable kernel's tile, on
// full-range packed panels, fresh and accumulating.
void TestMicroKernels() {
  using namespace gemm_internal;
  const bool has_avx2 = __builtin_cpu_supports("avx2");
  for (const int64_t k_pairs : {1, 7, 256}) {
    std::vector<int16_t> a(k_pairs * 2 * kMR), b(k_pairs * 2 * kNR);
    for (auto& v : a) v = static_cast<int16_t>(std::uniform_int_distribution<int>(-128, 127)(rng));
    for (auto& v : b) v = static_cast<int16_t>(std::uniform_int_distribution<int>(-128, 127)(rng));
    const int64_t ldc = kNR + 3;
    std::vector<int32_t> start(kMR * ldc);
    for (auto& v : start) v = std::uniform_int_distribution<int>(-1000, 1000)(rng);
    for (const bool accumulate : {false, true}) {
      std::vector<int32_t> want = start, got = start;
      MicroKernelPortable(k_pairs, a.data(), b.data(), want.data(), ldc, accumulate);
      if (!has_avx2) continue;
      MicroKernelAvx2(k_pairs, a.data(), b.data(), got.data(), ldc, accumulate);
      EXPECT(got == want, "avx2 micro-kernel differs (k_pairs %ld, accumulate %d)", (long)k_pairs, accumulate);
    }
  }
}

// The quad packing and kernel (where the CPU has AVX-512 VNNI): a 6 x 16 tile
// of a full-range product, with odd depths, against plain loops.
void TestQuadKernel() {
  using namespace gemm_internal;
  if (SelectedQuadKernel() == nullptr) return;
  for (const int64_t K : {1, 3, 4, 9, 511, 1023, 1024}) {
    auto a = RandomInt8(kMR * K), b = RandomInt8(K * kNR);
    a[0] = b[0] = -128;
    std::vector<uint32_t> a_packed(kQuadKC / 4 * kMR), b_packed(kQuadKC / 4 * kNR);
    std::vector<int8_t> rows(4 * kNR, 0);
    const int64_t quads = (K + 3) / 4;
    PackAQuads(StridedMatrix{a.data(), K, 1}, 0, kMR, 0, K, a_packed.data());
    PackBQuads(StridedMatrix{b.data(), kNR, 1}, kNR, 1, 0, K, 0, quads, rows.data(), kNR * kQuadKC / 4,
               b_packed.data());
    std::vector<int32_t> correction(kNR);
    QuadPacking{QuadKernelAvx512Vnni}.Corrections(b_packed.data(), 1, quads, kNR * kQuadKC / 4, correction.data());
    for (const bool accumulate : {false, true}) {
      std::vector<int32_t> c(kMR * kNR, 5);
      QuadKernelAvx512Vnni(quads, a_packed.data(), b_packed.data(), correction.data(), c.data(), kNR, accumulate);
      for (int r = 0; r < kMR; ++r) {
        for (int j = 0; j < kNR; ++j) {
          int64_t want = accumulate ? 5 : 0;
          for (int64_t k = 0; k < K; ++k) want += int64_t{a[r * K + k]} * b[k * kNR + j];
          EXPECT(c[r * kNR + j] == want, "quad kernel K=%ld (%d, %d): %d vs %ld", (long)K, r, j,
                 c[r * kNR + j], (long)want);
        }
      }
    }
  }
}

void TestConv() {
  struct Case { int64_t n, h, w, c, kh, kw, o, sh, sw, dh, dw; bool same; };
  const Case cases[] = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, false}, {2, 7, 6, 3, 3, 3, 5, 2, 2, 1, 1, true},
                        {2, 7, 6, 3, 3, 3, 5, 2, 2, 1, 1, false}, {1, 9, 8, 17, 3, 2, 7, 3, 1, 1, 1, true},
                        {2, 10, 11, 2, 3, 3, 4, 1, 1, 2, 2, true}, {1, 4, 4, 3, 4, 4, 2, 1, 1, 1, 1, true},
                        {0, 5, 5, 2, 3, 3, 2, 1, 1, 1, 1, true},
                        // Short filter rows (the direct path on AVX-512 VNNI): LeNet's first
                        // layer, channel tails, 16-byte rows, dilation along h, strides.
                        {2, 28, 28, 1, 3, 3, 32, 1, 1, 1, 1, true}, {1, 9, 10, 3, 3, 3, 40, 1, 1, 1, 1, true},
                        {1, 8, 9, 1, 5, 5, 70, 2, 3, 1, 1, false}, {1, 6, 9, 4, 3, 4, 17, 1, 1, 1, 1, true},
                        {1, 11, 7, 2, 3, 3, 16, 1, 2, 3, 1, true}, {1, 7, 7, 8, 2, 2, 3, 1, 1, 1, 1, false},
                        // ... and its filter gradient (at most 16 taps): strides (gathered
                        // patches), channel tails, rows not a multiple of four pixels.
                        {3, 9, 13, 1, 3, 3, 40, 1, 2, 1, 1, true}, {2, 10, 9, 2, 2, 2, 17, 2, 1, 2, 1, false},
                        {1, 12, 11, 1, 4, 4, 5, 1, 1, 1, 1, true}, {2, 5, 6, 4, 2, 2, 33, 1, 1, 1, 1, true},
                        // backprop-input deeper than a packed block (its reader starts mid-row)
                        {1, 5, 6, 2, 3, 3, 130, 1, 1, 1, 1, true}, {1, 7, 5, 2, 3, 3, 130, 2, 1, 2, 1, false},
                        // backprop-input by stride phase: stride and dilation on one axis,
                        // strides beyond the kernel (phases no tap reaches: zeros), a ResNet
                        // downsampling layer (even input, SAME: pad_top 0)
                        {2, 11, 9, 5, 3, 3, 4, 2, 2, 2, 2, true}, {1, 7, 8, 3, 1, 1, 2, 3, 2, 1, 1, true},
                        {1, 9, 9, 3, 2, 2, 3, 3, 3, 1, 1, false}, {2, 8, 8, 16, 3, 3, 32, 2, 2, 1, 1, true},
                        {1, 4, 6, 3, 3, 3, 2, int64_t{1} << 30, int64_t{1} << 30, 1, 1, true}};  // one phase per pixel, not per residue
  for (const Case& c : cases) {
    Conv2DGeometry g{c.n, c.h, c.w, c.c, c.kh, c.kw, c.o, c.sh, c.sw, c.dh, c.dw, 0, 0, 0, 0};
    EXPECT(ComputeConv2DGeometry(c.same, &g).ok(), "geometry");
    auto x = RandomInt8(g.batch * g.in_h * g.in_w * g.in_c);
    auto w = RandomInt8(g.k_h * g.k_w * g.in_c * g.out_c);
    if (c.o == 32) {  // the extremes: -128 * -128 everywhere but a few 127s
      for (size_t i = 0; i < x.size(); ++i) x[i] = i % 7 ? -128 : 127;
      for (size_t i = 0; i < w.size(); ++i) w[i] = i % 5 ? -128 : 127;
    }
    auto dy = RandomInt8(g.batch * g.out_h * g.out_w * g.out_c);
    std::vector<int32_t> y(dy.size()), dx(x.size(), 12345), dw(w.size());  // dx: every element must be written
    EXPECT(Conv2D(g, x.data(), w.data(), y.data(), SerialFor).ok(), "conv");
    EXPECT(Conv2DBackpropInput(g, w.data(), dy.data(), dx.data(), SerialFor).ok(), "bwd input");
    EXPECT(Conv2DBackpropFilter(g, x.data(), dy.data(), dw.data(), SerialFor).ok(), "bwd filter");
    std::vector<int64_t> want_y(y.size(), 0), want_dx(dx.size(), 0), want_dw(dw.size(), 0);
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          for (int64_t kh = 0; kh < g.k_h; ++kh)
            for (int64_t kw = 0; kw < g.k_w; ++kw) {
              const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
              const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
              if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
              for (int64_t ci = 0; ci < g.in_c; ++ci)
                for (int64_t o = 0; o < g.out_c; ++o) {
                  const int64_t xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + ci;
                  const int64_t wi = ((kh * g.k_w + kw) * g.in_c + ci) * g.out_c + o;
                  const int64_t yi = ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o;
                  want_y[yi] += int64_t{x[xi]} * w[wi];
                  want_dx[xi] += int64_t{dy[yi]} * w[wi];
                  want_dw[wi] += int64_t{x[xi]} * dy[yi];
                }
            }
    bool same_y = true, same_dx = true, same_dw = true;
    for (size_t i = 0; i < y.size(); ++i) same_y &= y[i] == want_y[i];
    for (size_t i = 0; i < dx.size(); ++i) same_dx &= dx[i] == want_dx[i];
    for (size_t i = 0; i < dw.size(); ++i) same_dw &= dw[i] == want_dw[i];
    EXPECT(same_y && same_dx && same_dw, "conv case %ldx%ldx%ldx%ld k%ldx%ld s%ld: %d %d %d",
           (long)c.n, (long)c.h, (long)c.w, (long)c.c, (long)c.kh, (long)c.kw, (long)c.sh, same_y,
           same_dx, same_dw);
  }
  // A filter gradient over more pixels than one exact int32 sum allows, every
  // product 2**14: an error, not a wrap-around (both paths).
  Conv2DGeometry g{1, 363, 363, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  EXPECT(ComputeConv2DGeometry(false, &g).ok(), "geometry");
  std::vector<int8_t> x(363 * 363, -128), dy(363 * 363, -128);
  std::vector<int32_t> dw(1);
  EXPECT(!Conv2DBackpropFilter(g, x.data(), dy.data(), dw.data(), SerialFor).ok(),
         "filter gradient overflow must be reported");
  dy[0] = 0;
  for (size_t i = 1; i < dy.size(); i += 2) dy[i] = 127;  // now it fits: sum of +-2**14-ish terms
  EXPECT(Conv2DBackpropFilter(g, x.data(), dy.data(), dw.data(), SerialFor).ok(), "filter gradient in range");
  int64_t want = 0;
  for (size_t i = 0; i < x.size(); ++i) want += int64_t{x[i]} * dy[i];
  EXPECT(dw[0] == want, "filter gradient over 131769 pixels: %d != %ld", dw[0], (long)want);
}

// Each of the int16 GEMM's paths on its own, whichever the CPU selects:
// the byte planes (one plane for an operand within int8), the direct
// shallow loop, A's byte planes against B's int16 values on the pair
// kernel, and the int16 pairs with one operand within int8 (int32 parts
// of 512 depths, sharded over the depth for small results).
void TestGemm16Paths() {
  using namespace gemm16_internal;
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 9}, {13, 17, 32}, {9, 33, 33}, {20, 16, 600},
                               {6, 48, 1100}, {3, 4, 5000}, {130, 70, 40}};
  for (const auto& s : shapes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    for (int narrow = 0; narrow < 4; ++narrow) {
      for (const bool extreme : {false, true}) {
        const int16_t a_max = narrow & 1 ? 127 : 32767, a_min = narrow & 1 ? -128 : -32767;
        const int16_t b_max = narrow & 2 ? 127 : 32767, b_min = narrow & 2 ? -128 : -32767;
        auto a = RandomInt16(M * K, a_min, a_max), b = RandomInt16(K * N, b_min, b_max);
        if (extreme) {
          for (size_t i = 0; i < a.size(); ++i) a[i] = i % 4 ? a_min : a_max;
          for (size_t i = 0; i < b.size(); ++i) b[i] = i % 3 ? b_min : b_max;
        }
        std::vector<int64_t> want(M * N, 0);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < N; ++j) want[i * N + j] += int64_t{a[i * K + k]} * b[k * N + j];
        const StridedMatrix16 ra{a.data(), K, 1}, rb{b.data(), N, 1};
        const Gemm16Widths widths{!(narrow & 1), !(narrow & 2)};
        std::vector<int64_t> out(M * N, -1);
        BytePlanesGemm16(M, N, K, ra, rb, out.data(), SerialFor, widths);
        EXPECT(out == want, "byte planes %ldx%ldx%ld narrow=%d extreme=%d", (long)M, (long)N, (long)K, narrow, extreme);
        if (K <= kShallowDepth) {
          std::fill(out.begin(), out.end(), -1);
          ShallowGemm16(M, N, K, ra, rb, out.data(), SerialFor, narrow != 0);
          EXPECT(out == want, "shallow %ldx%ldx%ld narrow=%d", (long)M, (long)N, (long)K, narrow);
        }
        std::fill(out.begin(), out.end(), -1);
        SplitRowsPairsGemm(M, N, K, ra, rb, out.data(), SerialFor);
        EXPECT(out == want, "split rows on pairs %ldx%ldx%ld narrow=%d extreme=%d", (long)M, (long)N, (long)K, narrow,
               extreme);
        if (narrow != 0) {
          std::fill(out.begin(), out.end(), -1);
          MixedPairsGemm(M, N, K, ra, rb, out.data(), SerialFor);
          EXPECT(out == want, "int16 pairs %ldx%ldx%ld narrow=%d extreme=%d", (long)M, (long)N, (long)K, narrow,
                 extreme);
        }
      }
    }
  }
}

// The DFP16 GEMM (byte planes on the int8 GEMM) and convolutions against
// int64 loops: random and all-extreme operands, depths past one exact int32
// part, transposes, and a product that overflows int32 many times over.
void TestDfp16() {
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 2}, {7, 17, 513}, {13, 33, 1000}, {0, 4, 3}, {4, 5, 0},
                               {2, 3, 131071 + 9}, {40, 50, 5000}, {300, 10, 64},
                               {1000, 300, 70}, {2100, 130, 5}};  // several row blocks
  for (const auto& s : shapes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    // t: the transposes (t = 3: all extremes); narrow: which operands fit
    // int8 (one byte plane in the GEMM), their extremes -128 and 127.
    for (int t = 0; t < 4; ++t) for (int narrow = 0; narrow < 4; ++narrow) {
      const bool tx = t & 1, tw = t & 2;
      const int16_t x_max = narrow & 1 ? 127 : 32767, x_min = narrow & 1 ? -128 : -32767;
      const int16_t w_max = narrow & 2 ? 127 : 32767, w_min = narrow & 2 ? -128 : -32767;
      auto x = RandomInt16(M * K, x_min, x_max), w = RandomInt16(K * N, w_min, w_max);
      if (t == 3) {
        for (size_t i = 0; i < x.size(); ++i) x[i] = i % 3 ? x_min : x_max;
        for (size_t i = 0; i < w.size(); ++i) w[i] = i % 5 ? w_min : w_max;
      }
      std::vector<int64_t> out(M * N, -1);
      Status status = MatMul(x.data(), w.data(), M, N, K, tx, tw, out.data(), SerialFor);
      EXPECT(status.ok(), "matmul16 %ld %ld %ld: %s", (long)M, (long)N, (long)K, status.message().c_str());
      bool same = true;
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          int64_t want = 0;
          for (int64_t k = 0; k < K; ++k) want += int64_t{x[tx ? k * M + i : i * K + k]} * w[tw ? j * K + k : k * N + j];
          same &= out[i * N + j] == want;
        }
      }
      EXPECT(same, "matmul16 %ldx%ldx%ld t=%d narrow=%d", (long)M, (long)N, (long)K, t, narrow);
    }
  }
  // 32767**2 * 300000 ~ 2**48: far outside int32, exact in int64.
  {
    const int64_t K = 300000;
    std::vector<int16_t> x(K, 32767), w(K, -32767);
    std::vector<int64_t> out(1);
    EXPECT(MatMul(x.data(), w.data(), 1, 1, K, false, false, out.data(), SerialFor).ok() &&
               out[0] == -int64_t{32767} * 32767 * K,
           "matmul16 deep extreme: %ld", (long)out[0]);
  }
  // One value just outside int8 (128, -129) in an otherwise narrow operand
  // makes it wide: the one-plane form would wrap it.
  for (const int16_t outlier : {int16_t{128}, int16_t{-129}, int16_t{127}, int16_t{-128}}) {
    const int64_t M = 9, N = 7, K = 300;
    auto x = RandomInt16(M * K, -128, 127), w = RandomInt16(K * N, -128, 127);
    x[M * K / 2] = outlier, w[K * N - 1] = outlier;
    std::vector<int64_t> out(M * N);
    EXPECT(MatMul(x.data(), w.data(), M, N, K, false, false, out.data(), SerialFor).ok(), "matmul16 outlier");
    bool same = true;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        int64_t want = 0;
        for (int64_t k = 0; k < K; ++k) want += int64_t{x[i * K + k]} * w[k * N + j];
        same &= out[i * N + j] == want;
      }
    EXPECT(same, "matmul16 with one value %d", outlier);
    EXPECT(FitsInt8(x.data(), M * K, SerialFor) == (outlier >= -128 && outlier <= 127), "FitsInt8 %d", outlier);
  }
  struct Case { int64_t n, h, w, c, kh, kw, o, sh, sw; bool same; };
  const Case cases[] = {{2, 7, 6, 3, 3, 3, 5, 2, 2, true}, {1, 9, 8, 17, 3, 2, 7, 3, 1, false},
                        {2, 12, 12, 1, 5, 5, 6, 1, 1, false}, {1, 5, 6, 2, 3, 3, 130, 1, 1, true},
                        {1, 7, 8, 3, 1, 1, 2, 3, 2, true}};  // stride phases no tap reaches
  for (const Case& c : cases) for (int narrow = 0; narrow < 4; ++narrow) {
    Conv2DGeometry g{c.n, c.h, c.w, c.c, c.kh, c.kw, c.o, c.sh, c.sw, 1, 1, 0, 0, 0, 0};
    EXPECT(ComputeConv2DGeometry(c.same, &g).ok(), "geometry");
    // narrow 1: x and w fit int8 beside a 16-bit dy (a 16-bit error into an
    // int8 layer); 2: dy fits beside 16-bit x and w; 3: all three fit.
    const int xw = narrow & 1 ? 128 : 32767, e = narrow & 2 ? 128 : 32767;
    auto x = RandomInt16(g.batch * g.in_h * g.in_w * g.in_c, -xw, xw - (narrow & 1));
    auto w = RandomInt16(g.k_h * g.k_w * g.in_c * g.out_c, -xw, xw - (narrow & 1));
    auto dy = RandomInt16(g.batch * g.out_h * g.out_w * g.out_c, -e, e - (narrow & 2 ? 1 : 0));
    std::vector<int64_t> y(dy.size()), dx(x.size(), 12345), dw(w.size());  // dx: every element must be written
    EXPECT(Conv2D(g, x.data(), w.data(), y.data(), SerialFor).ok(), "conv16");
    EXPECT(Conv2DBackpropInput(g, w.data(), dy.data(), dx.data(), SerialFor).ok(), "conv16 bwd input");
    EXPECT(Conv2DBackpropFilter(g, x.data(), dy.data(), dw.data(), SerialFor).ok(), "conv16 bwd filter");
    std::vector<int64_t> want_y(y.size(), 0), want_dx(dx.size(), 0), want_dw(dw.size(), 0);
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          for (int64_t kh = 0; kh < g.k_h; ++kh)
            for (int64_t kw = 0; kw < g.k_w; ++kw) {
              const int64_t ih = oh * g.stride_h - g.pad_top + kh, iw = ow * g.stride_w - g.pad_left + kw;
              if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
              for (int64_t ci = 0; ci < g.in_c; ++ci)
                for (int64_t o = 0; o < g.out_c; ++o) {
                  const int64_t xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + ci;
                  const int64_t wi = ((kh * g.k_w + kw) * g.in_c + ci) * g.out_c + o;
                  const int64_t yi = ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o;
                  want_y[yi] += int64_t{x[xi]} * w[wi];
                  want_dx[xi] += int64_t{dy[yi]} * w[wi];
                  want_dw[wi] += int64_t{x[xi]} * dy[yi];
                }
            }
    EXPECT(y == want_y && dx == want_dx && dw == want_dw, "conv16 case %ldx%ldx%ldx%ld k%ldx%ld narrow=%d",
           (long)c.n, (long)c.h, (long)c.w, (long)c.c, (long)c.kh, (long)c.kw, narrow);
  }
  // Requantize from int64: 16-bit results within one unit, exponents from the bit length.
  const Rounding modes[] = {Rounding::kNearest, Rounding::kPseudoStochastic, Rounding::kStochastic,
                            Rounding::kTruncate};
  std::vector<int64_t> acc = {0, 1, -1, INT64_C(1) << 46, -(INT64_C(1) << 46) + 3};
  std::uniform_int_distribution<int64_t> d(-(INT64_C(1) << 46), INT64_C(1) << 46);
  for (int i = 0; i < 1000; ++i) acc.push_back(d(rng));
  for (Rounding mode : modes) {
    std::vector<int16_t> q(acc.size());
    std::vector<float> carrier(acc.size());
    int e = 0, e_carrier = 0;
    EXPECT(Requantize<int16_t>(acc.data(), acc.size(), -60, mode, RoundingSeed{3, 4}, q.data(), &e, SerialFor).ok(),
           "requantize64");
    EXPECT(RequantizeToCarrier(acc.data(), acc.size(), -60, mode, RoundingSeed{3, 4}, carrier.data(), &e_carrier,
                               SerialFor, 16).ok(), "requantize64 to carrier");
    EXPECT(e == -60 + 32 && e_carrier == e, "exponent of a 47-bit int64 tensor at 16 bits: %d", e);
    bool ok = true;
    for (size_t i = 0; i < acc.size(); ++i) {
      const double exact = static_cast<double>(acc[i]) / 4294967296.0;  // 2**32
      ok &= q[i] >= -32767 && q[i] <= 32767 && std::abs(q[i] - exact) <= 1.0;
      ok &= carrier[i] == static_cast<float>(q[i]) * 0x1p-28f;
    }
    EXPECT(ok, "requantize64 values");
  }
}

// An int64 accumulator whose largest magnitude fits int32 (bit length 31)
// is rounded in int32 arithmetic, one of 2**31 (bit length 32) in int64:
// both give round_shift's definition (RoundShift64, clipped) in every mode,
// for int8, int16 and carrier outputs, on one thread and in shards of 3.
void TestRequantizeInt64Widths() {
  const ParallelFor serial = SerialFor;
  const ParallelFor threes = [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    for (int64_t i = 0; i < n; i += 3) fn(i, std::min(n, i + 3));
  };
  const RoundingSeed seed{5, 6};
  for (const int64_t top : {INT64_C(0x7FFFFFFF), INT64_C(0x80000000), INT64_C(1) << 20}) {
    std::uniform_int_distribution<int64_t> d(-top, top);
    std::vector<int64_t> acc = {top, -top, 0, 1, -1};
    for (int i = 0; i < 300; ++i) acc.push_back(d(rng));
    const int64_t n = static_cast<int64_t>(acc.size());
    const int bit_length = BitLength64(static_cast<uint64_t>(top));
    for (Rounding mode : {Rounding::kNearest, Rounding::kPseudoStochastic, Rounding::kStochastic,
                          Rounding::kTruncate}) {
      for (const ParallelFor* pf : {&serial, &threes}) {
        for (const int bits : {8, 16}) {
          const int s = bit_length - (bits - 1);
          std::vector<int8_t> q8(n);
          std::vector<int16_t> q16(n);
          std::vector<float> carrier(n);
          int e = 0, e_carrier = 0;
          const bool ran = (bits == 8 ? Requantize<int8_t>(acc.data(), n, -9, mode, seed, q8.data(), &e, *pf)
                                      : Requantize<int16_t>(acc.data(), n, -9, mode, seed, q16.data(), &e, *pf))
                               .ok() &&
                           RequantizeToCarrier(acc.data(), n, -9, mode, seed, carrier.data(), &e_carrier, *pf, bits)
                               .ok();
          bool same = ran && e == -9 + s && e_carrier == e;
          for (int64_t i = 0; i < n && same; ++i) {
            const int64_t want = Clip64(RoundShift64(acc[i], s, mode, RandomWordFor(mode, seed, i)),
                                        MantissaLimit(bits));
            same = (bits == 8 ? q8[i] : q16[i]) == want && carrier[i] == std::ldexp(static_cast<float>(want), e);
          }
          EXPECT(same, "int64 requantize of bit length %d to %d bits, mode %d", bit_length, bits,
                 static_cast<int>(mode));
        }
      }
    }
  }
}

void TestRequantizeAndQuantize() {
  const Rounding modes[] = {Rounding::kNearest, Rounding::kPseudoStochastic, Rounding::kStochastic,
                            Rounding::kTruncate};
  std::vector<int32_t> acc = {0, 1, -1, 127, -128, 128, INT32_MAX, INT32_MIN, 1 << 20, -(1 << 20)};
  std::uniform_int_distribution<int32_t> d(INT32_MIN, INT32_MAX);
  for (int i = 0; i < 1000; ++i) acc.push_back(d(rng));
  for (Rounding mode : modes) {
    std::vector<int8_t> q(acc.size());
    int e = 0;
    EXPECT(Requantize<int8_t>(acc.data(), acc.size(), 0, mode, RoundingSeed{3, 4}, q.data(), &e, SerialFor).ok(),
           "requantize");
    EXPECT(e == 25, "exponent of a full-range int32 tensor: %d", e);
    for (size_t i = 0; i < acc.size(); ++i) {
      const double exact = acc[i] / 33554432.0;  // 2**25
      EXPECT(q[i] >= -127 && q[i] <= 127 && std::abs(q[i] - exact) <= 1.0, "requantize value");
    }
    std::vector<int16_t> q16(acc.size());
    EXPECT(Requantize<int16_t>(acc.data(), acc.size(), 0, mode, RoundingSeed{}, q16.data(), &e, SerialFor).ok(),
           "requantize 16");
    EXPECT(e == 17, "16-bit exponent %d", e);
  }
  std::vector<float> x = {0.0f, 0.3f, -1.0f, 1e-30f, 65504.0f};
  std::vector<int8_t> q(x.size());
  int e;
  EXPECT(Quantize<int8_t>(x.data(), x.size(), q.data(), &e).ok() && e == 9, "quantize exponent %d", e);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  EXPECT(!Quantize<int8_t>(x.data(), x.size(), q.data(), &e).ok(), "NaN must be reported");
}

// The layer ops' fused epilogue (RequantizeReluToCarrier) is requantize to a
// carrier followed by Relu, bit for bit, with the same mask: every mode, int32
// and int64 accumulators, small (unshifted) and large values, sizes around
// mask words, serially and in shards of three words (two threads' worth).
template <typename Acc>
void CheckRequantizeRelu(const std::vector<Acc>& acc, int acc_exponent, int bits, Rounding mode,
                         const ParallelFor& parallel_for, const char* what) {
  const int64_t n = static_cast<int64_t>(acc.size());
  std::vector<float> want(n), got(n);
  std::vector<uint32_t> want_mask(ReluMaskWords(n)), got_mask(ReluMaskWords(n), 0xDEADBEEFu);
  int want_e = 0, got_e = 0;
  const RoundingSeed seed{7, 9};
  EXPECT(RequantizeToCarrier(acc.data(), n, acc_exponent, mode, seed, want.data(), &want_e, SerialFor, bits).ok() &&
             Relu(want.data(), n, want.data(), want_mask.data()).ok(),
         "%s: unfused", what);
  EXPECT(RequantizeReluToCarrier(acc.data(), n, acc_exponent, mode, seed, got.data(), &got_e, got_mask.data(),
                                 parallel_for, bits).ok(),
         "%s: fused", what);
  EXPECT(got_e == want_e && std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0 && got_mask == want_mask,
         "%s: n %ld, mode %d, bits %d", what, (long)n, static_cast<int>(mode), bits);
}

void TestRequantizeRelu() {
  const ParallelFor serial = SerialFor;
  const ParallelFor three_words_each = [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    for (int64_t i = 0; i < n; i += 3) fn(i, std::min(n, i + 3));
  };
  const Rounding modes[] = {Rounding::kNearest, Rounding::kPseudoStochastic, Rounding::kStochastic,
                            Rounding::kTruncate};
  for (int64_t n : {1, 31, 32, 33, 95, 96, 97, 1000}) {
    for (int32_t range : {100, 1 << 20}) {  // below 2**7: kept exactly; above: shifted
      std::uniform_int_distribution<int32_t> d(-range, range);
      std::vector<int32_t> acc(n);
      for (auto& v : acc) v = d(rng);
      std::uniform_int_distribution<int64_t> d64(-(INT64_C(1) << 40), INT64_C(1) << 40);
      std::vector<int64_t> acc64(n);
      for (auto& v : acc64) v = d64(rng);
      for (Rounding mode : modes) {
        for (const ParallelFor* pf : {&serial, &three_words_each}) {
          CheckRequantizeRelu(acc, -12, 8, mode, *pf, "int32 -> 8 bits");
          CheckRequantizeRelu(acc64, -40, 16, mode, *pf, "int64 -> 16 bits");
        }
      }
    }
  }
  // In place, as the layer ops call it (the carrier replaces the accumulator).
  std::vector<int32_t> acc = {5000, -5000, 0, 1 << 12, -1, 3};
  std::vector<int32_t> in_place = acc;
  std::vector<float> want(acc.size());
  std::vector<uint32_t> mask(1), want_mask(1);
  int e = 0, want_e = 0;
  EXPECT(RequantizeToCarrier(acc.data(), acc.size(), 0, Rounding::kNearest, RoundingSeed{}, want.data(), &want_e,
                             SerialFor).ok() && Relu(want.data(), want.size(), want.data(), want_mask.data()).ok(),
         "in place: unfused");
  float* out = reinterpret_cast<float*>(in_place.data());
  EXPECT(RequantizeReluToCarrier(in_place.data(), in_place.size(), 0, Rounding::kNearest, RoundingSeed{}, out, &e,
                                 mask.data(), SerialFor).ok() &&
             e == want_e && std::memcmp(out, want.data(), want.size() * sizeof(float)) == 0 && mask == want_mask,
         "in place: fused");
}

void TestPoolLossSgdAdd() {
  PoolGeometry g{2, 7, 5, 3, 3, 3, 2, 2, 0, 0, 0, 0};
  EXPECT(ComputePoolGeometry(true, &g).ok(), "pool geometry");
  auto x = RandomInt8(g.batch * g.in_h * g.in_w * g.channels);
  auto dy = RandomInt8(g.batch * g.out_h * g.out_w * g.channels);
  std::vector<int8_t> y(dy.size());
  std::vector<int32_t> acc(dy.size()), dx(x.size());
  MaxPool(g, x.data(), y.data());
  MaxPoolGrad(g, x.data(), dy.data(), dx.data());
  int64_t routed = 0, total = 0;
  for (int32_t v : dx) routed += v;
  for (int8_t v : dy) total += v;
  EXPECT(routed == total, "max-pool gradient conserves the error: %ld vs %ld", (long)routed, (long)total);
  AvgPool(g, x.data(), acc.data());
  AvgPoolGrad(g, dy.data(), dx.data());

  const int64_t batch = 5, classes = 10;
  auto logits = RandomInt8(batch * classes);
  std::vector<int64_t> labels = {0, 9, 3, 3, 7};
  std::vector<int8_t> err(logits.size());
  for (int exponent : {-30, -7, -3, 0, 20}) {
    SoftmaxCrossEntropyGrad(logits.data(), batch, classes, exponent, labels.data(),
                            Rounding::kPseudoStochastic, RoundingSeed{}, err.data());
    for (int64_t b = 0; b < batch; ++b) EXPECT(err[b * classes + labels[b]] <= 0, "label error sign");
  }

  std::vector<int8_t> w = RandomInt8(300), m = RandomInt8(300);
  std::vector<int32_t> grad(300);
  std::uniform_int_distribution<int32_t> d(INT32_MIN, INT32_MAX);
  for (auto& v : grad) v = d(rng);
  SgdOptions options;
  options.momentum = 8;
  options.weight_decay = 3;
  EXPECT(IntegerSgdUpdate<int8_t>(w.data(), grad.data(), w.size(), options, m.data()).ok(), "sgd");
  for (int8_t v : w) EXPECT(v >= -127 && v <= 127, "sgd clips");
  // int64 gradients (DFP16) give int32 gradients' update where they fit, for every option.
  for (int variant = 0; variant < 3; ++variant) {
    SgdOptions o;
    o.momentum = variant == 1 ? 8 : 0;
    o.weight_decay = variant == 2 ? 5 : 0;
    std::vector<int16_t> w32 = RandomInt16(300), m32 = RandomInt16(300);
    std::vector<int16_t> w64 = w32, m64 = m32;
    std::vector<int64_t> grad64(grad.begin(), grad.end());
    EXPECT(IntegerSgdUpdate<int16_t>(w32.data(), grad.data(), 300, o, m32.data()).ok() &&
               IntegerSgdUpdate<int16_t>(w64.data(), grad64.data(), 300, o, m64.data()).ok() && w32 == w64 &&
               m32 == m64, "sgd int64 gradient = int32 gradient (variant %d)", variant);
  }
  std::vector<int32_t> w_wide(2, 5);
  std::vector<int64_t> huge(2, INT64_C(1) << 60);
  SgdOptions decay;
  decay.weight_decay = 1024;
  EXPECT(!IntegerSgdUpdate<int32_t>(w_wide.data(), huge.data(), 2, decay, static_cast<int32_t*>(nullptr)).ok(),
         "weight decay beyond int64 must be reported");

  auto a = RandomInt8(100), b2 = RandomInt8(100);
  std::vector<int32_t> sum(100);
  int sum_exponent;
  AlignedAdd(a.data(), 100, b2.data(), -100, 100, sum.data(), &sum_exponent);
  EXPECT(sum_exponent == 100 - kMaxAlignShift, "add exponent");
  std::vector<int32_t> bias_acc(6, 1 << 30);
  const int32_t bias[3] = {1 << 30, 0, -1};
  EXPECT(!AddBias(bias_acc.data(), 2, 3, bias, 1).ok(), "bias overflow must be reported");
}

// Carrier max pooling with shards of output rows that do not start at
// image boundaries (three rows each, two rows per image): a NaN in a border
// that VALID windows leave unread is still reported, in every image.
void TestMaxPoolCarrierShards() {
  const ParallelFor three_rows_each = [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    for (int64_t i = 0; i < n; i += 3) fn(i, std::min(n, i + 3));
  };
  PoolGeometry g{3, 5, 5, 2, 2, 2, 2, 2, 0, 0, 0, 0};
  EXPECT(ComputePoolGeometry(false, &g).ok(), "pool geometry");
  for (int64_t image = 0; image < g.batch; ++image) {
    std::vector<float> x(g.batch * g.in_h * g.in_w * g.channels, 1.0f);
    x[((image * g.in_h + 4) * g.in_w + 4) * g.channels + 1] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(g.batch * g.out_h * g.out_w * g.channels);
    std::vector<uint8_t> which(y.size());
    EXPECT(!MaxPoolCarrier(g, x.data(), y.data(), which.data(), three_rows_each).ok(),
           "NaN in the unread border of image %ld must be reported", (long)image);
  }
}

// The exactness bound of every path at the boundary (issue 12): depth
// 131071 of (-128)**2 is the largest exact int32 sum, 131072 overflows and
// must be an error, never -2**31. Each GEMM path (VNNI quads or int16 pairs,
// as KERAS_INT_GEMM selects; the test runs under both) and the direct
// short-row filter gradient, whose chunks hold whole output rows.
void TestExactnessBoundaries() {
  for (const int64_t depth : {kMaxExactDepth, kMaxExactDepth + 1}) {
    const bool fits = depth == kMaxExactDepth;
    std::vector<int8_t> x(depth, -128), w(depth, -128);
    int32_t out = 0;
    const Status status = MatMul(x.data(), w.data(), 1, 1, depth, false, false, &out, SerialFor);
    EXPECT(status.ok() == fits && (!fits || out == depth * 16384), "matmul depth %ld: %d", (long)depth, out);
    // One image row of `depth` pixels through a 1x1 filter: the filter
    // gradient sums the whole row.
    Conv2DGeometry g{1, 1, depth, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    EXPECT(ComputeConv2DGeometry(false, &g).ok(), "conv geometry");
    int32_t dw = 0;
    const Status filter = Conv2DBackpropFilter(g, x.data(), w.data(), &dw, SerialFor);
    EXPECT(filter.ok() == fits && (!fits || dw == depth * 16384), "filter gradient of a %ld-pixel row: %d",
           (long)depth, dw);
    // Depth 4 * depth over 2 rows of 2 images: split into int32 chunks.
    std::vector<int8_t> x4(4 * depth), dy4(4 * depth);
    for (int64_t i = 0; i < 4 * depth; ++i) x4[i] = -128, dy4[i] = i % 4 < 2 ? -128 : 127;
    Conv2DGeometry g4{2, 2, depth, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    EXPECT(ComputeConv2DGeometry(false, &g4).ok(), "conv geometry");
    const Status chunked = Conv2DBackpropFilter(g4, x4.data(), dy4.data(), &dw, SerialFor);
    EXPECT(chunked.ok() && dw == 2 * depth * 16384 - 2 * depth * 128 * 127,
           "chunked filter gradient over %ld pixels: %d", (long)(4 * depth), dw);
  }
  // The widest rows the direct path takes (a multiple of 4 pixels): one row
  // at the limit is exact; two rows of 65536 are exact int32 chunks of one
  // row each whose int64 total, 2**31, is an error.
  const int64_t direct_w = kMaxExactDepth / 4 * 4;
  for (const int64_t rows : {int64_t{1}, int64_t{2}}) {
    const int64_t width = rows == 1 ? direct_w : 65536;
    std::vector<int8_t> ones(rows * width, -128);
    Conv2DGeometry g{1, rows, width, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    EXPECT(ComputeConv2DGeometry(false, &g).ok(), "conv geometry");
    int32_t dw = 0;
    const Status status = Conv2DBackpropFilter(g, ones.data(), ones.data(), &dw, SerialFor);
    EXPECT(rows == 1 ? status.ok() && dw == direct_w * 16384 : !status.ok(),
           "direct filter gradient over %ld rows of %ld: %d", (long)rows, (long)width, dw);
  }
  // The direct path refuses rows it cannot sum exactly.
  Conv2DGeometry wide{1, 1, kMaxExactDepth + 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  EXPECT(ComputeConv2DGeometry(false, &wide).ok(), "conv geometry");
  EXPECT(!conv_internal::UseShortRowsFilterGrad(wide), "a row wider than the exact depth takes the GEMM");
  // A huge stride: the direct path's padded rows would be mostly padding.
  Conv2DGeometry strided{1, 1, 2, 2, 1, 1, 2, 1, int64_t{1} << 30, 1, 1, 0, 0, 0, 0};
  EXPECT(ComputeConv2DGeometry(true, &strided).ok(), "conv geometry");
  EXPECT(!conv_internal::UseShortRowsFilterGrad(strided), "a 2**30 stride takes the GEMM");
  const std::vector<int8_t> x2 = {1, 2, 3, 4}, dy2 = {5, -6};
  std::vector<int32_t> dw2(4);
  EXPECT(Conv2DBackpropFilter(strided, x2.data(), dy2.data(), dw2.data(), SerialFor).ok() &&
             dw2 == std::vector<int32_t>({5, -6, 10, -12}),
         "strided filter gradient");
}

// x + 0 = x exactly, whatever the exponents (an all-zero tensor's exponent
// carries nothing); otherwise the alignment is capped (TestPoolLossSgdAdd).
void TestAddOfZero() {
  const std::vector<int8_t> x = {100, -3, 127, -128}, zero(4, 0);
  std::vector<int32_t> acc(4);
  int e = 0;
  AlignedAdd(zero.data(), 0, x.data(), -30, 4, acc.data(), &e);
  EXPECT(e == -30 && acc == std::vector<int32_t>({100, -3, 127, -128}), "0 + x: exponent %d", e);
  AlignedAdd(x.data(), -100, zero.data(), 100, 4, acc.data(), &e);
  EXPECT(e == -100 && acc == std::vector<int32_t>({100, -3, 127, -128}), "x + 0: exponent %d", e);
  AlignedAdd(zero.data(), 100, zero.data(), -100, 4, acc.data(), &e);
  EXPECT(e == -100 && acc == std::vector<int32_t>(4, 0), "0 + 0: exponent %d", e);
}

// Subnormal inputs count as zero; pools of empty inputs claiming huge
// sizes return at once.
void TestSubnormalsAndEmptyPools() {
  const float subnormal = std::numeric_limits<float>::denorm_min() * 3;
  const std::vector<float> tiny = {subnormal, -subnormal};
  std::vector<int8_t> q(2, 1);
  int e = 1;
  EXPECT(Quantize<int8_t>(tiny.data(), 2, q.data(), &e).ok() && e == 0 && q[0] == 0 && q[1] == 0,
         "subnormal-only input quantizes to zero, e = 0 (got %d)", e);
  const std::vector<float> mixed = {subnormal, 0.5f};
  EXPECT(Quantize<int8_t>(mixed.data(), 2, q.data(), &e).ok() && e == -7 && q[0] == 0 && q[1] == 64,
         "a subnormal beside 0.5 quantizes to 0 (e %d)", e);
  PoolGeometry g{1, int64_t{1} << 20, int64_t{1} << 20, 0, 2, 2, 2, 2, 0, 0, 0, 0};
  EXPECT(ComputePoolGeometry(false, &g).ok(), "pool geometry");
  MaxPool(g, nullptr, nullptr);  // 2**38 windows of no channels: returns at once
  AvgPool(g, static_cast<const int8_t*>(nullptr), static_cast<int32_t*>(nullptr));
  MaxPoolGrad(g, nullptr, nullptr, nullptr);
  AvgPoolGrad(g, static_cast<const int8_t*>(nullptr), static_cast<int32_t*>(nullptr));
}

// The AVX-512 row loops of batch normalization against the portable ones,
// bit for bit, over channel counts with and without a scalar tail and
// per-channel shifts of every kind (left, right, none).
void TestNormRowLoops() {
  const bool avx512 = norm_internal::NormAvx512Available(), avx2 = norm_internal::NormAvx2Available();
  if (!avx512) std::printf("core_test: no AVX-512 here, the batch-norm row loops' AVX-512 versions untested\n");
  if (!avx512 && !avx2) return;
  std::uniform_int_distribution<int64_t> big(-(int64_t{1} << 40), int64_t{1} << 40);
  std::uniform_int_distribution<int> shift(0, 45);
  for (int64_t channels : {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 70}) {
    const int64_t rows = 37;
    const std::vector<int8_t> q = RandomInt8(rows * channels), err = RandomInt8(rows * channels);
    std::vector<int32_t> sums0(static_cast<size_t>(4 * channels)), sums1;
    for (int64_t c = 0; c < channels; ++c) {
      sums0[c] = static_cast<int32_t>(c) - 5;
      sums0[2 * channels + c] = 127;
      sums0[3 * channels + c] = -128;
    }
    sums1 = sums0;
    if (avx512) {
      norm_internal::ScanRows<0>(q.data(), 2, rows, channels, sums0.data());
      norm_internal::ScanRows<1>(q.data(), 2, rows, channels, sums1.data());
      EXPECT(sums0 == sums1, "ScanRows AVX-512 = portable (%lld channels)", static_cast<long long>(channels));
      std::vector<float> table(static_cast<size_t>(channels * 256));
      for (size_t j = 0; j < table.size(); ++j) table[j] = static_cast<float>(static_cast<int>(j % 255) - 127) * 0.25f;
      std::vector<float> y0(static_cast<size_t>(rows * channels), -1.0f), y1 = y0;
      norm_internal::LookupRows<0>(q.data(), 1, rows, channels, table.data(), y0.data());
      norm_internal::LookupRows<1>(q.data(), 1, rows, channels, table.data(), y1.data());
      EXPECT(y0 == y1, "LookupRows AVX-512 = portable (%lld channels)", static_cast<long long>(channels));
    }
    std::vector<int64_t> unit(static_cast<size_t>(channels)), term(static_cast<size_t>(channels * 256));
    std::vector<uint64_t> left(static_cast<size_t>(channels), 0), half(static_cast<size_t>(channels), 0),
        right(static_cast<size_t>(channels), 0);
    for (int64_t c = 0; c < channels; ++c) {
      unit[c] = big(rng) >> 10;
      const int s = shift(rng);
      if (c % 3 == 0 && s < 7) {
        left[c] = static_cast<uint64_t>(s);  // small values only: below 2**7 after the shift
        unit[c] = 0;
      } else if (s > 0) {
        right[c] = static_cast<uint64_t>(s);
        half[c] = uint64_t{1} << (s - 1);
      }
    }
    for (size_t j = 0; j < term.size(); ++j) term[j] = left[j / 256] ? static_cast<int64_t>(j % 5) - 2 : big(rng);
    std::vector<float> dx0(static_cast<size_t>(rows * channels), -1.0f), dx1 = dx0, dx2 = dx0;
    norm_internal::GradEmitRows<0>(err.data(), q.data(), 0, rows, channels, unit.data(), term.data(), left.data(),
                                   half.data(), right.data(), 0.125f, dx0.data());
    if (avx512) {
      norm_internal::GradEmitRows<1>(err.data(), q.data(), 0, rows, channels, unit.data(), term.data(), left.data(),
                                     half.data(), right.data(), 0.125f, dx1.data());
      EXPECT(dx0 == dx1, "GradEmitRows AVX-512 = portable (%lld channels)", static_cast<long long>(channels));
    }
    if (avx2) {
      norm_internal::GradEmitRows<2>(err.data(), q.data(), 0, rows, channels, unit.data(), term.data(), left.data(),
                                     half.data(), right.data(), 0.125f, dx2.data());
      EXPECT(dx0 == dx2, "GradEmitRows AVX2 = portable (%lld channels)", static_cast<long long>(channels));
    }
  }
}

// Layer normalization on shards of three rows (the per-feature gradient
// sums are added shard by shard under a lock) equals the serial run bit for
// bit, every output, over shapes with constant and all-zero rows.
void TestLayerNormShards() {
  const ParallelFor three_rows_each = [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    for (int64_t i = 0; i < n; i += 3) fn(i, std::min(n, i + 3));
  };
  for (const auto& [rows, features] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {10, 64}, {4, 300}, {0, 3}}) {
    std::vector<int8_t> q = RandomInt8(rows * features), err = RandomInt8(rows * features);
    const std::vector<int8_t> gamma = RandomInt8(features);
    std::vector<int32_t> beta(static_cast<size_t>(features));
    for (int64_t c = 0; c < features; ++c) beta[c] = static_cast<int32_t>(c * 97 % 4001) - 2000;
    if (rows > 2) {
      std::fill(q.begin(), q.begin() + features, static_cast<int8_t>(9));           // constant row
      std::fill(err.begin() + features, err.begin() + 2 * features, int8_t{0});  // all-zero error row
    }
    const NormParams params{gamma.data(), beta.data(), -7, 16777, -24};
    struct Out {
      std::vector<float> y, dx, dx16;
      std::vector<int64_t> x_sum, inv_sqrt;
      std::vector<int32_t> inv_shift, dgamma, dbeta, dgamma16, dbeta16;
      int y_exponent = 0, dx_exponent = 0, dx16_exponent = 0;
    } serial, sharded;
    for (auto* out : {&serial, &sharded}) {
      const ParallelFor& pf = out == &serial ? ParallelFor(SerialFor) : three_rows_each;
      out->y.resize(q.size());
      out->dx.resize(q.size());
      out->dx16.resize(q.size());
      out->x_sum.resize(rows);
      out->inv_sqrt.resize(rows);
      out->inv_shift.resize(rows);
      out->dgamma.resize(features);
      out->dbeta.resize(features);
      out->dgamma16.resize(features);
      out->dbeta16.resize(features);
      EXPECT(LayerNorm(q.data(), rows, features, -6, params, Rounding::kStochastic, RoundingSeed{3, 4},
                       out->y.data(), &out->y_exponent, out->x_sum.data(), out->inv_sqrt.data(),
                       out->inv_shift.data(), pf).ok(), "layer norm %lldx%lld", (long long)rows, (long long)features);
      EXPECT(LayerNormGrad(err.data(), -9, q.data(), rows, features, -6, out->x_sum.data(), out->inv_sqrt.data(),
                           out->inv_shift.data(), gamma.data(), -7, 8, out->dx.data(), &out->dx_exponent,
                           out->dgamma.data(), out->dbeta.data(), pf).ok(),
             "layer norm grad %lldx%lld", (long long)rows, (long long)features);
      EXPECT(LayerNormGrad(err.data(), -9, q.data(), rows, features, -6, out->x_sum.data(), out->inv_sqrt.data(),
                           out->inv_shift.data(), gamma.data(), -7, 16, out->dx16.data(), &out->dx16_exponent,
                           out->dgamma16.data(), out->dbeta16.data(), pf).ok(),
             "layer norm grad, 16-bit dx, %lldx%lld", (long long)rows, (long long)features);
    }
    // The 16-bit dx: 8 more bits of the same values (the exponent 8 lower
    // where any is non-zero), each within one 8-bit unit of the 8-bit dx
    // (both round the same exact value; the 8-bit one may clip to 127); the
    // parameter gradients do not depend on dx_bits.
    const bool any = std::any_of(serial.dx.begin(), serial.dx.end(), [](float v) { return v != 0.0f; });
    EXPECT(!any || serial.dx16_exponent == serial.dx_exponent - 8, "16-bit dx exponent %d, 8-bit %d",
           serial.dx16_exponent, serial.dx_exponent);
    int32_t dx16_largest = 0;
    for (size_t i = 0; i < serial.dx.size(); ++i) {
      const double unit8 = std::ldexp(1.0, serial.dx_exponent);
      const double m16 = std::ldexp(serial.dx16[i], -serial.dx16_exponent);
      EXPECT(m16 == std::round(m16) && std::fabs(m16) <= 32767, "16-bit dx mantissa %g", m16);
      dx16_largest = std::max(dx16_largest, static_cast<int32_t>(std::fabs(m16)));
      EXPECT(std::fabs(double{serial.dx16[i]} - serial.dx[i]) <= unit8, "16-bit dx %g vs 8-bit %g",
             serial.dx16[i], serial.dx[i]);
    }
    EXPECT(!any || dx16_largest >= 1 << 14, "16-bit dx largest mantissa %d uses 15 bits", dx16_largest);
    EXPECT(serial.dgamma16 == serial.dgamma && serial.dbeta16 == serial.dbeta, "layer norm dgamma/dbeta vs dx_bits");
    EXPECT(serial.dx16 == sharded.dx16 && serial.dx16_exponent == sharded.dx16_exponent,
           "layer norm grad 16-bit dx sharded = serial (%lldx%lld)", (long long)rows, (long long)features);
    EXPECT(serial.y == sharded.y && serial.y_exponent == sharded.y_exponent && serial.x_sum == sharded.x_sum &&
               serial.inv_sqrt == sharded.inv_sqrt && serial.inv_shift == sharded.inv_shift,
           "layer norm sharded = serial (%lldx%lld)", (long long)rows, (long long)features);
    EXPECT(serial.dx == sharded.dx && serial.dx_exponent == sharded.dx_exponent && serial.dgamma == sharded.dgamma &&
               serial.dbeta == sharded.dbeta,
           "layer norm grad sharded = serial (%lldx%lld)", (long long)rows, (long long)features);
  }
}

// Layer normalization's vectorised row loops (32-bit xhat operands, ORed
// magnitudes, requantize's rounding pass per row) equal its definition
// element by element (NormXhat, NormOutput, NormGradValue, RequantizeValue
// at the largest position) in every rounding mode, for feature counts
// around the vector widths, and for saved statistics that no forward pass
// of q produced (x_sum 0, r = 2**31, k = 28 over a row of 127s: from 17
// features on, b passes 2**31, so the scalar loop takes that row).
void TestLayerNormRowLoops() {
  for (const int64_t features : {1, 3, 8, 17, 32, 67}) {
    const int64_t rows = 9;
    std::vector<int8_t> q = RandomInt8(rows * features), err = RandomInt8(rows * features);
    const std::vector<int8_t> gamma = RandomInt8(features);
    std::vector<int32_t> beta(static_cast<size_t>(features));
    for (int64_t c = 0; c < features; ++c) beta[c] = static_cast<int32_t>(c * 7919 % 60001) - 30000;
    const NormParams params{gamma.data(), beta.data(), -7, 16777, -24};
    std::vector<int64_t> x_sum(rows), inv_sqrt(rows);
    std::vector<int32_t> inv_shift(rows);
    for (const Rounding mode :
         {Rounding::kNearest, Rounding::kTruncate, Rounding::kPseudoStochastic, Rounding::kStochastic}) {
      const RoundingSeed seed{11, 5};
      std::vector<float> y(q.size());
      int y_exponent = 0;
      EXPECT(LayerNorm(q.data(), rows, features, -6, params, mode, seed, y.data(), &y_exponent, x_sum.data(),
                       inv_sqrt.data(), inv_shift.data(), SerialFor).ok(), "layer norm %lld", (long long)features);
      std::vector<int64_t> acc(q.size());
      int position = kNoValuePosition;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t s1 = 0, s2 = 0;
        for (int64_t c = 0; c < features; ++c) s1 += q[r * features + c], s2 += q[r * features + c] * q[r * features + c];
        const NormChannel ch = MakeNormChannel(features, s1, features * s2 - s1 * s1, 16777, -24, -6);
        EXPECT(ch.sum == x_sum[r] && ch.inv_sqrt == inv_sqrt[r] && ch.inv_shift == inv_shift[r], "row constants");
        for (int64_t c = 0; c < features; ++c) {
          acc[r * features + c] = NormOutput(NormXhat(q[r * features + c], ch), gamma[c], beta[c]);
          position = std::max(position, ValuePosition(acc[r * features + c], -7 - kNormFractionBits));
        }
      }
      EXPECT(y_exponent == position - 7, "layer norm exponent %d, definition %d", y_exponent, position - 7);
      for (size_t i = 0; i < acc.size(); ++i) {
        const int32_t m = RequantizeValue(acc[i], -7 - kNormFractionBits, y_exponent, mode,
                                          RandomWordFor(mode, seed, i));
        EXPECT(y[i] == std::ldexp(static_cast<float>(m), y_exponent), "layer norm y[%zu] = %g, definition %d * 2**%d",
               i, y[i], m, y_exponent);
      }
    }
    // The last row's saved statistics come from no forward pass of its q.
    std::fill(q.end() - features, q.end(), int8_t{127});
    std::fill(err.end() - features, err.end(), int8_t{127});
    x_sum[rows - 1] = 0;
    inv_sqrt[rows - 1] = int64_t{1} << 31;
    inv_shift[rows - 1] = 28;
    const std::vector<int8_t> high_gamma(static_cast<size_t>(features), int8_t{127});
    for (const int dx_bits : {8, 16}) {
      std::vector<float> dx(q.size());
      std::vector<int32_t> dgamma(features), dbeta(features);
      int dx_exponent = 0;
      EXPECT(LayerNormGrad(err.data(), -9, q.data(), rows, features, -6, x_sum.data(), inv_sqrt.data(),
                           inv_shift.data(), high_gamma.data(), -7, dx_bits, dx.data(), &dx_exponent, dgamma.data(),
                           dbeta.data(), SerialFor).ok(), "layer norm grad %lld", (long long)features);
      std::vector<int64_t> values(q.size());
      std::vector<int> exponents(rows);
      int position = kNoValuePosition;
      for (int64_t r = 0; r < rows; ++r) {
        const NormChannel ch{features, x_sum[r], inv_sqrt[r], inv_shift[r]};
        int64_t sum_a = 0, sum_b = 0;
        for (int64_t c = 0; c < features; ++c) {
          const int64_t g = int64_t{err[r * features + c]} * high_gamma[c];
          sum_a += g;
          sum_b += g * NormXhat(q[r * features + c], ch);
        }
        const NormGradChannel k = MakeNormGradChannel(sum_a, sum_b, features, inv_sqrt[r], inv_shift[r], 1, -7, -6, -9);
        if (r == rows - 1 && features >= 17) {
          EXPECT(Magnitude64(k.b) > 0x7fffffff, "the last row's b %lld fits 32 bits", (long long)k.b);
        }
        exponents[r] = k.exponent;
        for (int64_t c = 0; c < features; ++c) {
          const int64_t i = r * features + c;
          values[i] = NormGradValue(int32_t{err[i]} * high_gamma[c], NormXhat(q[i], ch), k.a, k.b, k.gamma_rho);
          position = std::max(position, ValuePosition(values[i], k.exponent));
        }
      }
      const int exponent = position - (dx_bits - 1);
      EXPECT(dx_exponent == exponent, "layer norm grad exponent %d, definition %d", dx_exponent, exponent);
      for (size_t i = 0; i < values.size(); ++i) {
        const int32_t m = RequantizeValue(values[i], exponents[i / features], exponent, Rounding::kNearest, 0,
                                          MantissaLimit(dx_bits));
        EXPECT(dx[i] == std::ldexp(static_cast<float>(m), exponent), "layer norm dx[%zu] = %g, definition %d * 2**%d",
               i, dx[i], m, exponent);
      }
    }
  }
}

// The softmax's probabilities (one reciprocal per row instead of a
// division per element) equal their definition, SoftmaxProbability of
// each numerator over the row's sum: random rows with and without masks,
// and a row of 2**21 equal entries, whose sum 2**51 is the largest.
void TestSoftmaxProbabilities() {
  std::mt19937 gen(7);
  for (const auto& [rows, n] : {std::pair<int64_t, int64_t>{3, 1}, {5, 7}, {4, 64}, {2, 1000}, {1, 1 << 21}}) {
    const bool long_row = n == (1 << 21);
    std::vector<int8_t> q = long_row ? std::vector<int8_t>(n, int8_t{5}) : RandomInt8(rows * n);
    std::vector<uint8_t> mask(q.size());
    for (auto& m : mask) m = long_row || gen() % 4 != 0;
    for (const bool masked : {false, true}) {
      for (const auto& [exponent, scale] : {std::pair<int, SoftmaxScale>{-4, {1, 0}}, {-7, {46341, 17}}}) {
        std::vector<int32_t> probabilities(q.size());
        EXPECT(SoftmaxProbabilities(q.data(), masked ? mask.data() : nullptr, rows, n, exponent, scale,
                                    probabilities.data(), SerialFor).ok(), "softmax %lldx%lld", (long long)rows,
               (long long)n);
        for (int64_t r = 0; r < rows; ++r) {
          const auto kept = [&](int64_t i) { return !masked || mask[r * n + i] != 0; };
          int32_t q_max = -129;
          for (int64_t i = 0; i < n; ++i) if (kept(i)) q_max = std::max<int32_t>(q_max, q[r * n + i]);
          std::vector<int64_t> p(n, 0);
          int64_t sum = 0;
          for (int64_t i = 0; i < n; ++i) {
            if (kept(i)) p[i] = SoftmaxNumerator(SoftmaxExpArgument(q_max - q[r * n + i], exponent, scale.multiplier,
                                                                    scale.shift));
            sum += p[i];
          }
          bool same = true;
          for (int64_t i = 0; i < n; ++i) {
            same &= probabilities[r * n + i] == (sum == 0 ? 0 : SoftmaxProbability(p[i], sum));
          }
          EXPECT(same, "softmax row %lld of %lldx%lld (sum %lld) differs from its definition", (long long)r,
                 (long long)rows, (long long)n, (long long)sum);
        }
      }
    }
  }
}

// The softmax gradient equals its definition: SoftmaxGradValue of every
// element, one exponent from the largest, requantized (nearest). Rows take
// an int32 loop where their values provably fit and an int64 one elsewhere;
// multiplier 64 at y_exponent 0 puts rows of random signs (|D| ~ 2**16) on
// the first and rows of one sign (|D| up to 2**20) on the second in the same
// call, and y_exponent -22 / multiplier 65535 puts every row on the second.
void TestSoftmaxGrad() {
  for (const auto& [rows, n] : {std::pair<int64_t, int64_t>{1, 1}, {6, 64}, {9, 33}, {3, 1000}}) {
    for (const auto& [y_exponent, multiplier] :
         {std::pair<int, int64_t>{0, 64}, {-7, 1}, {-7, 23170}, {-22, 65535}, {-3, 5}}) {
      std::vector<int8_t> y = RandomInt8(rows * n), err = RandomInt8(rows * n);
      for (int64_t r = 1; r < rows; r += 2) {  // one sign: the largest |D|
        for (int64_t i = r * n; i < (r + 1) * n; ++i) {
          y[i] = static_cast<int8_t>(100 + std::abs(int{y[i]}) % 28);
          err[i] = static_cast<int8_t>(-100 - std::abs(int{err[i]}) % 29);
        }
      }
      const SoftmaxScale scale{multiplier, 3};
      std::vector<float> dx(y.size());
      int dx_exponent = 0;
      EXPECT(SoftmaxGrad(err.data(), -9, y.data(), y_exponent, rows, n, scale, dx.data(), &dx_exponent).ok(),
             "softmax_grad %lldx%lld", (long long)rows, (long long)n);
      std::vector<int64_t> values(y.size());
      uint64_t top = 0;
      int narrow_rows = 0;  // rows whose values the bound keeps within int32
      for (int64_t r = 0; r < rows; ++r) {
        int64_t dot = 0;
        for (int64_t i = r * n; i < (r + 1) * n; ++i) dot += int32_t{y[i]} * err[i];
        narrow_rows += 128 * multiplier * ((int64_t{128} << -y_exponent) + std::abs(dot)) <= 0x7FFFFFFF;
        for (int64_t i = r * n; i < (r + 1) * n; ++i) {
          values[i] = SoftmaxGradValue(y[i], err[i], y_exponent, dot, multiplier);
          top |= Magnitude64(values[i]);
        }
      }
      if (y_exponent == 0 && rows == 6) {
        EXPECT(narrow_rows > 0 && narrow_rows < rows, "softmax_grad: %d of %lld rows within int32, not a mix",
               narrow_rows, (long long)rows);
      }
      const int shift = BitLength64(top) - 7;
      const int exponent = 2 * y_exponent - 9 - scale.shift + shift;
      EXPECT(top == 0 || dx_exponent == exponent, "softmax_grad exponent %d, definition %d", dx_exponent, exponent);
      bool same = true;
      for (size_t i = 0; i < values.size(); ++i) {
        const int64_t m = shift <= 0 ? values[i] * (int64_t{1} << -shift)
                                     : ShiftAndClipElement<Rounding::kNearest>(values[i], shift, 0, 127);
        same &= dx[i] == std::ldexp(static_cast<float>(m), exponent);
      }
      EXPECT(same, "softmax_grad %lldx%lld at y_exponent %d, multiplier %lld differs from its definition",
             (long long)rows, (long long)n, y_exponent, (long long)multiplier);
    }
  }
}

// ConstantDivisor against the hardware division: every divisor up to 4096
// and divisors near powers of two up to 2**31, at numerators near their
// multiples, random ones and the largest (2**31 - 1); IndexSplit against
// the plain split, on its fast path and its 64-bit one.
void TestIndexSplit() {
  std::vector<uint64_t> divisors;
  for (uint64_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int l = 12; l <= 31; ++l) {
    for (int64_t delta = -3; delta <= 3; ++delta) {
      const int64_t d = (int64_t{1} << l) + delta;
      if (d >= 1 && d <= (int64_t{1} << 31)) divisors.push_back(static_cast<uint64_t>(d));
    }
  }
  std::uniform_int_distribution<uint64_t> numerator(0, (uint64_t{1} << 31) - 1);
  bool same = true;
  for (const uint64_t d : divisors) {
    const ConstantDivisor divisor(d);
    std::vector<uint64_t> ns = {0, 1, d - 1, d, d + 1, (uint64_t{1} << 31) - 1};
    for (uint64_t k : {uint64_t{2}, uint64_t{3}, ((uint64_t{1} << 31) - 1) / d}) {
      for (uint64_t n : {k * d - 1, k * d, k * d + 1}) ns.push_back(n);
    }
    for (int t = 0; t < 16; ++t) ns.push_back(numerator(rng));
    for (const uint64_t n : ns) {
      if (n >= (uint64_t{1} << 31)) continue;
      if (divisor.Divide(n) != n / d) {
        same = false;
        EXPECT(false, "ConstantDivisor(%llu).Divide(%llu) = %llu", (unsigned long long)d, (unsigned long long)n,
               (unsigned long long)divisor.Divide(n));
      }
    }
  }
  EXPECT(same, "ConstantDivisor");
  struct Case { int64_t b, c, count; };
  for (const Case& c : {Case{7, 5, 1000}, Case{28, 28, 64 * 28 * 28}, Case{1, 1, 10}, Case{3, 1 << 20, int64_t{1} << 31},
                        Case{5, 3, int64_t{1} << 40}, Case{int64_t{1} << 32, 3, int64_t{1} << 40}}) {
    const IndexSplit split(c.b, c.c, c.count);
    std::uniform_int_distribution<int64_t> index(0, c.count - 1);
    for (int t = 0; t < 2000; ++t) {
      const int64_t i = t < 3 ? std::vector<int64_t>{0, c.count - 1, c.count / 2}[t] : index(rng);
      int64_t first, second, third;
      split(i, &first, &second, &third);
      EXPECT(first == i / (c.b * c.c) && second == i / c.c % c.b && third == i % c.c,
             "IndexSplit(%ld, %ld) of %ld", (long)c.b, (long)c.c, (long)i);
    }
  }
}

}  // namespace
}  // namespace keras_int

int main() {
  keras_int::TestExactnessBoundaries();
  keras_int::TestAddOfZero();
  keras_int::TestSubnormalsAndEmptyPools();
  keras_int::TestMicroKernels();
  keras_int::TestMaxPoolCarrierShards();
  keras_int::TestQuadKernel();
  keras_int::TestMatMul();
  keras_int::TestIndexSplit();
  keras_int::TestConv();
  keras_int::TestGemm16Paths();
  keras_int::TestDfp16();
  keras_int::TestRequantizeAndQuantize();
  keras_int::TestRequantizeInt64Widths();
  keras_int::TestRequantizeRelu();
  keras_int::TestPoolLossSgdAdd();
  keras_int::TestNormRowLoops();
  keras_int::TestLayerNormShards();
  keras_int::TestLayerNormRowLoops();
  keras_int::TestSoftmaxProbabilities();
  keras_int::TestSoftmaxGrad();
  std::printf("core_test: %d checks, %d failed\n", keras_int::checks, keras_int::failures);
  return keras_int::failures == 0 ? 0 : 1;
}

#include "cc/core/pool.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "cc/core/carrier_element.h"
#include "cc/core/conv.h"
#include "cc/core/host_device.h"
#include "cc/core/limits.h"

namespace keras_int {

Status ComputePoolGeometry(bool same_padding, PoolGeometry* g) {
  KERAS_INT_RETURN_IF_ERROR(
      ComputeWindowGeometry(g->in_h, g->k_h, g->stride_h, 1, same_padding, &g->out_h, &g->pad_top));
  return ComputeWindowGeometry(g->in_w, g->k_w, g->stride_w, 1, same_padding, &g->out_w,
                               &g->pad_left);
}

namespace {

// Calls fn(input_pixel_offset) for each in-bounds tap of the window of
// output pixel (n, oh, ow), in row-major window order.
template <typename Fn>
void ForEachTap(const PoolGeometry& g, int64_t n, int64_t oh, int64_t ow, Fn fn) {
  const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
  for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + g.k_h, g.in_h); ++h) {
    for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + g.k_w, g.in_w); ++w) {
      fn(((n * g.in_h + h) * g.in_w + w) * g.channels);
    }
  }
}

int64_t TapCount(const PoolGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
  const int64_t rows = std::min(h0 + g.k_h, g.in_h) - std::max<int64_t>(h0, 0);
  const int64_t cols = std::min(w0 + g.k_w, g.in_w) - std::max<int64_t>(w0, 0);
  return rows * cols;
}

// Calls fn(n, oh, ow, offset) for every output pixel of images [first, last),
// offset being that pixel's first element in the output (NHWC).
template <typename Fn>
void ForEachWindow(const PoolGeometry& g, int64_t first, int64_t last, Fn fn) {
  for (int64_t n = first; n < last; ++n) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        fn(n, oh, ow, ((n * g.out_h + oh) * g.out_w + ow) * g.channels);
      }
    }
  }
}

int64_t WindowCost(const PoolGeometry& g) {
  return g.out_h * g.out_w * g.channels * g.k_h * g.k_w;
}

// The per-channel loops, as functions of values and restrict pointers:
// inside the window lambdas a byte store could alias any captured reference,
// which stops the compiler from vectorising them.
KI_VECTOR_CLONES void MaxInto(int8_t* __restrict out, const int8_t* __restrict in, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] = std::max(out[c], in[c]);
}

KI_VECTOR_CLONES void AddInto(int32_t* __restrict out, const int8_t* __restrict in, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] += in[c];
}

KI_VECTOR_CLONES void AddScaledInto(int32_t* __restrict out, const int8_t* __restrict in, int32_t multiplier, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] += in[c] * multiplier;
}
// DFP16: int16 values into int64 sums (a window's sum times the multiplier
// reaches 2**47).
KI_VECTOR_CLONES void AddInto(int64_t* __restrict out, const int16_t* __restrict in, int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] += in[c];
}
KI_VECTOR_CLONES void AddScaledInto(int64_t* __restrict out, const int16_t* __restrict in, int32_t multiplier,
                                    int64_t n) {
  for (int64_t c = 0; c < n; ++c) out[c] += int64_t{in[c]} * multiplier;
}

// Whether any of n patterns is NaN or Inf (all exponent bits set).
KI_VECTOR_CLONES bool AnyNonFinite(const int32_t* __restrict bits, int64_t n) {
  int32_t special = 0;
  for (int64_t c = 0; c < n; ++c) special |= static_cast<int32_t>((bits[c] & 0x7F800000) == 0x7F800000);
  return special != 0;
}

// Routes d[c] to out[c] where in[c] is the window maximum best[c] seen for
// the first time (done[c] records that); branch-free, so it vectorises.
KI_VECTOR_CLONES void RouteFirstMaximum(int32_t* __restrict out, const int8_t* __restrict in, const int8_t* __restrict best,
                       const int8_t* __restrict d, uint8_t* __restrict done, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    const uint8_t hit = (in[c] == best[c]) & (done[c] ^ 1);
    done[c] |= hit;
    out[c] += static_cast<int8_t>(d[c] & -hit);
  }
}

// Whether non-overlapping windows together read every input element.
bool WindowsCoverInput(const PoolGeometry& g) {
  return g.stride_h == g.k_h && g.stride_w == g.k_w && g.out_h * g.k_h - g.pad_top >= g.in_h &&
         g.out_w * g.k_w - g.pad_left >= g.in_w;
}

// Carrier max pooling of output row oh of one image (`image` its first
// element) for non-overlapping windows: per window, each in-bounds tap in
// window order over all channels; a strictly greater order key replaces the
// best so far (the first maximum wins) and records the tap. Masks, no
// branches, one call per row: the channel loops vectorise. Returns nonzero
// when a read pattern is NaN or Inf.
KI_VECTOR_CLONES int32_t CarrierMaxRow(const PoolGeometry& g, const int32_t* __restrict image, int64_t oh,
                                       int32_t* __restrict out, uint8_t* __restrict which,
                                       int32_t* __restrict best_key, int32_t* __restrict best_tap) {
  const int64_t channels = g.channels;
  const int64_t h0 = oh * g.stride_h - g.pad_top;
  const int64_t h_begin = std::max<int64_t>(h0, 0), h_end = std::min(h0 + g.k_h, g.in_h);
  int32_t special = 0;
  for (int64_t ow = 0; ow < g.out_w; ++ow) {
    const int64_t w0 = ow * g.stride_w - g.pad_left;
    const int64_t w_begin = std::max<int64_t>(w0, 0), w_end = std::min(w0 + g.k_w, g.in_w);
    int32_t* best = out + ow * channels;
    uint8_t* tap_of = which + ow * channels;
    for (int64_t c = 0; c < channels; ++c) best_key[c] = INT32_MIN;  // below every finite key
    // The taps as int32 while comparing (one element width: the loop
    // vectorises fully), bytes at the end.
    int32_t tap = 0;
    for (int64_t h = h_begin; h < h_end; ++h) {
      for (int64_t w = w_begin; w < w_end; ++w, ++tap) {
        const int32_t* in = image + (h * g.in_w + w) * channels;
        for (int64_t c = 0; c < channels; ++c) {
          const int32_t bits = in[c];
          special |= static_cast<int32_t>((bits & 0x7F800000) == 0x7F800000);
          const int32_t key = CarrierOrderKey(bits);
          const int32_t greater = -static_cast<int32_t>(key > best_key[c]);
          best_key[c] = (key & greater) | (best_key[c] & ~greater);
          best[c] = (bits & greater) | (best[c] & ~greater);
          best_tap[c] = (tap & greater) | (best_tap[c] & ~greater);
        }
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      best[c] = CanonicalZero(best[c]);
      tap_of[c] = static_cast<uint8_t>(best_tap[c]);
    }
  }
  return special;
}

// The gradient of one output row: each in-bounds tap of each window takes
// the error where it was the recorded maximum, +0.0 elsewhere (dense
// writes, vectorised, instead of a scatter).
KI_VECTOR_CLONES void CarrierRouteRow(const PoolGeometry& g, const int32_t* __restrict d,
                                      const uint8_t* __restrict which, int64_t oh, int32_t* __restrict image) {
  const int64_t channels = g.channels;
  const int64_t h0 = oh * g.stride_h - g.pad_top;
  const int64_t h_begin = std::max<int64_t>(h0, 0), h_end = std::min(h0 + g.k_h, g.in_h);
  for (int64_t ow = 0; ow < g.out_w; ++ow) {
    const int64_t w0 = ow * g.stride_w - g.pad_left;
    const int64_t w_begin = std::max<int64_t>(w0, 0), w_end = std::min(w0 + g.k_w, g.in_w);
    const int32_t* error = d + ow * channels;
    const uint8_t* tap_of = which + ow * channels;
    int32_t tap = 0;
    for (int64_t h = h_begin; h < h_end; ++h) {
      for (int64_t w = w_begin; w < w_end; ++w, ++tap) {
        int32_t* dx = image + (h * g.in_w + w) * channels;
        for (int64_t c = 0; c < channels; ++c) {
          dx[c] = CanonicalZero(error[c]) & -static_cast<int32_t>(tap_of[c] == tap);
        }
      }
    }
  }
}

// No window has a channel to read: the loops over windows would still count
// out_h * out_w of them per image (2**40 for an empty input claiming
// 2**20 x 2**20 pixels). The output (and a gradient's dx) is then empty.
bool NoWork(const PoolGeometry& g) { return g.batch == 0 || g.out_h == 0 || g.out_w == 0 || g.channels == 0; }

}  // namespace

// Images are independent (the gradients scatter within one image only), so
// every function runs in parallel over the batch.
void MaxPool(const PoolGeometry& g, const int8_t* x, int8_t* y, const ParallelFor& parallel_for) {
  if (NoWork(g)) return;
  parallel_for(g.batch, WindowCost(g), [&](int64_t first, int64_t last) {
    ForEachWindow(g, first, last, [&](int64_t n, int64_t oh, int64_t ow, int64_t offset) {
      std::fill(y + offset, y + offset + g.channels, INT8_MIN);
      ForEachTap(g, n, oh, ow, [&](int64_t tap) { MaxInto(y + offset, x + tap, g.channels); });
    });
  });
}

void MaxPoolGrad(const PoolGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dx,
                 const ParallelFor& parallel_for) {
  if (NoWork(g)) return;
  const int64_t image = g.in_h * g.in_w * g.channels;
  parallel_for(g.batch, WindowCost(g), [&](int64_t first, int64_t last) {
    std::fill(dx + first * image, dx + last * image, 0);
    std::vector<int8_t> best(g.channels);
    std::vector<uint8_t> done(g.channels);
    ForEachWindow(g, first, last, [&](int64_t n, int64_t oh, int64_t ow, int64_t offset) {
      // The window maximum per channel, then its first occurrence in window
      // order takes the error.
      std::fill(best.begin(), best.end(), INT8_MIN);
      ForEachTap(g, n, oh, ow, [&](int64_t tap) { MaxInto(best.data(), x + tap, g.channels); });
      std::fill(done.begin(), done.end(), 0);
      ForEachTap(g, n, oh, ow, [&](int64_t tap) {
        RouteFirstMaximum(dx + tap, x + tap, best.data(), dy + offset, done.data(), g.channels);
      });
    });
  });
}

Status CheckMaxPoolCarrier(const PoolGeometry& g) {
  if (g.stride_h < g.k_h || g.stride_w < g.k_w || g.k_h * g.k_w > kMaxPoolCarrierMaxTaps) {
    return Status::Error("max_pool_carrier: windows must not overlap (stride >= pool size) and have at most " +
                         std::to_string(kMaxPoolCarrierMaxTaps) + " taps, got pool " + std::to_string(g.k_h) + "x" + std::to_string(g.k_w) +
                         ", strides " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w));
  }
  return Status::OK();
}

Status MaxPoolCarrier(const PoolGeometry& g, const float* x, float* y, uint8_t* which,
                      const ParallelFor& parallel_for) {
  KERAS_INT_RETURN_IF_ERROR(CheckMaxPoolCarrier(g));
  if (NoWork(g)) return Status::OK();
  const int32_t* in = reinterpret_cast<const int32_t*>(x);
  int32_t* out = reinterpret_cast<int32_t*>(y);
  const bool covered = WindowsCoverInput(g);
  std::atomic<bool> bad{false};
  parallel_for(g.batch * g.out_h, WindowCost(g) * g.out_w / std::max<int64_t>(g.out_h, 1),
               [&](int64_t first, int64_t last) {
    // Windows that tile the input see every element (and check it); others
    // leave some unread, so the shard holding an image's first output row
    // checks that whole image.
    const int64_t image = g.in_h * g.in_w * g.channels;
    for (int64_t n = (first + g.out_h - 1) / g.out_h; !covered && n * g.out_h < last; ++n) {
      if (AnyNonFinite(in + n * image, image)) bad = true;
    }
    std::vector<int32_t> best_key(g.channels), best_tap(g.channels);
    for (int64_t row = first; row < last; ++row) {
      const int64_t n = row / g.out_h, oh = row % g.out_h;
      const int64_t offset = row * g.out_w * g.channels;
      if (CarrierMaxRow(g, in + n * image, oh, out + offset, which + offset, best_key.data(), best_tap.data())) {
        bad = true;
      }
    }
  });
  return bad ? Status::Error("max_pool_carrier: input contains NaN or Inf") : Status::OK();
}

void MaxPoolCarrierGrad(const PoolGeometry& g, const float* dy, const uint8_t* which, float* dx,
                        const ParallelFor& parallel_for) {
  if (NoWork(g)) return;
  const int32_t* d = reinterpret_cast<const int32_t*>(dy);
  int32_t* out = reinterpret_cast<int32_t*>(dx);
  const int64_t image = g.in_h * g.in_w * g.channels;
  const bool covered = WindowsCoverInput(g);
  parallel_for(g.batch, WindowCost(g), [&](int64_t first, int64_t last) {
    // Every tapped element is written below; the others (if any) are zero.
    if (!covered) std::fill(out + first * image, out + last * image, 0);
    for (int64_t n = first; n < last; ++n) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t offset = (n * g.out_h + oh) * g.out_w * g.channels;
        CarrierRouteRow(g, d + offset, which + offset, oh, out + n * image);
      }
    }
  });
}

template <typename T, typename Acc>
void AvgPool(const PoolGeometry& g, const T* x, Acc* y, const ParallelFor& parallel_for) {
  if (NoWork(g)) return;
  parallel_for(g.batch, WindowCost(g), [&](int64_t first, int64_t last) {
    ForEachWindow(g, first, last, [&](int64_t n, int64_t oh, int64_t ow, int64_t offset) {
      Acc* out = y + offset;
      std::fill(out, out + g.channels, Acc{0});
      ForEachTap(g, n, oh, ow, [&](int64_t tap) { AddInto(out, x + tap, g.channels); });
      const int32_t multiplier = AvgPoolMultiplier(TapCount(g, oh, ow));
      for (int64_t c = 0; c < g.channels; ++c) out[c] *= multiplier;
    });
  });
}

template <typename T, typename Acc>
void AvgPoolGrad(const PoolGeometry& g, const T* dy, Acc* dx, const ParallelFor& parallel_for) {
  if (NoWork(g)) return;
  const int64_t image = g.in_h * g.in_w * g.channels;
  parallel_for(g.batch, WindowCost(g), [&](int64_t first, int64_t last) {
    std::fill(dx + first * image, dx + last * image, Acc{0});
    ForEachWindow(g, first, last, [&](int64_t n, int64_t oh, int64_t ow, int64_t offset) {
      const int32_t multiplier = AvgPoolMultiplier(TapCount(g, oh, ow));
      ForEachTap(g, n, oh, ow, [&](int64_t tap) { AddScaledInto(dx + tap, dy + offset, multiplier, g.channels); });
    });
  });
}

template void AvgPool<int8_t, int32_t>(const PoolGeometry&, const int8_t*, int32_t*, const ParallelFor&);
template void AvgPool<int16_t, int64_t>(const PoolGeometry&, const int16_t*, int64_t*, const ParallelFor&);
template void AvgPoolGrad<int8_t, int32_t>(const PoolGeometry&, const int8_t*, int32_t*, const ParallelFor&);
template void AvgPoolGrad<int16_t, int64_t>(const PoolGeometry&, const int16_t*, int64_t*, const ParallelFor&);

}  // namespace keras_int

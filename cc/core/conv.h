// Integer 2-D convolution, NHWC input and HWIO filter, any stride, dilation
// and SAME/VALID padding: forward, backprop-input and backprop-filter, each
// one exact GEMM whose operands are read straight from the tensors
// (implicit im2col, so no patch matrix is materialised).
#ifndef KERAS_INT_CC_CORE_CONV_H_
#define KERAS_INT_CC_CORE_CONV_H_

#include <cstdint>
#include <string>

#include "cc/core/parallel.h"
#include "cc/core/status.h"

namespace keras_int {

struct Conv2DGeometry {
  int64_t batch, in_h, in_w, in_c;
  int64_t k_h, k_w, out_c;
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_h, out_w, pad_top, pad_left;
};

// Fills out_h/out_w/pad_* from the rest, TensorFlow's SAME/VALID rules.
Status ComputeConv2DGeometry(bool same_padding, Conv2DGeometry* g);

// Same rules for one spatial dimension (also used by pooling).
Status ComputeWindowGeometry(int64_t in, int64_t window, int64_t stride, int64_t dilation,
                             bool same_padding, int64_t* out, int64_t* pad_before);

// out[N, OH, OW, O] = conv(x[N, H, W, C], w[KH, KW, C, O]).
Status Conv2D(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out,
              const ParallelFor& parallel_for);

// dx[N, H, W, C] = gradient of the convolution w.r.t. its input, given dy[N, OH, OW, O].
Status Conv2DBackpropInput(const Conv2DGeometry& g, const int8_t* w, const int8_t* dy,
                           int32_t* dx, const ParallelFor& parallel_for);

// dw[KH, KW, C, O] = gradient w.r.t. the filter, given x and dy.
Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy,
                            int32_t* dw, const ParallelFor& parallel_for);

// The DFP16 datapath: int16 mantissas, exact int64 results (gemm16.h).
Status Conv2D(const Conv2DGeometry& g, const int16_t* x, const int16_t* w, int64_t* out,
              const ParallelFor& parallel_for);
Status Conv2DBackpropInput(const Conv2DGeometry& g, const int16_t* w, const int16_t* dy, int64_t* dx,
                           const ParallelFor& parallel_for);
Status Conv2DBackpropFilter(const Conv2DGeometry& g, const int16_t* x, const int16_t* dy, int64_t* dw,
                            const ParallelFor& parallel_for);

namespace conv_internal {

// Whether Conv2D takes the direct path below: AVX-512 VNNI present (and
// KERAS_INT_GEMM is not "pairs"), no dilation along w, and filter rows of at
// most 16 bytes (k_w * in_c) in at most 16 quads (a first layer's 3x3 over 1
// or 3 channels).
bool UseShortRowsConv(const Conv2DGeometry& g);

// The direct forward convolution for short filter rows (conv_avx512.cc).
void Conv2DShortRowsAvx512Vnni(const Conv2DGeometry& g, const int8_t* x, const int8_t* w, int32_t* out,
                               const ParallelFor& parallel_for);

// Whether Conv2DBackpropFilter takes the direct path below: UseShortRowsConv,
// at most 16 taps (k_h * k_w * in_c), output rows short enough that one
// row's sums are exact in int32 (at most kMaxExactDepth pixels, rounded up
// to a multiple of 4) and at most 64 bytes between neighbouring pixels'
// patches (stride_w * in_c); other geometries take the GEMM.
bool UseShortRowsFilterGrad(const Conv2DGeometry& g);

// Its filter gradient: four pixels' errors per vpdpbusd lane against the
// same padded input rows, summed in int32 over chunks of whole rows and
// then in int64. False (and *error) when a gradient leaves int32 or the
// geometry is not UseShortRowsFilterGrad's.
bool Conv2DBackpropFilterShortRowsAvx512Vnni(const Conv2DGeometry& g, const int8_t* x, const int8_t* dy,
                                             int32_t* dw, const ParallelFor& parallel_for, std::string* error);

}  // namespace conv_internal
}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_CONV_H_

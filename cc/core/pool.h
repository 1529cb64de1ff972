// Integer pooling, NHWC: max-pool forward/backward and average pooling with
// the divisor folded in as an integer multiply (spec section 3).
#ifndef KERAS_INT_CC_CORE_POOL_H_
#define KERAS_INT_CC_CORE_POOL_H_

#include <cstdint>

#include "cc/core/parallel.h"
#include "cc/core/host_device.h"
#include "cc/core/limits.h"
#include "cc/core/status.h"

namespace keras_int {

struct PoolGeometry {
  int64_t batch, in_h, in_w, channels;
  int64_t k_h, k_w, stride_h, stride_w;
  int64_t out_h, out_w, pad_top, pad_left;
};

// Fills out_h/out_w/pad_* (TensorFlow's SAME/VALID rules).
Status ComputePoolGeometry(bool same_padding, PoolGeometry* g);

// Average pooling divides by the number n of window elements inside the
// input (TensorFlow's rule for SAME borders) as a multiply by round(2**16/n)
// at exponent -16 (kAvgPoolShift); n a power of two is exact.
KI_HOST_DEVICE int32_t AvgPoolMultiplier(int64_t n) {
  return static_cast<int32_t>(((int64_t{1} << (kAvgPoolShift + 1)) / n + 1) / 2);
}

// y = max over each window; padding never wins.
void MaxPool(const PoolGeometry& g, const int8_t* x, int8_t* y,
             const ParallelFor& parallel_for = SerialFor);

// dx[i] = sum of dy over the windows whose (first) maximum is element i.
void MaxPoolGrad(const PoolGeometry& g, const int8_t* x, const int8_t* dy, int32_t* dx,
                 const ParallelFor& parallel_for = SerialFor);

// Max pooling of a float32 carrier on its bit patterns, for windows that
// do not overlap (stride >= window) and have at most kMaxPoolCarrierMaxTaps
// (256) taps: the patterns,
// read as integers in value order (CarrierOrderKey), are compared, so no
// conversion to int8 and back is needed and a carrier's values are
// unchanged (the same result as quantize, MaxPool, dequantize). y gets the
// first maximum in window order (-0.0 as +0.0), which[o] its tap index for
// the gradient. NaN or Inf is an error.
Status CheckMaxPoolCarrier(const PoolGeometry& g);
Status MaxPoolCarrier(const PoolGeometry& g, const float* x, float* y, uint8_t* which,
                      const ParallelFor& parallel_for = SerialFor);

// dx = dy at each window's recorded tap, +0.0 elsewhere (no window overlaps,
// so nothing is summed).
void MaxPoolCarrierGrad(const PoolGeometry& g, const float* dy, const uint8_t* which, float* dx,
                        const ParallelFor& parallel_for = SerialFor);

// y = sum over each window * AvgPoolMultiplier(n), at exponent offset -16:
// int8 x into int32, or int16 x (DFP16) into int64.
template <typename T, typename Acc>
void AvgPool(const PoolGeometry& g, const T* x, Acc* y, const ParallelFor& parallel_for = SerialFor);

// dx[i] = sum over windows containing i of dy * AvgPoolMultiplier(n), offset -16.
template <typename T, typename Acc>
void AvgPoolGrad(const PoolGeometry& g, const T* dy, Acc* dx, const ParallelFor& parallel_for = SerialFor);

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_POOL_H_

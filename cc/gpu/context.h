// CUDA twins of the core's functions (cc/core), free of TensorFlow: what
// every family shares (this header, context.cu.cc, launch.cuh), and one
// header + .cu.cc per family (dfp, add, relu, gemm, pool, training).
//
// Every pointer is device memory (exponents, sizes and options are host
// values); work is queued on the caller's stream. Functions that must know a
// data-dependent value on the host (a bit width, a NaN, an overflow) copy one
// word back and wait for the stream; the others only queue work.
// Results are bit-identical to the CPU core: both compile the same
// per-element arithmetic (cc/core/rounding.h, carrier_element.h and each
// family's *_element.h), and integer sums are exact in any order. The
// headers need no CUDA headers, so the TensorFlow kernel adapters include
// them with a plain C++ compiler.
#ifndef KERAS_INT_CC_GPU_CONTEXT_H_
#define KERAS_INT_CC_GPU_CONTEXT_H_

#include <cstddef>

#include "cc/core/status.h"

namespace keras_int {
namespace gpu {

// Device memory every call may use for its reductions and flags.
constexpr size_t kScratchBytes = 64;

struct Context {
  void* stream;   // a cudaStream_t (nullptr: the legacy default stream)
  void* scratch;  // kScratchBytes of device memory, used by one call at a time
};

// Makes the stream's device current on this thread (TensorFlow may run an
// op on any of its GPUs; the runtime calls below act on the current one).
Status UseStreamDevice(const Context& ctx);

// Device-to-device copy on the stream.
Status Copy(const Context& ctx, void* dst, const void* src, size_t bytes);

}  // namespace gpu
}  // namespace keras_int

#endif  // KERAS_INT_CC_GPU_CONTEXT_H_

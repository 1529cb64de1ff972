// C API over the CPU core (cc/core) and its CUDA twins (cc/gpu), for the
// NumPy-only test harness and benchmarks/gpu.py (loaded with ctypes).
//
// ki_cpu_* take host arrays; ki_gpu_* take device pointers from ki_malloc;
// ki_emu_* run the GPU kernels' own index arithmetic (gemm_plan.h readers and
// depth split, pool_elements.h) on the host, in plain loops, so that it is
// checked even where there is no GPU.
// Every function returns 0 on success, or -1 with the message in
// ki_last_error(). Geometries travel as int64 arrays in the order of the
// core's structs (Conv2DGeometry: batch, in_h, in_w, in_c, k_h, k_w, out_c,
// stride_h, stride_w, dilation_h, dilation_w; PoolGeometry: batch, in_h,
// in_w, channels, k_h, k_w, stride_h, stride_w) plus a `same` flag.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "cc/core/adam.h"
#include "cc/core/add.h"
#include "cc/core/carrier_element.h"
#include "cc/core/conv.h"
#include "cc/core/cross_entropy.h"
#include "cc/core/dfp.h"
#include "cc/core/embedding.h"
#include "cc/core/gelu.h"
#include "cc/core/gemm.h"
#include "cc/core/gemm16.h"
#include "cc/core/layer_norm.h"
#include "cc/core/norm.h"
#include "cc/core/pool.h"
#include "cc/core/sgd.h"
#include "cc/core/softmax.h"
#include "cc/gpu/gemm_plan.h"
#include "cc/gpu/add.h"
#include "cc/gpu/context.h"
#include "cc/gpu/dfp.h"
#include "cc/gpu/embedding.h"
#include "cc/gpu/gelu.h"
#include "cc/gpu/gemm.h"
#include "cc/gpu/gemm16.h"
#include "cc/gpu/norm.h"
#include "cc/gpu/pool.h"
#include "cc/gpu/relu.h"
#include "cc/gpu/softmax.h"
#include "cc/gpu/training.h"
#include "cc/gpu/pool_elements.h"

using keras_int::Conv2DGeometry;
using keras_int::PoolGeometry;
using keras_int::Rounding;
using keras_int::RoundingSeed;
using keras_int::SerialFor;
using keras_int::SoftmaxScale;
using keras_int::Status;
namespace gpu = keras_int::gpu;

namespace {

thread_local std::string last_error;

int Report(const Status& status) {
  if (status.ok()) return 0;
  last_error = status.message();
  return -1;
}

int ReportCuda(cudaError_t error) {
  if (error == cudaSuccess) return 0;
  last_error = cudaGetErrorString(error);
  return -1;
}

// One stream and scratch for every call.
const gpu::Context& Gpu() {
  static gpu::Context context = [] {
    gpu::Context c{nullptr, nullptr};
    cudaStreamCreate(reinterpret_cast<cudaStream_t*>(&c.stream));
    cudaMalloc(&c.scratch, gpu::kScratchBytes);
    return c;
  }();
  return context;
}

Rounding RoundingOf(int mode) { return static_cast<Rounding>(mode); }

Status ConvGeometry(const int64_t* v, int same, Conv2DGeometry* g) {
  *g = Conv2DGeometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], 0, 0, 0, 0};
  return keras_int::ComputeConv2DGeometry(same != 0, g);
}

Status PoolGeometryOf(const int64_t* v, int same, PoolGeometry* g) {
  *g = PoolGeometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 0, 0, 0, 0};
  return keras_int::ComputePoolGeometry(same != 0, g);
}

// Workspace of a GEMM, allocated for the call.
template <typename Fn>
int WithWorkspace(size_t bytes, Fn fn) {
  void* workspace = nullptr;
  if (bytes > 0 && ReportCuda(cudaMalloc(&workspace, bytes))) return -1;
  const int result = Report(fn(workspace));
  cudaFree(workspace);
  return result;
}

// Milliseconds per call of run() over `iterations` calls after one warm-up,
// timed with CUDA events on the harness stream.
template <typename Fn>
int TimeCalls(Fn run, int iterations, float* ms) {
  int result = Report(run());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaStream_t stream = static_cast<cudaStream_t>(Gpu().stream);
  cudaEventRecord(start, stream);
  for (int i = 0; i < iterations && result == 0; ++i) result = Report(run());
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  cudaEventElapsedTime(ms, start, stop);
  *ms /= iterations;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return result;
}

// The GPU GEMM's arithmetic on the host: the same element readers and depth
// parts; each part must be exact in int32, the sum of the parts in int64 must
// fit int32.
template <typename Problem>
Status EmulateGemm(const Problem& p, int32_t* c) {
  int64_t part_depth = 1;
  const int64_t parts = p.K == 0 ? 0 : gpu::SplitDepth(p.M, p.N, p.K, &part_depth);
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.N; ++j) {
      int64_t total = 0;
      for (int64_t part = 0; part < parts; ++part) {
        int64_t partial = 0;
        const int64_t end = std::min(p.K, (part + 1) * part_depth);
        for (int64_t k = part * part_depth; k < end; ++k) partial += int64_t{p.a(i, k)} * p.b(k, j);
        if (partial > INT32_MAX || partial < INT32_MIN) return Status::Error("emulated GEMM: a part is not exact in int32");
        total += partial;
      }
      if (total > INT32_MAX || total < INT32_MIN) {
        return Status::Error("int32 overflow: a dot product of depth " + std::to_string(p.K) + " sums to " +
                             std::to_string(total) + ", outside the int32 range of the accumulator");
      }
      c[i * p.N + j] = static_cast<int32_t>(total);
    }
  }
  return Status::OK();
}

// Outputs of the forward passes, inputs of the backward ones: one GPU thread each.
int64_t PoolOutputs(const PoolGeometry& g) { return g.batch * g.out_h * g.out_w * g.channels; }
int64_t PoolInputs(const PoolGeometry& g) { return g.batch * g.in_h * g.in_w * g.channels; }

Status NonFiniteCheck(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if ((keras_int::FloatBits(x[i]) & 0x7F800000u) == 0x7F800000u) {
      return Status::Error("max_pool_carrier: input contains NaN or Inf");
    }
  }
  return Status::OK();
}

}  // namespace

extern "C" {

const char* ki_last_error() { return last_error.c_str(); }

int ki_device_count() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

int ki_device_name(char* out, int size) {
  cudaDeviceProp prop;
  if (ReportCuda(cudaGetDeviceProperties(&prop, 0))) return -1;
  snprintf(out, size, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
  return 0;
}

void* ki_malloc(int64_t bytes) {
  void* p = nullptr;
  return cudaMalloc(&p, bytes > 0 ? bytes : 1) == cudaSuccess ? p : nullptr;
}
void ki_free(void* p) { cudaFree(p); }
int ki_to_device(void* dst, const void* src, int64_t bytes) {
  return ReportCuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
int ki_to_host(void* dst, const void* src, int64_t bytes) {
  if (ReportCuda(cudaStreamSynchronize(static_cast<cudaStream_t>(Gpu().stream)))) return -1;
  return ReportCuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
int ki_synchronize() { return ReportCuda(cudaStreamSynchronize(static_cast<cudaStream_t>(Gpu().stream))); }

// ---- DFP ----
int ki_cpu_quantize8(const float* x, int64_t n, int8_t* q, int* e) { return Report(keras_int::Quantize<int8_t>(x, n, q, e)); }
int ki_gpu_quantize8(const float* x, int64_t n, int8_t* q, int* e) { return Report(gpu::Quantize<int8_t>(Gpu(), x, n, q, e)); }
int ki_cpu_quantize16(const float* x, int64_t n, int16_t* q, int* e) { return Report(keras_int::Quantize<int16_t>(x, n, q, e)); }
int ki_gpu_quantize16(const float* x, int64_t n, int16_t* q, int* e) { return Report(gpu::Quantize<int16_t>(Gpu(), x, n, q, e)); }
int ki_cpu_dequantize8(const int8_t* q, int64_t n, int e, float* out) { return Report(keras_int::Dequantize<int8_t>(q, n, e, out)); }
int ki_gpu_dequantize8(const int8_t* q, int64_t n, int e, float* out) { return Report(gpu::Dequantize<int8_t>(Gpu(), q, n, e, out)); }
int ki_cpu_dequantize16(const int16_t* q, int64_t n, int e, float* out) { return Report(keras_int::Dequantize<int16_t>(q, n, e, out)); }
int ki_gpu_dequantize16(const int16_t* q, int64_t n, int e, float* out) { return Report(gpu::Dequantize<int16_t>(Gpu(), q, n, e, out)); }

int ki_cpu_requantize8(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, int8_t* q, int* out_e) {
  return Report(keras_int::Requantize<int8_t>(acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, q, out_e, SerialFor));
}
int ki_gpu_requantize8(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, int8_t* q, int* out_e) {
  return Report(gpu::Requantize<int8_t>(Gpu(), acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, q, out_e));
}
int ki_cpu_requantize16(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, int16_t* q, int* out_e) {
  return Report(keras_int::Requantize<int16_t>(acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, q, out_e, SerialFor));
}
int ki_gpu_requantize16(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, int16_t* q, int* out_e) {
  return Report(gpu::Requantize<int16_t>(Gpu(), acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, q, out_e));
}
int ki_cpu_requantize_carrier(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, float* out, int* out_e) {
  return Report(keras_int::RequantizeToCarrier(acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, out, out_e, SerialFor));
}
int ki_gpu_requantize_carrier(const int32_t* acc, int64_t n, int e, int mode, uint64_t key, uint64_t step, float* out, int* out_e) {
  return Report(gpu::RequantizeToCarrier(Gpu(), acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, out, out_e));
}
int ki_cpu_round_shift(const int32_t* x, int64_t n, int shift, int mode, uint64_t key, uint64_t step, int32_t limit, int32_t* y) {
  return Report(keras_int::RoundShiftTensor(x, n, shift, RoundingOf(mode), RoundingSeed{key, step}, limit, y));
}
int ki_gpu_round_shift(const int32_t* x, int64_t n, int shift, int mode, uint64_t key, uint64_t step, int32_t limit, int32_t* y) {
  return Report(gpu::RoundShiftTensor(Gpu(), x, n, shift, RoundingOf(mode), RoundingSeed{key, step}, limit, y));
}
int ki_cpu_bit_length(const int32_t* x, int64_t n, int* bits) { *bits = keras_int::MaxBitLength(x, n); return 0; }
int ki_gpu_bit_length(const int32_t* x, int64_t n, int* bits) { return Report(gpu::MaxBitLength(Gpu(), x, n, bits)); }

int ki_cpu_aligned_add(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc, int* e) {
  keras_int::AlignedAdd(a, ea, b, eb, n, acc, e);
  return 0;
}
int ki_gpu_aligned_add(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc, int* e) {
  return Report(gpu::AlignedAdd(Gpu(), a, ea, b, eb, n, acc, e));
}
int ki_cpu_add_bias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  return Report(keras_int::AddBias(acc, rows, channels, bias, shift));
}
int ki_gpu_add_bias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  return Report(gpu::AddBias(Gpu(), acc, rows, channels, bias, shift));
}
int ki_gpu_relu(const float* x, int64_t n, float* y, uint32_t* mask) { return Report(gpu::Relu(Gpu(), x, n, y, mask)); }
int ki_gpu_relu_grad(const float* dy, const uint32_t* mask, int64_t n, float* dx) {
  return Report(gpu::ReluGrad(Gpu(), dy, mask, n, dx));
}

// ---- GEMM and convolution ----
int ki_cpu_matmul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, int tx, int tw, int32_t* out) {
  return Report(keras_int::MatMul(x, w, M, N, K, tx != 0, tw != 0, out, SerialFor));
}
int ki_gpu_matmul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, int tx, int tw, int32_t* out) {
  return WithWorkspace(gpu::MatMulWorkspaceBytes(M, N, K), [&](void* ws) {
    return gpu::MatMul(Gpu(), x, w, M, N, K, tx != 0, tw != 0, out, ws);
  });
}
int ki_gpu_half_matmul(const void* x, const void* w, int64_t M, int64_t N, int64_t K, float* out) {
  return Report(gpu::HalfMatMul(Gpu(), x, w, M, N, K, out));
}

int ki_conv_output(const int64_t* geometry, int same, int64_t* out_hw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  out_hw[0] = g.out_h, out_hw[1] = g.out_w;
  return 0;
}
int ki_cpu_conv2d(const int64_t* geometry, int same, const int8_t* x, const int8_t* w, int32_t* out) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2D(g, x, w, out, SerialFor));
}
int ki_gpu_conv2d(const int64_t* geometry, int same, const int8_t* x, const int8_t* w, int32_t* out) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2DWorkspaceBytes(g), [&](void* ws) { return gpu::Conv2D(Gpu(), g, x, w, out, ws); });
}
int ki_cpu_conv2d_backprop_input(const int64_t* geometry, int same, const int8_t* w, const int8_t* dy, int32_t* dx) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2DBackpropInput(g, w, dy, dx, SerialFor));
}
int ki_gpu_conv2d_backprop_input(const int64_t* geometry, int same, const int8_t* w, const int8_t* dy, int32_t* dx) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2DBackpropInputWorkspaceBytes(g),
                       [&](void* ws) { return gpu::Conv2DBackpropInput(Gpu(), g, w, dy, dx, ws); });
}
int ki_cpu_conv2d_backprop_filter(const int64_t* geometry, int same, const int8_t* x, const int8_t* dy, int32_t* dw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2DBackpropFilter(g, x, dy, dw, SerialFor));
}
int ki_gpu_conv2d_backprop_filter(const int64_t* geometry, int same, const int8_t* x, const int8_t* dy, int32_t* dw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2DBackpropFilterWorkspaceBytes(g),
                       [&](void* ws) { return gpu::Conv2DBackpropFilter(Gpu(), g, x, dy, dw, ws); });
}

// ---- the DFP16 products (int16 operands, int64 results) ----
int ki_cpu_matmul16(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, int tx, int tw,
                    int64_t* out) {
  return Report(keras_int::MatMul(x, w, M, N, K, tx != 0, tw != 0, out, SerialFor));
}
int ki_gpu_matmul16(const int16_t* x, const int16_t* w, int64_t M, int64_t N, int64_t K, int tx, int tw,
                    int64_t* out) {
  return WithWorkspace(gpu::MatMul16WorkspaceBytes(M, N, K), [&](void* ws) {
    return gpu::MatMul(Gpu(), x, w, M, N, K, tx != 0, tw != 0, out, ws);
  });
}
int ki_cpu_conv2d16(const int64_t* geometry, int same, const int16_t* x, const int16_t* w, int64_t* out) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2D(g, x, w, out, SerialFor));
}
int ki_gpu_conv2d16(const int64_t* geometry, int same, const int16_t* x, const int16_t* w, int64_t* out) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2D16WorkspaceBytes(g), [&](void* ws) { return gpu::Conv2D(Gpu(), g, x, w, out, ws); });
}
int ki_cpu_conv2d16_backprop_input(const int64_t* geometry, int same, const int16_t* w, const int16_t* dy,
                                   int64_t* dx) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2DBackpropInput(g, w, dy, dx, SerialFor));
}
int ki_gpu_conv2d16_backprop_input(const int64_t* geometry, int same, const int16_t* w, const int16_t* dy,
                                   int64_t* dx) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2DBackpropInput16WorkspaceBytes(g),
                       [&](void* ws) { return gpu::Conv2DBackpropInput(Gpu(), g, w, dy, dx, ws); });
}
int ki_cpu_conv2d16_backprop_filter(const int64_t* geometry, int same, const int16_t* x, const int16_t* dy,
                                    int64_t* dw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(keras_int::Conv2DBackpropFilter(g, x, dy, dw, SerialFor));
}
int ki_gpu_conv2d16_backprop_filter(const int64_t* geometry, int same, const int16_t* x, const int16_t* dy,
                                    int64_t* dw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return WithWorkspace(gpu::Conv2DBackpropFilter16WorkspaceBytes(g),
                       [&](void* ws) { return gpu::Conv2DBackpropFilter(Gpu(), g, x, dy, dw, ws); });
}
int ki_cpu_requantize64(const int64_t* acc, int64_t n, int e, int mode, int bits, uint64_t key, uint64_t step,
                        float* out, int* out_e) {
  return Report(keras_int::RequantizeToCarrier(acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, out, out_e,
                                               SerialFor, bits));
}
int ki_gpu_requantize64(const int64_t* acc, int64_t n, int e, int mode, int bits, uint64_t key, uint64_t step,
                        float* out, int* out_e) {
  return Report(gpu::RequantizeToCarrier(Gpu(), acc, n, e, RoundingOf(mode), RoundingSeed{key, step}, out, out_e,
                                         bits));
}

int ki_emu_matmul(const int8_t* x, const int8_t* w, int64_t M, int64_t N, int64_t K, int tx, int tw, int32_t* out) {
  return Report(EmulateGemm(gpu::MatMulProblem(x, w, M, N, K, tx != 0, tw != 0), out));
}
int ki_emu_conv2d(const int64_t* geometry, int same, const int8_t* x, const int8_t* w, int32_t* out) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(EmulateGemm(gpu::Conv2DProblem(g, x, w), out));
}
int ki_emu_conv2d_backprop_input(const int64_t* geometry, int same, const int8_t* w, const int8_t* dy, int32_t* dx) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(EmulateGemm(gpu::Conv2DBackpropInputProblem(g, w, dy), dx));
}
int ki_emu_conv2d_backprop_filter(const int64_t* geometry, int same, const int8_t* x, const int8_t* dy, int32_t* dw) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  return Report(EmulateGemm(gpu::Conv2DBackpropFilterProblem(g, x, dy), dw));
}

// ---- pooling ----
int ki_pool_output(const int64_t* geometry, int same, int64_t* out_hw) {
  PoolGeometry g;
  if (Report(PoolGeometryOf(geometry, same, &g))) return -1;
  out_hw[0] = g.out_h, out_hw[1] = g.out_w;
  return 0;
}
#define KI_POOL_PAIR(name, cpu_call, gpu_call, emu_element, ...)                     \
  int ki_cpu_##name(const int64_t* geometry, int same, __VA_ARGS__) {                \
    PoolGeometry g;                                                                   \
    if (Report(PoolGeometryOf(geometry, same, &g))) return -1;                        \
    cpu_call;                                                                         \
    return 0;                                                                         \
  }                                                                                   \
  int ki_emu_##name(const int64_t* geometry, int same, __VA_ARGS__) {                \
    PoolGeometry g;                                                                   \
    if (Report(PoolGeometryOf(geometry, same, &g))) return -1;                        \
    emu_element;                                                                      \
    return 0;                                                                         \
  }                                                                                   \
  int ki_gpu_##name(const int64_t* geometry, int same, __VA_ARGS__) {                \
    PoolGeometry g;                                                                   \
    if (Report(PoolGeometryOf(geometry, same, &g))) return -1;                        \
    return Report(gpu_call);                                                          \
  }
KI_POOL_PAIR(max_pool, keras_int::MaxPool(g, x, y), gpu::MaxPool(Gpu(), g, x, y),
             for (int64_t i = 0; i < PoolOutputs(g); ++i) y[i] = gpu::MaxPoolElement(g, x, i),
             const int8_t* x, int8_t* y)
KI_POOL_PAIR(max_pool_grad, keras_int::MaxPoolGrad(g, x, dy, dx), gpu::MaxPoolGrad(Gpu(), g, x, dy, dx),
             for (int64_t i = 0; i < PoolInputs(g); ++i) dx[i] = gpu::MaxPoolGradElement(g, x, dy, i),
             const int8_t* x, const int8_t* dy, int32_t* dx)
KI_POOL_PAIR(avg_pool, keras_int::AvgPool(g, x, y), gpu::AvgPool(Gpu(), g, x, y),
             for (int64_t i = 0; i < PoolOutputs(g); ++i) y[i] = (gpu::AvgPoolElement<int8_t, int32_t>)(g, x, i),
             const int8_t* x, int32_t* y)
KI_POOL_PAIR(avg_pool_grad, keras_int::AvgPoolGrad(g, dy, dx), gpu::AvgPoolGrad(Gpu(), g, dy, dx),
             for (int64_t i = 0; i < PoolInputs(g); ++i) dx[i] = (gpu::AvgPoolGradElement<int8_t, int32_t>)(g, dy, i),
             const int8_t* dy, int32_t* dx)
KI_POOL_PAIR(max_pool_carrier, if (Report(keras_int::MaxPoolCarrier(g, x, y, which))) return -1,
             gpu::MaxPoolCarrier(Gpu(), g, x, y, which),
             if (Report(keras_int::CheckMaxPoolCarrier(g))) return -1;
             if (Report(NonFiniteCheck(x, PoolInputs(g)))) return -1;  // the GPU's reduction, on the host
             for (int64_t i = 0; i < PoolOutputs(g); ++i) reinterpret_cast<int32_t*>(y)[i] =
                 gpu::MaxPoolCarrierElement(g, reinterpret_cast<const int32_t*>(x), i, &which[i]),
             const float* x, float* y, uint8_t* which)
KI_POOL_PAIR(max_pool_carrier_grad, keras_int::MaxPoolCarrierGrad(g, dy, which, dx),
             gpu::MaxPoolCarrierGrad(Gpu(), g, dy, which, dx),
             for (int64_t i = 0; i < PoolInputs(g); ++i) reinterpret_cast<int32_t*>(dx)[i] =
                 gpu::MaxPoolCarrierGradElement(g, reinterpret_cast<const int32_t*>(dy), which, i),
             const float* dy, const uint8_t* which, float* dx)
#undef KI_POOL_PAIR

// ---- training ----
int ki_cpu_ce_grad(const int8_t* logits, int64_t batch, int64_t classes, int e, const int64_t* labels, int mode,
                   uint64_t key, uint64_t step, int8_t* err) {
  keras_int::SoftmaxCrossEntropyGrad(logits, batch, classes, e, labels, RoundingOf(mode), RoundingSeed{key, step}, err);
  return 0;
}
int ki_gpu_ce_grad(const int8_t* logits, int64_t batch, int64_t classes, int e, const int64_t* labels, int mode,
                   uint64_t key, uint64_t step, int8_t* err) {
  return Report(gpu::SoftmaxCrossEntropyGrad<int8_t, int64_t>(Gpu(), logits, batch, classes, e, labels, RoundingOf(mode),
                                                      RoundingSeed{key, step}, err));
}
int ki_gpu_ce_grad_int32_labels(const int8_t* logits, int64_t batch, int64_t classes, int e, const int32_t* labels,
                                int mode, uint64_t key, uint64_t step, int8_t* err) {
  return Report(gpu::SoftmaxCrossEntropyGrad<int8_t, int32_t>(Gpu(), logits, batch, classes, e, labels, RoundingOf(mode),
                                                      RoundingSeed{key, step}, err));
}

#define KI_SGD_PAIR(bits, T)                                                                              \
  int ki_cpu_sgd##bits(T* w, const int32_t* g, int64_t n, int mu, int momentum, int decay, T* buffer) {   \
    return Report(keras_int::IntegerSgdUpdate<T>(w, g, n, keras_int::SgdOptions{mu, momentum, decay},   \
                                                 buffer));                                                \
  }                                                                                                       \
  int ki_gpu_sgd##bits(T* w, const int32_t* g, int64_t n, int mu, int momentum, int decay, T* buffer) {   \
    return Report(gpu::IntegerSgdUpdate<T>(Gpu(), w, g, n, keras_int::SgdOptions{mu, momentum, decay},  \
                                           buffer));                                                      \
  }
KI_SGD_PAIR(8, int8_t)
KI_SGD_PAIR(16, int16_t)
KI_SGD_PAIR(32, int32_t)
#undef KI_SGD_PAIR

#define KI_ADAM_PAIR(bits, T)                                                                                  \
  int ki_cpu_adam##bits(T* w, const int32_t* g, int32_t* m, int32_t* v, int64_t n, int64_t t, int64_t beta1,  \
                        int64_t beta2, int shift) {                                                            \
    return Report(keras_int::IntegerAdamUpdate<T>(w, g, m, v, n, t, keras_int::AdamOptions{beta1, beta2, shift})); \
  }                                                                                                            \
  int ki_gpu_adam##bits(T* w, const int32_t* g, int32_t* m, int32_t* v, int64_t n, int64_t t, int64_t beta1,  \
                        int64_t beta2, int shift) {                                                            \
    return Report(gpu::IntegerAdamUpdate<T>(Gpu(), w, g, m, v, n, t, keras_int::AdamOptions{beta1, beta2, shift})); \
  }
KI_ADAM_PAIR(8, int8_t)
KI_ADAM_PAIR(16, int16_t)
KI_ADAM_PAIR(32, int32_t)
#undef KI_ADAM_PAIR

// ---- batch normalization (gamma, beta and epsilon travel as NormParams' fields) ----
int ki_cpu_batch_norm_training(const int8_t* q, int64_t rows, int64_t channels, int x_e, const int8_t* gamma,
                               const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e, int mode, uint64_t key,
                               uint64_t step, float* y, int* y_e, int64_t* x_sum, int64_t* inv_sqrt,
                               int32_t* inv_shift, int32_t* mean, int* mean_e, int32_t* variance, int* variance_e) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return Report(keras_int::BatchNormTraining(q, rows, channels, x_e, params, RoundingOf(mode), RoundingSeed{key, step},
                                             y, y_e, x_sum, inv_sqrt, inv_shift, mean, mean_e, variance, variance_e));
}
int ki_gpu_batch_norm_training(const int8_t* q, int64_t rows, int64_t channels, int x_e, const int8_t* gamma,
                               const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e, int mode, uint64_t key,
                               uint64_t step, float* y, int* y_e, int64_t* x_sum, int64_t* inv_sqrt,
                               int32_t* inv_shift, int32_t* mean, int* mean_e, int32_t* variance, int* variance_e) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return WithWorkspace(gpu::BatchNormWorkspaceBytes(channels), [&](void* ws) {
    return gpu::BatchNormTraining(Gpu(), q, rows, channels, x_e, params, RoundingOf(mode), RoundingSeed{key, step}, y,
                                  y_e, x_sum, inv_sqrt, inv_shift, mean, mean_e, variance, variance_e, ws);
  });
}
int ki_cpu_batch_norm_inference(const int8_t* q, int64_t rows, int64_t channels, int x_e, const int8_t* gamma,
                                const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e,
                                const int32_t* moving_mean, int moving_mean_e, const int32_t* moving_variance,
                                int moving_variance_e, int mode, uint64_t key, uint64_t step, float* y, int* y_e,
                                int64_t* count, int64_t* inv_sqrt, int32_t* inv_shift) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return Report(keras_int::BatchNormInference(q, rows, channels, x_e, params, moving_mean, moving_mean_e,
                                              moving_variance, moving_variance_e, RoundingOf(mode),
                                              RoundingSeed{key, step}, y, y_e, count, inv_sqrt, inv_shift));
}
int ki_gpu_batch_norm_inference(const int8_t* q, int64_t rows, int64_t channels, int x_e, const int8_t* gamma,
                                const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e,
                                const int32_t* moving_mean, int moving_mean_e, const int32_t* moving_variance,
                                int moving_variance_e, int mode, uint64_t key, uint64_t step, float* y, int* y_e,
                                int64_t* count, int64_t* inv_sqrt, int32_t* inv_shift) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return WithWorkspace(gpu::BatchNormWorkspaceBytes(channels), [&](void* ws) {
    return gpu::BatchNormInference(Gpu(), q, rows, channels, x_e, params, moving_mean, moving_mean_e,
                                   moving_variance, moving_variance_e, RoundingOf(mode), RoundingSeed{key, step}, y,
                                   y_e, count, inv_sqrt, inv_shift, ws);
  });
}
int ki_cpu_batch_norm_frozen_grad(const int8_t* err, int err_e, int64_t rows, int64_t channels, int x_e,
                                  const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                                  const int8_t* gamma, int gamma_e, float* dx, int* dx_e) {
  return Report(keras_int::BatchNormFrozenGrad(err, err_e, rows, channels, x_e, count, inv_sqrt, inv_shift, gamma,
                                               gamma_e, dx, dx_e));
}
int ki_gpu_batch_norm_frozen_grad(const int8_t* err, int err_e, int64_t rows, int64_t channels, int x_e,
                                  const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                                  const int8_t* gamma, int gamma_e, float* dx, int* dx_e) {
  return WithWorkspace(gpu::BatchNormWorkspaceBytes(channels), [&](void* ws) {
    return gpu::BatchNormFrozenGrad(Gpu(), err, err_e, rows, channels, x_e, count, inv_sqrt, inv_shift, gamma,
                                    gamma_e, dx, dx_e, ws);
  });
}
int ki_cpu_batch_norm_grad(const int8_t* err, int err_e, const int8_t* q, int64_t rows, int64_t channels, int x_e,
                           const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_e, float* dx, int* dx_e, int32_t* dgamma, int32_t* dbeta) {
  return Report(keras_int::BatchNormGrad(err, err_e, q, rows, channels, x_e, x_sum, inv_sqrt, inv_shift, gamma,
                                         gamma_e, dx, dx_e, dgamma, dbeta));
}
int ki_gpu_batch_norm_grad(const int8_t* err, int err_e, const int8_t* q, int64_t rows, int64_t channels, int x_e,
                           const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_e, float* dx, int* dx_e, int32_t* dgamma, int32_t* dbeta) {
  return WithWorkspace(gpu::BatchNormWorkspaceBytes(channels), [&](void* ws) {
    return gpu::BatchNormGrad(Gpu(), err, err_e, q, rows, channels, x_e, x_sum, inv_sqrt, inv_shift, gamma, gamma_e,
                              dx, dx_e, dgamma, dbeta, ws);
  });
}

// ---- layer normalization ----
int ki_cpu_layer_norm(const int8_t* q, int64_t rows, int64_t features, int x_e, const int8_t* gamma,
                      const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e, int mode, uint64_t key, uint64_t step,
                      float* y, int* y_e, int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return Report(keras_int::LayerNorm(q, rows, features, x_e, params, RoundingOf(mode), RoundingSeed{key, step}, y,
                                     y_e, x_sum, inv_sqrt, inv_shift));
}
int ki_gpu_layer_norm(const int8_t* q, int64_t rows, int64_t features, int x_e, const int8_t* gamma,
                      const int32_t* beta, int gamma_e, int64_t eps_m, int eps_e, int mode, uint64_t key, uint64_t step,
                      float* y, int* y_e, int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift) {
  const keras_int::NormParams params{gamma, beta, gamma_e, eps_m, eps_e};
  return WithWorkspace(gpu::LayerNormWorkspaceBytes(rows, features), [&](void* ws) {
    return gpu::LayerNorm(Gpu(), q, rows, features, x_e, params, RoundingOf(mode), RoundingSeed{key, step}, y, y_e,
                          x_sum, inv_sqrt, inv_shift, ws);
  });
}
int ki_cpu_layer_norm_grad(const int8_t* err, int err_e, const int8_t* q, int64_t rows, int64_t features, int x_e,
                           const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_e, int dx_bits, float* dx, int* dx_e, int32_t* dgamma,
                           int32_t* dbeta) {
  return Report(keras_int::LayerNormGrad(err, err_e, q, rows, features, x_e, x_sum, inv_sqrt, inv_shift, gamma,
                                         gamma_e, dx_bits, dx, dx_e, dgamma, dbeta));
}
int ki_gpu_layer_norm_grad(const int8_t* err, int err_e, const int8_t* q, int64_t rows, int64_t features, int x_e,
                           const int64_t* x_sum, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_e, int dx_bits, float* dx, int* dx_e, int32_t* dgamma,
                           int32_t* dbeta) {
  return WithWorkspace(gpu::LayerNormWorkspaceBytes(rows, features), [&](void* ws) {
    return gpu::LayerNormGrad(Gpu(), err, err_e, q, rows, features, x_e, x_sum, inv_sqrt, inv_shift, gamma, gamma_e,
                              dx_bits, dx, dx_e, dgamma, dbeta, ws);
  });
}

// ---- softmax (the scale travels as SoftmaxScale's fields; a null mask keeps every entry) ----
int ki_cpu_softmax(const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n, int e, int64_t multiplier,
                   int shift, int32_t* probabilities) {
  return Report(keras_int::SoftmaxProbabilities(q, mask, rows, n, e, SoftmaxScale{multiplier, shift}, probabilities));
}
int ki_gpu_softmax(const int8_t* q, const uint8_t* mask, int64_t rows, int64_t n, int e, int64_t multiplier,
                   int shift, int32_t* probabilities) {
  return Report(gpu::SoftmaxProbabilities(Gpu(), q, mask, rows, n, e, SoftmaxScale{multiplier, shift}, probabilities));
}
int ki_cpu_softmax_grad(const int8_t* err, int err_e, const int8_t* y, int y_e, int64_t rows, int64_t n,
                        int64_t multiplier, int shift, float* dx, int* dx_e) {
  return Report(keras_int::SoftmaxGrad(err, err_e, y, y_e, rows, n, SoftmaxScale{multiplier, shift}, dx, dx_e));
}
int ki_gpu_softmax_grad(const int8_t* err, int err_e, const int8_t* y, int y_e, int64_t rows, int64_t n,
                        int64_t multiplier, int shift, float* dx, int* dx_e) {
  return WithWorkspace(gpu::SoftmaxGradWorkspaceBytes(rows), [&](void* ws) {
    return gpu::SoftmaxGrad(Gpu(), err, err_e, y, y_e, rows, n, SoftmaxScale{multiplier, shift}, dx, dx_e, ws);
  });
}

// ---- GELU (the int32 accumulators, before the requantize) ----
int ki_cpu_gelu(const int8_t* q, int64_t n, int e, int32_t* acc) {
  keras_int::GeluAccumulate(q, n, e, acc);
  return 0;
}
int ki_gpu_gelu(const int8_t* q, int64_t n, int e, int32_t* acc) {
  return Report(gpu::GeluAccumulate(Gpu(), q, n, e, acc));
}
int ki_cpu_gelu_grad(const int8_t* err, const int8_t* x_q, int64_t n, int x_e, int32_t* acc) {
  keras_int::GeluGradAccumulate(err, x_q, n, x_e, acc);
  return 0;
}
int ki_gpu_gelu_grad(const int8_t* err, const int8_t* x_q, int64_t n, int x_e, int32_t* acc) {
  return Report(gpu::GeluGradAccumulate(Gpu(), err, x_q, n, x_e, acc));
}

// ---- embedding (ki_*_embedding32 / 64: int32 or int64 ids) ----
#define KI_EMBEDDING_PAIR(bits, Id)                                                                              \
  int ki_cpu_embedding##bits(const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim, int e,    \
                             float* out) {                                                                       \
    return Report(keras_int::EmbeddingLookup<Id>(ids, n, table, vocab, dim, e, out));                            \
  }                                                                                                              \
  int ki_gpu_embedding##bits(const Id* ids, int64_t n, const int8_t* table, int64_t vocab, int64_t dim, int e,    \
                             float* out) {                                                                       \
    return Report(gpu::EmbeddingLookup<Id>(Gpu(), ids, n, table, vocab, dim, e, out));                           \
  }                                                                                                              \
  int ki_cpu_embedding_grad##bits(const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,        \
                                  int32_t* dtable) {                                                             \
    return Report(keras_int::EmbeddingGrad<Id>(err, ids, n, vocab, dim, dtable));                                \
  }                                                                                                              \
  int ki_gpu_embedding_grad##bits(const int8_t* err, const Id* ids, int64_t n, int64_t vocab, int64_t dim,        \
                                  int32_t* dtable) {                                                             \
    return Report(gpu::EmbeddingGrad<Id>(Gpu(), err, ids, n, vocab, dim, dtable));                               \
  }
KI_EMBEDDING_PAIR(32, int32_t)
KI_EMBEDDING_PAIR(64, int64_t)
#undef KI_EMBEDDING_PAIR

// ---- batched products: `batch` [M, K] x [K, N] pairs ----
int ki_cpu_batch_matmul(const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N, int64_t K, int tx,
                        int tw, int32_t* out) {
  return Report(keras_int::BatchMatMul(x, w, batch, M, N, K, tx != 0, tw != 0, out, SerialFor));
}
int ki_gpu_batch_matmul(const int8_t* x, const int8_t* w, int64_t batch, int64_t M, int64_t N, int64_t K, int tx,
                        int tw, int32_t* out) {
  return WithWorkspace(gpu::MatMulWorkspaceBytes(M, N, K), [&](void* ws) {
    return gpu::BatchMatMul(Gpu(), x, w, batch, M, N, K, tx != 0, tw != 0, out, ws);
  });
}

// ---- timing for benchmarks/gpu.py: milliseconds per call over `iterations` ----
int ki_gpu_time_matmul(int64_t M, int64_t N, int64_t K, int half, int iterations, float* ms) {
  const int64_t in_bytes = half ? 2 : 1, out_bytes = 4;
  void *x = nullptr, *w = nullptr, *out = nullptr, *ws = nullptr;
  const size_t ws_bytes = half ? 0 : gpu::MatMulWorkspaceBytes(M, N, K);
  if (ReportCuda(cudaMalloc(&x, M * K * in_bytes)) || ReportCuda(cudaMalloc(&w, K * N * in_bytes)) ||
      ReportCuda(cudaMalloc(&out, M * N * out_bytes)) || (ws_bytes && ReportCuda(cudaMalloc(&ws, ws_bytes)))) {
    return -1;
  }
  cudaMemset(x, 0x11, M * K * in_bytes);
  cudaMemset(w, 0x22, K * N * in_bytes);
  auto run = [&] {
    return half ? gpu::HalfMatMul(Gpu(), x, w, M, N, K, static_cast<float*>(out))
                : gpu::MatMul(Gpu(), static_cast<int8_t*>(x), static_cast<int8_t*>(w), M, N, K, false, false,
                              static_cast<int32_t*>(out), ws);
  };
  const int result = TimeCalls(run, iterations, ms);
  cudaFree(x), cudaFree(w), cudaFree(out), cudaFree(ws);
  return result;
}

// pass: 0 forward, 1 backprop-input, 2 backprop-filter.
int ki_gpu_time_conv2d(const int64_t* geometry, int same, int pass, int iterations, float* ms) {
  Conv2DGeometry g;
  if (Report(ConvGeometry(geometry, same, &g))) return -1;
  const int64_t x_n = g.batch * g.in_h * g.in_w * g.in_c, w_n = g.k_h * g.k_w * g.in_c * g.out_c;
  const int64_t y_n = g.batch * g.out_h * g.out_w * g.out_c;
  const size_t ws_bytes = pass == 0 ? gpu::Conv2DWorkspaceBytes(g)
                          : pass == 1 ? gpu::Conv2DBackpropInputWorkspaceBytes(g)
                                      : gpu::Conv2DBackpropFilterWorkspaceBytes(g);
  int8_t *x = nullptr, *w = nullptr, *dy = nullptr;
  int32_t* out = nullptr;
  void* ws = nullptr;
  const int64_t out_n = pass == 0 ? y_n : pass == 1 ? x_n : w_n;
  if (ReportCuda(cudaMalloc(&x, x_n)) || ReportCuda(cudaMalloc(&w, w_n)) || ReportCuda(cudaMalloc(&dy, y_n)) ||
      ReportCuda(cudaMalloc(&out, out_n * 4)) || (ws_bytes && ReportCuda(cudaMalloc(&ws, ws_bytes)))) {
    return -1;
  }
  cudaMemset(x, 0x11, x_n), cudaMemset(w, 0x22, w_n), cudaMemset(dy, 0x03, y_n);
  auto run = [&] {
    return pass == 0 ? gpu::Conv2D(Gpu(), g, x, w, out, ws)
           : pass == 1 ? gpu::Conv2DBackpropInput(Gpu(), g, w, dy, out, ws)
                       : gpu::Conv2DBackpropFilter(Gpu(), g, x, dy, out, ws);
  };
  const int result = TimeCalls(run, iterations, ms);
  cudaFree(x), cudaFree(w), cudaFree(dy), cudaFree(out), cudaFree(ws);
  return result;
}

}  // extern "C"

// Batch and layer normalization on the GPU (norm.h), built from the same per-channel
// and per-element functions as the CPU core (cc/core/norm_element.h):
//
//   1. per-channel int64 sums (S1, S2 or A, B): each thread adds up one
//      channel over a strided set of rows, a block combines its threads'
//      partial sums in shared memory and adds them atomically (integer sums
//      are exact in any order);
//   2. the per-channel constants, one thread per channel;
//   3. requantize_channels: an atomic maximum of ValuePosition over the
//      elements, read back to the host (one copy and a stream sync), then an
//      elementwise kernel that emits the carrier.
#include <string>

#include "cc/core/carrier_element.h"
#include "cc/core/dfp.h"
#include "cc/core/layer_norm.h"
#include "cc/core/limits.h"
#include "cc/core/norm.h"
#include "cc/core/norm_element.h"
#include "cc/core/rounding.h"
#include "cc/gpu/launch.cuh"
#include "cc/gpu/norm.h"

namespace keras_int {
namespace gpu {

namespace {

// The words of a call in the context's scratch.
struct NormWords {
  unsigned long long bad_channel;  // first channel with moving_variance < 0 (all ones: none)
  uint32_t position;               // max ValuePosition, as an OrderedKey
  uint32_t b_bits;                 // max bit_length(|B|) over the channels (backward)
};
static_assert(sizeof(NormWords) <= kScratchBytes, "scratch too small");

// An int as an unsigned word with the same order (0 below every int but INT_MIN's key).
__host__ __device__ __forceinline__ uint32_t OrderedKey(int v) { return static_cast<uint32_t>(v) ^ 0x80000000u; }
inline int FromOrderedKey(uint32_t key) { return static_cast<int>(key ^ 0x80000000u); }

// Workspace layout: 2 * channels int64 sums, then one NormChannel or
// NormGradChannel per channel.
constexpr size_t kWorkspaceAlign = 256;
size_t AlignUp(size_t bytes) { return (bytes + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }
size_t SumsBytes(int64_t channels) { return AlignUp(2 * static_cast<size_t>(channels) * sizeof(int64_t)); }
size_t ConstantsBytes(int64_t channels) {
  const size_t per_channel = sizeof(NormChannel) > sizeof(NormGradChannel) ? sizeof(NormChannel) : sizeof(NormGradChannel);
  return AlignUp(static_cast<size_t>(channels) * per_channel);
}
unsigned long long* SumsOf(void* workspace) { return static_cast<unsigned long long*>(workspace); }
template <typename T>
T* ConstantsOf(void* workspace, int64_t channels) {
  return reinterpret_cast<T*>(static_cast<char*>(workspace) + SumsBytes(channels));
}

// ---------------------------------------------------------------- sums

// S1 = sum(q), S2 = sum(q**2).
struct StatisticTerms {
  const int8_t* q;
  __device__ __forceinline__ void operator()(int64_t i, int64_t, int64_t* s0, int64_t* s1) const {
    const int32_t v = q[i];
    *s0 += v;
    *s1 += v * v;
  }
};

// The forward's saved per-channel constants, from which the backward pass
// recomputes xhat from q.
struct SavedChannels {
  const int8_t* q;
  int64_t rows;
  const int64_t* x_sum;
  const int64_t* inv_sqrt;
  const int32_t* inv_shift;
  __device__ __forceinline__ int32_t Xhat(int64_t i, int64_t c) const {
    return NormXhat(q[i], NormChannel{rows, x_sum[c], inv_sqrt[c], inv_shift[c]});
  }
};

// A = sum(err), B = sum(err * xhat).
struct GradTerms {
  const int8_t* err;
  SavedChannels saved;
  __device__ __forceinline__ void operator()(int64_t i, int64_t c, int64_t* s0, int64_t* s1) const {
    const int64_t e = err[i];
    *s0 += e;
    *s1 += e * saved.Xhat(i, c);
  }
};

// sums[c] and sums[channels + c]: the two sums of channel c over the rows.
// A block covers `tile` channels (all of them when channels <= kThreads)
// and `rows_per_step` rows at a time (kThreads / tile), so that consecutive
// threads read consecutive bytes; thread t takes channel t % tile and rows
// t / tile, t / tile + rows_per_step * gridDim.x, ...
template <typename Terms>
__global__ void ChannelSumsKernel(Terms terms, int64_t rows, int64_t channels, int tile, int rows_per_step,
                                  unsigned long long* sums) {
  __shared__ int64_t partial[2][kThreads];
  const int t = threadIdx.x;
  const bool active = t < tile * rows_per_step;
  const int64_t row_stride = static_cast<int64_t>(gridDim.x) * rows_per_step;
  // The loop bounds are the same for every thread of the block (the barriers).
  for (int64_t c0 = static_cast<int64_t>(blockIdx.y) * tile; c0 < channels;
       c0 += static_cast<int64_t>(gridDim.y) * tile) {
    const int64_t c = c0 + t % tile;
    int64_t s0 = 0, s1 = 0;
    if (active && c < channels) {
      for (int64_t r = static_cast<int64_t>(blockIdx.x) * rows_per_step + t / tile; r < rows; r += row_stride) {
        terms(r * channels + c, c, &s0, &s1);
      }
    }
    partial[0][t] = s0;
    partial[1][t] = s1;
    __syncthreads();
    if (t < tile && c < channels) {
      for (int k = 1; k < rows_per_step; ++k) {
        s0 += partial[0][k * tile + t];
        s1 += partial[1][k * tile + t];
      }
      // Two's complement: the unsigned sums wrap to the exact signed ones.
      if (s0 != 0) atomicAdd(&sums[c], static_cast<unsigned long long>(s0));
      if (s1 != 0) atomicAdd(&sums[channels + c], static_cast<unsigned long long>(s1));
    }
    __syncthreads();
  }
}

template <typename Terms>
Status ChannelSums(const Context& ctx, Terms terms, int64_t rows, int64_t channels, unsigned long long* sums,
                   const char* what) {
  const cudaStream_t stream = StreamOf(ctx);
  KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(sums, 0, 2 * static_cast<size_t>(channels) * sizeof(*sums), stream),
                          "memset");
  const int tile = static_cast<int>(channels < kThreads ? channels : kThreads);
  const int rows_per_step = kThreads / tile;
  const int64_t tiles = (channels + tile - 1) / tile;
  const int64_t grid_y = tiles < 65535 ? tiles : 65535;
  const int64_t row_blocks = (rows + rows_per_step - 1) / rows_per_step;
  const int64_t budget = 2048 / grid_y > 1 ? 2048 / grid_y : 1;  // about 2048 blocks in all
  const int64_t grid_x = row_blocks < budget ? row_blocks : budget;
  ChannelSumsKernel<Terms><<<dim3(static_cast<unsigned int>(grid_x), static_cast<unsigned int>(grid_y)), kThreads,
                             0, stream>>>(terms, rows, channels, tile, rows_per_step, sums);
  return LaunchStatus(what);
}

// ---------------------------------------------------------------- per-channel constants

__global__ void TrainingChannelsKernel(const unsigned long long* sums, int64_t rows, int64_t channels,
                                       int64_t eps_mantissa, int eps_exponent, int x_exponent, NormChannel* stats,
                                       int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean,
                                       int32_t* variance) {
  KI_GRID_STRIDE(c, channels) {
    const NormChannel ch = MakeTrainingChannel(rows, static_cast<int64_t>(sums[c]),
                                               static_cast<int64_t>(sums[channels + c]), eps_mantissa,
                                               eps_exponent, x_exponent, &mean[c], &variance[c]);
    stats[c] = ch;
    x_sum[c] = ch.sum;
    inv_sqrt[c] = ch.inv_sqrt;
    inv_shift[c] = ch.inv_shift;
  }
}

__global__ void InferenceChannelsKernel(const int32_t* moving_mean, int moving_mean_exponent,
                                        const int32_t* moving_variance, int moving_variance_exponent,
                                        int64_t channels, int64_t eps_mantissa, int eps_exponent, int x_exponent,
                                        NormChannel* stats, int64_t* count, int64_t* inv_sqrt, int32_t* inv_shift,
                                        unsigned long long* bad_channel) {
  KI_GRID_STRIDE(c, channels) {
    if (moving_variance[c] < 0) {
      atomicMin(bad_channel, static_cast<unsigned long long>(c));
      stats[c] = NormChannel{1, 0, 0, 0};  // defined values for the position pass; no output is emitted
    } else {
      stats[c] = MakeInferenceChannel(moving_mean[c], moving_mean_exponent, moving_variance[c],
                                      moving_variance_exponent, eps_mantissa, eps_exponent, x_exponent);
    }
    count[c] = stats[c].count;
    inv_sqrt[c] = stats[c].inv_sqrt;
    inv_shift[c] = stats[c].inv_shift;
  }
}

__global__ void SavedChannelsKernel(int64_t rows, int64_t channels, const int64_t* x_sum, const int64_t* inv_sqrt,
                                    const int32_t* inv_shift, unsigned long long* bad_channel) {
  KI_GRID_STRIDE(c, channels) {
    if (!NormSavedChannelValid(rows, x_sum[c], inv_sqrt[c], inv_shift[c])) {
      atomicMin(bad_channel, static_cast<unsigned long long>(c));
    }
  }
}

__global__ void FrozenChannelsKernel(int64_t channels, int x_exponent, int err_exponent, int gamma_exponent,
                                     const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                                     const int8_t* gamma, NormGradChannel* constants, unsigned long long* bad_channel) {
  KI_GRID_STRIDE(c, channels) {
    if (!NormFrozenChannelValid(count[c], inv_sqrt[c], inv_shift[c])) {
      atomicMin(bad_channel, static_cast<unsigned long long>(c));
      constants[c] = NormGradChannel{0, 0, 0, 0};
      continue;
    }
    constants[c] = MakeNormGradChannel(0, 0, count[c], inv_sqrt[c], inv_shift[c], gamma[c], gamma_exponent,
                                       x_exponent, err_exponent);
  }
}

__global__ void GradBitsKernel(const unsigned long long* sums, int64_t channels, uint32_t* b_bits) {
  uint32_t best = 0;
  KI_GRID_STRIDE(c, channels) {
    const uint32_t bits = static_cast<uint32_t>(BitLength64(Magnitude64(static_cast<int64_t>(sums[channels + c]))));
    best = bits > best ? bits : best;
  }
  AtomicMaxWarp(b_bits, best);
}

__global__ void NormGradChannelsKernel(const unsigned long long* sums, int64_t rows, int64_t channels, int x_exponent,
                                   int err_exponent, int gamma_exponent, const int64_t* inv_sqrt,
                                   const int32_t* inv_shift, const int8_t* gamma, const uint32_t* b_bits,
                                   NormGradChannel* constants, int32_t* dgamma, int32_t* dbeta) {
  const int h = NormGammaGradientShift(static_cast<int>(*b_bits));
  KI_GRID_STRIDE(c, channels) {
    const int64_t sum_a = static_cast<int64_t>(sums[c]), sum_b = static_cast<int64_t>(sums[channels + c]);
    dbeta[c] = static_cast<int32_t>(sum_a);  // |A| < 2**30
    dgamma[c] = NormGammaGradient(sum_b, h);
    constants[c] = MakeNormGradChannel(sum_a, sum_b, rows, inv_sqrt[c], inv_shift[c], gamma[c], gamma_exponent,
                                       x_exponent, err_exponent);
  }
}

// ---------------------------------------------------------------- requantize_channels

// The forward accumulator gamma * xhat + beta of element i (channel
// c), at exponent e_g - F for every channel.
struct ForwardValue {
  const int8_t* q;
  const NormChannel* stats;
  const int8_t* gamma;
  const int32_t* beta;
  int exponent;
  __device__ __forceinline__ int64_t operator()(int64_t i, int64_t c) const {
    return NormOutput(NormXhat(q[i], stats[c]), gamma[c], beta[c]);
  }
  __device__ __forceinline__ int Exponent(int64_t, int64_t) const { return exponent; }
};

// The backward value bracket * gamma * rho of element i, at channel c's exponent.
struct GradValue {
  const int8_t* err;
  SavedChannels saved;
  const NormGradChannel* constants;
  __device__ __forceinline__ int64_t operator()(int64_t i, int64_t c) const {
    const NormGradChannel& g = constants[c];
    return NormGradValue(err[i], saved.Xhat(i, c), g.a, g.b, g.gamma_rho);
  }
  __device__ __forceinline__ int Exponent(int64_t, int64_t c) const { return constants[c].exponent; }
};

// The frozen backward value err * gamma * rho (BatchNormGrad's with A = B = 0).
struct FrozenGradValue {
  const int8_t* err;
  const NormGradChannel* constants;
  __device__ __forceinline__ int64_t operator()(int64_t i, int64_t c) const {
    return NormGradValue(err[i], 0, 0, 0, constants[c].gamma_rho);
  }
  __device__ __forceinline__ int Exponent(int64_t, int64_t c) const { return constants[c].exponent; }
};

// Layer norm (section 9): element i is in row i / features, feature c.
// The forward accumulator gamma[c] * xhat + beta[c] at e_g - F.
struct LayerForwardValue {
  const int8_t* q;
  const NormChannel* rows;
  const int8_t* gamma;
  const int32_t* beta;
  int64_t features;
  int exponent;
  __device__ __forceinline__ int64_t operator()(int64_t i, int64_t c) const {
    return NormOutput(NormXhat(q[i], rows[i / features]), gamma[c], beta[c]);
  }
  __device__ __forceinline__ int Exponent(int64_t, int64_t) const { return exponent; }
};

// The forward's saved per-row constants, from which xhat is recomputed.
struct SavedRows {
  const int8_t* q;
  int64_t features;
  const int64_t* x_sum;
  const int64_t* inv_sqrt;
  const int32_t* inv_shift;
  __device__ __forceinline__ int32_t Xhat(int64_t i) const {
    const int64_t r = i / features;
    return NormXhat(q[i], NormChannel{features, x_sum[r], inv_sqrt[r], inv_shift[r]});
  }
};

// The backward value bracket * rho of element i (bracket from err * gamma),
// at its row's exponent.
struct LayerGradValue {
  const int8_t* err;
  const int8_t* gamma;
  SavedRows saved;
  const NormGradChannel* constants;
  __device__ __forceinline__ int64_t operator()(int64_t i, int64_t c) const {
    const NormGradChannel& g = constants[i / saved.features];
    return NormGradValue(int32_t{err[i]} * gamma[c], saved.Xhat(i), g.a, g.b, g.gamma_rho);
  }
  __device__ __forceinline__ int Exponent(int64_t i, int64_t) const {
    return constants[i / saved.features].exponent;
  }
};

// dbeta = sum(err), sum(err * xhat) per feature, over the rows.
struct LayerColumnTerms {
  const int8_t* err;
  SavedRows saved;
  __device__ __forceinline__ void operator()(int64_t i, int64_t, int64_t* s0, int64_t* s1) const {
    const int64_t e = err[i];
    *s0 += e;
    *s1 += e * saved.Xhat(i);
  }
};

// Per row: the two sums of RowTerms over the features, added up by one
// block (shared-memory tree), then Finish(row, s0, s1) by thread 0.
template <typename RowTerms>
__global__ void RowSumsKernel(RowTerms terms, int64_t rows, int64_t features) {
  __shared__ int64_t partial[2][kThreads];
  const int t = threadIdx.x;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int64_t s0 = 0, s1 = 0;
    for (int64_t c = t; c < features; c += kThreads) terms(r * features + c, c, &s0, &s1);
    partial[0][t] = s0;
    partial[1][t] = s1;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (t < half) {
        partial[0][t] += partial[0][t + half];
        partial[1][t] += partial[1][t + half];
      }
      __syncthreads();
    }
    if (t == 0) terms.Finish(r, partial[0][0], partial[1][0]);
    __syncthreads();
  }
}

// The forward row statistics S1, S2 and the row's constants.
struct LayerStatisticTerms {
  const int8_t* q;
  int64_t features;
  int64_t eps_mantissa;
  int eps_exponent, x_exponent;
  NormChannel* stats;
  int64_t* x_sum;
  int64_t* inv_sqrt;
  int32_t* inv_shift;
  __device__ __forceinline__ void operator()(int64_t i, int64_t, int64_t* s0, int64_t* s1) const {
    const int32_t v = q[i];
    *s0 += v;
    *s1 += v * v;
  }
  __device__ __forceinline__ void Finish(int64_t r, int64_t sum1, int64_t sum2) const {
    const NormChannel ch =
        MakeNormChannel(features, sum1, features * sum2 - sum1 * sum1, eps_mantissa, eps_exponent, x_exponent);
    stats[r] = ch;
    x_sum[r] = ch.sum;
    inv_sqrt[r] = ch.inv_sqrt;
    inv_shift[r] = ch.inv_shift;
  }
};

// The backward row sums A = sum(err * gamma), B = sum(err * gamma * xhat)
// and the row's constants (gamma 1: it is inside the sums).
struct LayerGradRowTerms {
  const int8_t* err;
  const int8_t* gamma;
  SavedRows saved;
  int gamma_exponent, x_exponent, err_exponent;
  NormGradChannel* constants;
  __device__ __forceinline__ void operator()(int64_t i, int64_t c, int64_t* s0, int64_t* s1) const {
    const int64_t g = int64_t{err[i]} * gamma[c];
    *s0 += g;
    *s1 += g * saved.Xhat(i);
  }
  __device__ __forceinline__ void Finish(int64_t r, int64_t sum_a, int64_t sum_b) const {
    constants[r] = MakeNormGradChannel(sum_a, sum_b, saved.features, saved.inv_sqrt[r], saved.inv_shift[r], 1,
                                       gamma_exponent, x_exponent, err_exponent);
  }
};

__global__ void LayerGradColumnsKernel(const unsigned long long* sums, int64_t features, const uint32_t* b_bits,
                                       int32_t* dgamma, int32_t* dbeta) {
  const int h = NormGammaGradientShift(static_cast<int>(*b_bits));
  KI_GRID_STRIDE(c, features) {
    dbeta[c] = static_cast<int32_t>(static_cast<int64_t>(sums[c]));  // |sum| <= 2**30
    dgamma[c] = NormGammaGradient(static_cast<int64_t>(sums[features + c]), h);
  }
}

// Blocks of a per-row reduction (each block loops over rows).
unsigned int RowBlocks(int64_t rows) { return static_cast<unsigned int>(rows < 65535 ? rows : 65535); }

template <typename Value>
__global__ void PositionKernel(Value value, int64_t n, int64_t channels, uint32_t* position) {
  uint32_t best = 0;
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % channels;
    const uint32_t key = OrderedKey(ValuePosition(value(i, c), value.Exponent(i, c)));
    best = key > best ? key : best;
  }
  AtomicMaxWarp(position, best);
}

template <typename Value>
__global__ void EmitKernel(Value value, int64_t n, int64_t channels, int exponent, int64_t limit, Rounding rounding,
                           RoundingSeed seed, float scale, float* out) {
  KI_GRID_STRIDE(i, n) {
    const int64_t c = i % channels;
    const int32_t m = RequantizeValue(value(i, c), value.Exponent(i, c), exponent, rounding,
                                      RandomWordFor(rounding, seed, static_cast<uint64_t>(i)), limit);
    out[i] = static_cast<float>(m) * scale;
  }
}

// Zeroes the scratch words (bad_channel: all ones) on the stream.
Status ResetWords(const Context& ctx, NormWords** words) {
  KERAS_INT_RETURN_IF_ERROR(ZeroScratch(ctx, static_cast<int>(sizeof(NormWords) / sizeof(uint32_t)),
                                        reinterpret_cast<uint32_t**>(words)));
  return CudaStatus(cudaMemsetAsync(&(*words)->bad_channel, 0xFF, sizeof((*words)->bad_channel), StreamOf(ctx)),
                    "memset");
}

// The first pass of requantize_channels: every element's position, then
// all the words back on the host.
template <typename Value>
Status FindPosition(const Context& ctx, Value value, int64_t n, int64_t channels, NormWords* words,
                    NormWords* host) {
  PositionKernel<Value><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(value, n, channels, &words->position);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm"));
  return ReadBack(ctx, words, host);
}

// The second pass: the carrier of `bits`-bit mantissas (8, or 16 for layer
// norm's dx) at exponent position - (bits - 1) (all zero: 0).
template <typename Value>
Status Emit(const Context& ctx, Value value, int64_t n, int64_t channels, uint32_t position_key,
            Rounding rounding, RoundingSeed seed, float* out, int* out_exponent, int bits = 8,
            const char* fn = "batch_norm") {
  const int position = FromOrderedKey(position_key);
  if (position == kNoValuePosition) {  // all zero
    *out_exponent = 0;
    return CudaStatus(cudaMemsetAsync(out, 0, static_cast<size_t>(n) * sizeof(float), StreamOf(ctx)), "memset");
  }
  const int exponent = position - (bits - 1);
  KERAS_INT_RETURN_IF_ERROR(
      CheckExponent((std::string(fn) + ": result exponent").c_str(), exponent, kMinExponent, kMaxExponent));
  *out_exponent = exponent;
  EmitKernel<Value><<<BlocksFor(n), kThreads, 0, StreamOf(ctx)>>>(value, n, channels, exponent, MantissaLimit(bits),
                                                                  rounding, seed, PowerOfTwo(exponent), out);
  return LaunchStatus(fn);
}

// A backward pass's per-channel constants of one channel (first: x_sum or
// the inference count), read back to name them in an error.
struct ChannelConstants {
  int64_t channel = 0, first = 0, inv_sqrt = 0;
  int32_t inv_shift = 0;
};

Status ReadChannelConstants(const Context& ctx, unsigned long long channel, const int64_t* first,
                            const int64_t* inv_sqrt, const int32_t* inv_shift, ChannelConstants* out) {
  out->channel = static_cast<int64_t>(channel);
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, first + out->channel, &out->first));
  KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, inv_sqrt + out->channel, &out->inv_sqrt));
  return ReadBack(ctx, inv_shift + out->channel, &out->inv_shift);
}

}  // namespace

size_t BatchNormWorkspaceBytes(int64_t channels) {
  if (channels <= 0) return 0;
  return SumsBytes(channels) + ConstantsBytes(channels);
}

Status BatchNormTraining(const Context& ctx, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                         const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                         int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, int32_t* mean, int* mean_exponent,
                         int32_t* variance, int* variance_exponent, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  *mean_exponent = x_exponent - 23;
  *variance_exponent = 2 * x_exponent - 16;
  *y_exponent = 0;
  if (channels == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  if (rows == 0) {
    const size_t c = static_cast<size_t>(channels);
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(x_sum, 0, c * sizeof(*x_sum), stream), "memset");
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(inv_sqrt, 0, c * sizeof(*inv_sqrt), stream), "memset");
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(inv_shift, 0, c * sizeof(*inv_shift), stream), "memset");
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(mean, 0, c * sizeof(*mean), stream), "memset");
    return CudaStatus(cudaMemsetAsync(variance, 0, c * sizeof(*variance), stream), "memset");
  }
  unsigned long long* sums = SumsOf(workspace);
  NormChannel* stats = ConstantsOf<NormChannel>(workspace, channels);
  KERAS_INT_RETURN_IF_ERROR(ChannelSums(ctx, StatisticTerms{q}, rows, channels, sums, "batch_norm"));
  TrainingChannelsKernel<<<BlocksFor(channels), kThreads, 0, stream>>>(
      sums, rows, channels, params.eps_mantissa, params.eps_exponent, x_exponent, stats, x_sum, inv_sqrt, inv_shift,
      mean, variance);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm"));
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  const int64_t n = rows * channels;
  const ForwardValue value{q, stats, params.gamma, params.beta, params.gamma_exponent - kNormFractionBits};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, channels, words, &host));
  return Emit(ctx, value, n, channels, host.position, rounding, seed, y, y_exponent);
}

Status BatchNormInference(const Context& ctx, const int8_t* q, int64_t rows, int64_t channels, int x_exponent,
                          const NormParams& params, const int32_t* moving_mean, int moving_mean_exponent,
                          const int32_t* moving_variance, int moving_variance_exponent, Rounding rounding,
                          RoundingSeed seed, float* y, int* y_exponent, int64_t* count, int64_t* inv_sqrt,
                          int32_t* inv_shift, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  KERAS_INT_RETURN_IF_ERROR(CheckNormStatisticExponent("batch_norm: moving_mean_exponent", moving_mean_exponent));
  KERAS_INT_RETURN_IF_ERROR(
      CheckNormStatisticExponent("batch_norm: moving_variance_exponent", moving_variance_exponent));
  *y_exponent = 0;
  if (channels == 0 || rows == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  NormChannel* stats = ConstantsOf<NormChannel>(workspace, channels);
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  InferenceChannelsKernel<<<BlocksFor(channels), kThreads, 0, stream>>>(
      moving_mean, moving_mean_exponent, moving_variance, moving_variance_exponent, channels, params.eps_mantissa,
      params.eps_exponent, x_exponent, stats, count, inv_sqrt, inv_shift, &words->bad_channel);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm"));
  const int64_t n = rows * channels;
  const ForwardValue value{q, stats, params.gamma, params.beta, params.gamma_exponent - kNormFractionBits};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, channels, words, &host));
  if (host.bad_channel != ~0ull) {
    int32_t bad_value = 0;
    KERAS_INT_RETURN_IF_ERROR(ReadBack(ctx, moving_variance + host.bad_channel, &bad_value));
    return Status::Error("batch_norm: moving_variance must be >= 0, got " + std::to_string(bad_value) +
                         " in channel " + std::to_string(host.bad_channel));
  }
  return Emit(ctx, value, n, channels, host.position, rounding, seed, y, y_exponent);
}

Status BatchNormGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                     int64_t channels, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                     const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent,
                     int32_t* dgamma, int32_t* dbeta, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckNormRows(rows));
  *dx_exponent = 0;
  if (channels == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  if (rows == 0) {
    const size_t c = static_cast<size_t>(channels);
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dgamma, 0, c * sizeof(*dgamma), stream), "memset");
    return CudaStatus(cudaMemsetAsync(dbeta, 0, c * sizeof(*dbeta), stream), "memset");
  }
  unsigned long long* sums = SumsOf(workspace);
  NormGradChannel* constants = ConstantsOf<NormGradChannel>(workspace, channels);
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  // Checked with the rest of the words after the position pass (no sync of
  // its own); no output is emitted for constants that fail.
  SavedChannelsKernel<<<BlocksFor(channels), kThreads, 0, stream>>>(rows, channels, x_sum, inv_sqrt, inv_shift,
                                                                    &words->bad_channel);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm_grad"));
  const SavedChannels saved{q, rows, x_sum, inv_sqrt, inv_shift};
  KERAS_INT_RETURN_IF_ERROR(ChannelSums(ctx, GradTerms{err, saved}, rows, channels, sums, "batch_norm_grad"));
  GradBitsKernel<<<BlocksFor(channels), kThreads, 0, stream>>>(sums, channels, &words->b_bits);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm_grad"));
  NormGradChannelsKernel<<<BlocksFor(channels), kThreads, 0, stream>>>(sums, rows, channels, x_exponent, err_exponent,
                                                                   gamma_exponent, inv_sqrt, inv_shift, gamma,
                                                                   &words->b_bits, constants, dgamma, dbeta);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm_grad"));
  const int64_t n = rows * channels;
  const GradValue value{err, saved, constants};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, channels, words, &host));
  if (host.bad_channel != ~0ull) {
    ChannelConstants bad;
    KERAS_INT_RETURN_IF_ERROR(ReadChannelConstants(ctx, host.bad_channel, x_sum, inv_sqrt, inv_shift, &bad));
    return NormSavedChannelError(rows, bad.channel, bad.first, bad.inv_sqrt, bad.inv_shift);
  }
  return Emit(ctx, value, n, channels, host.position, Rounding::kNearest, RoundingSeed{}, dx, dx_exponent, 8,
              "batch_norm_grad");
}

Status BatchNormFrozenGrad(const Context& ctx, const int8_t* err, int err_exponent, int64_t rows, int64_t channels,
                           int x_exponent, const int64_t* count, const int64_t* inv_sqrt, const int32_t* inv_shift,
                           const int8_t* gamma, int gamma_exponent, float* dx, int* dx_exponent, void* workspace) {
  *dx_exponent = 0;
  if (channels == 0 || rows == 0) return Status::OK();
  NormGradChannel* constants = ConstantsOf<NormGradChannel>(workspace, channels);
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  FrozenChannelsKernel<<<BlocksFor(channels), kThreads, 0, StreamOf(ctx)>>>(
      channels, x_exponent, err_exponent, gamma_exponent, count, inv_sqrt, inv_shift, gamma, constants,
      &words->bad_channel);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("batch_norm_frozen_grad"));
  const int64_t n = rows * channels;
  const FrozenGradValue value{err, constants};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, channels, words, &host));
  if (host.bad_channel != ~0ull) {
    ChannelConstants bad;
    KERAS_INT_RETURN_IF_ERROR(ReadChannelConstants(ctx, host.bad_channel, count, inv_sqrt, inv_shift, &bad));
    return NormFrozenChannelError(bad.channel, bad.first, bad.inv_sqrt, bad.inv_shift);
  }
  return Emit(ctx, value, n, channels, host.position, Rounding::kNearest, RoundingSeed{}, dx, dx_exponent, 8,
              "batch_norm_grad");
}

size_t LayerNormWorkspaceBytes(int64_t rows, int64_t features) {
  if (rows <= 0 || features <= 0) return 0;
  return SumsBytes(features) + ConstantsBytes(rows);
}

Status LayerNorm(const Context& ctx, const int8_t* q, int64_t rows, int64_t features, int x_exponent,
                 const NormParams& params, Rounding rounding, RoundingSeed seed, float* y, int* y_exponent,
                 int64_t* x_sum, int64_t* inv_sqrt, int32_t* inv_shift, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormShape(rows, features));
  KERAS_INT_RETURN_IF_ERROR(CheckNormEpsilon(params.eps_mantissa, params.eps_exponent));
  *y_exponent = 0;
  if (rows == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  if (features == 0) {
    const size_t r = static_cast<size_t>(rows);
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(x_sum, 0, r * sizeof(*x_sum), stream), "memset");
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(inv_sqrt, 0, r * sizeof(*inv_sqrt), stream), "memset");
    return CudaStatus(cudaMemsetAsync(inv_shift, 0, r * sizeof(*inv_shift), stream), "memset");
  }
  NormChannel* stats = ConstantsOf<NormChannel>(workspace, features);
  const LayerStatisticTerms terms{q, features, params.eps_mantissa, params.eps_exponent, x_exponent,
                                  stats, x_sum, inv_sqrt, inv_shift};
  RowSumsKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(terms, rows, features);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("layer_norm"));
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  const int64_t n = rows * features;
  const LayerForwardValue value{q, stats, params.gamma, params.beta, features,
                                params.gamma_exponent - kNormFractionBits};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, features, words, &host));
  return Emit(ctx, value, n, features, host.position, rounding, seed, y, y_exponent, 8, "layer_norm");
}

Status LayerNormGrad(const Context& ctx, const int8_t* err, int err_exponent, const int8_t* q, int64_t rows,
                     int64_t features, int x_exponent, const int64_t* x_sum, const int64_t* inv_sqrt,
                     const int32_t* inv_shift, const int8_t* gamma, int gamma_exponent, int dx_bits, float* dx,
                     int* dx_exponent, int32_t* dgamma, int32_t* dbeta, void* workspace) {
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormShape(rows, features));
  KERAS_INT_RETURN_IF_ERROR(CheckLayerNormGradBits(dx_bits));
  *dx_exponent = 0;
  if (features == 0) return Status::OK();
  const cudaStream_t stream = StreamOf(ctx);
  if (rows == 0) {
    const size_t c = static_cast<size_t>(features);
    KI_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dgamma, 0, c * sizeof(*dgamma), stream), "memset");
    return CudaStatus(cudaMemsetAsync(dbeta, 0, c * sizeof(*dbeta), stream), "memset");
  }
  unsigned long long* sums = SumsOf(workspace);
  NormGradChannel* constants = ConstantsOf<NormGradChannel>(workspace, features);
  NormWords* words;
  KERAS_INT_RETURN_IF_ERROR(ResetWords(ctx, &words));
  // A row's saved constants are checked as a batch-norm channel's over
  // `features` elements, with the rest of the words after the position pass.
  SavedChannelsKernel<<<BlocksFor(rows), kThreads, 0, stream>>>(features, rows, x_sum, inv_sqrt, inv_shift,
                                                                &words->bad_channel);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("layer_norm_grad"));
  const SavedRows saved{q, features, x_sum, inv_sqrt, inv_shift};
  const LayerGradRowTerms row_terms{err, gamma, saved, gamma_exponent, x_exponent, err_exponent, constants};
  RowSumsKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(row_terms, rows, features);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("layer_norm_grad"));
  KERAS_INT_RETURN_IF_ERROR(ChannelSums(ctx, LayerColumnTerms{err, saved}, rows, features, sums, "layer_norm_grad"));
  GradBitsKernel<<<BlocksFor(features), kThreads, 0, stream>>>(sums, features, &words->b_bits);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("layer_norm_grad"));
  LayerGradColumnsKernel<<<BlocksFor(features), kThreads, 0, stream>>>(sums, features, &words->b_bits, dgamma, dbeta);
  KERAS_INT_RETURN_IF_ERROR(LaunchStatus("layer_norm_grad"));
  const int64_t n = rows * features;
  const LayerGradValue value{err, gamma, saved, constants};
  NormWords host;
  KERAS_INT_RETURN_IF_ERROR(FindPosition(ctx, value, n, features, words, &host));
  if (host.bad_channel != ~0ull) {
    ChannelConstants bad;
    KERAS_INT_RETURN_IF_ERROR(ReadChannelConstants(ctx, host.bad_channel, x_sum, inv_sqrt, inv_shift, &bad));
    return LayerNormSavedRowError(features, bad.channel, bad.first, bad.inv_sqrt, bad.inv_shift);
  }
  return Emit(ctx, value, n, features, host.position, Rounding::kNearest, RoundingSeed{}, dx, dx_exponent, dx_bits,
              "layer_norm_grad");
}

}  // namespace gpu
}  // namespace keras_int

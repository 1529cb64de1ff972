// Function qualifiers of the per-element arithmetic that the CPU core and the
// CUDA kernels (cc/gpu) compile from the same source: one definition for
// both sides is what makes the GPU results bit-identical to the CPU's.
//
// Headers that use KI_HOST_DEVICE (rounding.h, philox.h, carrier_element.h,
// integer_exp.h and the *_element.h of each family) are header-only and free
// of the standard library's non-constexpr functions.
#ifndef KERAS_INT_CC_CORE_HOST_DEVICE_H_
#define KERAS_INT_CC_CORE_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define KI_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KI_HOST_DEVICE inline
#endif

// CPU loops compiled twice, for AVX2 and for baseline x86-64; the loader
// picks one at run time (the core is otherwise built for baseline x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define KI_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KI_VECTOR_CLONES
#endif

#endif  // KERAS_INT_CC_CORE_HOST_DEVICE_H_

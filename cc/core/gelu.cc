#include "cc/core/gelu.h"

#include "cc/core/gelu_element.h"

namespace keras_int {

namespace {

// The 256 values of f(q, exponent), indexed by q + 128.
template <typename F>
void Table(int exponent, F f, int32_t* table) {
  for (int q = -128; q < 128; ++q) table[q + 128] = f(q, exponent);
}

}  // namespace

void GeluAccumulate(const int8_t* q, int64_t n, int exponent, int32_t* acc, const ParallelFor& parallel_for) {
  int32_t table[256];
  Table(exponent, GeluValue, table);
  parallel_for(n, 2, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) acc[i] = table[q[i] + 128];
  });
}

void GeluGradAccumulate(const int8_t* err, const int8_t* x_q, int64_t n, int x_exponent, int32_t* acc,
                        const ParallelFor& parallel_for) {
  int32_t table[256];
  Table(x_exponent, GeluDerivative, table);
  parallel_for(n, 3, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) acc[i] = int32_t{err[i]} * table[x_q[i] + 128];
  });
}

}  // namespace keras_int

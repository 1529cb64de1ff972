// How the core runs work on several threads without knowing TensorFlow: the
// kernel adapters pass TensorFlow's intra-op pool in, tests pass SerialFor.
#ifndef KERAS_INT_CC_CORE_PARALLEL_H_
#define KERAS_INT_CC_CORE_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace keras_int {

// Runs fn(begin, end) over shards covering [0, n), possibly concurrently.
// cost_per_unit is a rough cycle count per unit that lets a pool size shards.
using ParallelFor = std::function<void(int64_t n, int64_t cost_per_unit,
                                       const std::function<void(int64_t, int64_t)>& fn)>;

inline void SerialFor(int64_t n, int64_t /*cost_per_unit*/,
                      const std::function<void(int64_t, int64_t)>& fn) {
  if (n > 0) fn(0, n);
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_PARALLEL_H_

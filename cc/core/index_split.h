// Row indices split into coordinates without hardware division: the
// convolution readers split an index per row they read, and a division
// (tens of cycles) was a visible part of packing a row of 16-48 bytes.
#ifndef KERAS_INT_CC_CORE_INDEX_SPLIT_H_
#define KERAS_INT_CC_CORE_INDEX_SPLIT_H_

#include <cstdint>

namespace keras_int {

// Division by a constant d >= 1 of numerators below 2**31 as one multiply
// and one shift (the round-up method of Granlund and Montgomery): with
// 2**l >= d and m = ceil(2**(31 + l) / d), floor(n m / 2**(31 + l)) =
// floor(n / d) for every n < 2**31, and n m < 2**64.
class ConstantDivisor {
 public:
  explicit ConstantDivisor(uint64_t d) {
    int l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    shift_ = 31 + l;
    magic_ = ((uint64_t{1} << shift_) + d - 1) / d;
  }
  uint64_t Divide(uint64_t n) const { return (n * magic_) >> shift_; }

 private:
  uint64_t magic_;
  int shift_;
};

// i -> (i / (b * c), i / c % b, i % c): a row index split into its three
// coordinates, for indices below `count` (64-bit divisions where b, c or
// count reach 2**31).
class IndexSplit {
 public:
  IndexSplit(int64_t b, int64_t c, int64_t count)
      : b_(b), c_(c), fast_(b >= 1 && c >= 1 && c <= kLimit && b <= kLimit && count <= kLimit),
        by_c_(fast_ ? static_cast<uint64_t>(c) : 1), by_b_(fast_ ? static_cast<uint64_t>(b) : 1) {}
  void operator()(int64_t i, int64_t* first, int64_t* second, int64_t* third) const {
    if (fast_) {
      const int64_t rest = static_cast<int64_t>(by_c_.Divide(static_cast<uint64_t>(i)));
      *third = i - rest * c_;
      *first = static_cast<int64_t>(by_b_.Divide(static_cast<uint64_t>(rest)));
      *second = rest - *first * b_;
    } else {
      *third = i % c_;
      *second = (i / c_) % b_;
      *first = i / (b_ * c_);
    }
  }

 private:
  static constexpr int64_t kLimit = int64_t{1} << 31;
  int64_t b_, c_;
  bool fast_;
  ConstantDivisor by_c_, by_b_;
};

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_INDEX_SPLIT_H_

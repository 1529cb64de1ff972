#include "cc/core/add.h"

#include <algorithm>

#include "cc/core/dfp.h"

namespace keras_int {

void AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                int* acc_exponent) {
  if (ea < eb) {
    std::swap(a, b);
    std::swap(ea, eb);
  }
  // Now ea >= eb: a moves left by d. Beyond kMaxAlignShift, b is first
  // rounded towards a's scale (its bits then lie below 2**-23 of a's unit).
  const int d = ea - eb;
  const int left = std::min(d, kMaxAlignShift);
  const int right = d - left;
  for (int64_t i = 0; i < n; ++i) {
    acc[i] = a[i] * (int32_t{1} << left) + RoundShift(b[i], right, Rounding::kNearest, 0);
  }
  *acc_exponent = ea - left;
}

}  // namespace keras_int

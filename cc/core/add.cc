#include "cc/core/add.h"

#include <algorithm>
#include <string>
#include <vector>

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

Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  if (shift > 31) {
    return Status::Error("bias: alignment shift " + std::to_string(shift) +
                         " is too large (input exponent below -31)");
  }
  std::vector<int64_t> aligned(channels);
  for (int64_t c = 0; c < channels; ++c) {
    aligned[c] = shift >= 0 ? int64_t{bias[c]} * (int64_t{1} << shift)
                            : RoundShift64(bias[c], -shift, Rounding::kNearest, 0);
  }
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* row = acc + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t sum = row[c] + aligned[c];
      if (sum > INT32_MAX || sum < INT32_MIN) {
        return Status::Error("int32 overflow: accumulator plus bias is " + std::to_string(sum));
      }
      row[c] = static_cast<int32_t>(sum);
    }
  }
  return Status::OK();
}

}  // namespace keras_int

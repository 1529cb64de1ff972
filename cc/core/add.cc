#include "cc/core/add.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cc/core/add_element.h"
#include "cc/core/dfp.h"

namespace keras_int {

void AlignedAdd(const int8_t* a, int ea, const int8_t* b, int eb, int64_t n, int32_t* acc,
                int* acc_exponent) {
  bool larger_is_zero = false;
  if (AlignmentNeedsZeroTest(ea, eb)) {
    const int8_t* larger = ea > eb ? a : b;
    larger_is_zero = std::all_of(larger, larger + n, [](int8_t v) { return v == 0; });
  }
  const AddAlignment align = AlignExponents(ea, eb, larger_is_zero);
  if (align.swap) std::swap(a, b);
  for (int64_t i = 0; i < n; ++i) acc[i] = AlignedAddElement(a[i], b[i], align.left, align.right);
  *acc_exponent = align.exponent;
}

void AlignedAdd(const int16_t* a, int ea, const int16_t* b, int eb, int64_t n, int64_t* acc,
                int* acc_exponent) {
  bool larger_is_zero = false;
  if (AlignmentNeedsZeroTest(ea, eb, kMaxAlignShift16)) {
    const int16_t* larger = ea > eb ? a : b;
    larger_is_zero = std::all_of(larger, larger + n, [](int16_t v) { return v == 0; });
  }
  const AddAlignment align = AlignExponents(ea, eb, larger_is_zero, kMaxAlignShift16);
  if (align.swap) std::swap(a, b);
  for (int64_t i = 0; i < n; ++i) acc[i] = AlignedAddElement64(a[i], b[i], align.left, align.right);
  *acc_exponent = align.exponent;
}

namespace {

template <typename Acc>
Status AddBiasRows(Acc* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift, const char* type) {
  if (shift > 31) {
    return Status::Error("bias: alignment shift " + std::to_string(shift) +
                         " is too large (input exponent below -31)");
  }
  std::vector<int64_t> aligned(channels);
  for (int64_t c = 0; c < channels; ++c) aligned[c] = AlignedBias(bias[c], shift);
  for (int64_t r = 0; r < rows; ++r) {
    Acc* row = acc + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      if (!AddWithinRange(row[c], aligned[c], &row[c])) {
        return Status::Error(std::string(type) + " overflow: accumulator plus bias leaves " + type);
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status AddBias(int32_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  return AddBiasRows(acc, rows, channels, bias, shift, "int32");
}

Status AddBias(int64_t* acc, int64_t rows, int64_t channels, const int32_t* bias, int shift) {
  return AddBiasRows(acc, rows, channels, bias, shift, "int64");
}

}  // namespace keras_int

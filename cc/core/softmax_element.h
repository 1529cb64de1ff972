// Per-row and per-element arithmetic of the integer softmax (spec section
// 10), shared by the CPU core (softmax.cc) and the CUDA kernels: a base-2
// exponential with 8 fraction bits of the exponent, looked up in a table of
// 2**30 * 2**(-j/256), and the gradient's per-element value.
#ifndef KERAS_INT_CC_CORE_SOFTMAX_ELEMENT_H_
#define KERAS_INT_CC_CORE_SOFTMAX_ELEMENT_H_

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/integer_exp.h"
#include "cc/core/rounding.h"

namespace keras_int {

// The exponent t of a numerator 2**(-t / 2**8) (log2 units, 8 fraction bits).
constexpr int kSoftmaxExpFractionBits = 8;
// Numerators are 2**30 * 2**(-t / 256), rounded: the row maximum is 2**30.
constexpr int kSoftmaxNumeratorBits = 30;
// t at or beyond this (31 octaves below the row maximum) gives 0.
constexpr int64_t kSoftmaxExpCutoff = int64_t{31} << kSoftmaxExpFractionBits;
// Probabilities P = round(p * 2**22 / sum(p)) at exponent -22 before the
// final requantize; the forward's output exponent is in [-22, -6].
constexpr int kSoftmaxProbabilityBits = 22;

// round(2**30 * 2**(-j / 256)), j = 0..255 (tests/reference.py recomputes it).
#define KI_SOFTMAX_EXP2_TABLE \
    1073741824, 1070838486, 1067942999, 1065055341, 1062175491, 1059303428, 1056439131, 1053582579, \
    1050733751, 1047892626, 1045059183, 1042233401, 1039415261, 1036604740, 1033801819, 1031006477, \
    1028218693, 1025438448, 1022665720, 1019900489, 1017142735, 1014392438, 1011649578, 1008914134, \
    1006186087, 1003465416, 1000752102, 998046124, 995347464, 992656100, 989972014, 987295185, \
    984625594, 981963222, 979308048, 976660054, 974019220, 971385527, 968758955, 966139485, \
    963527098, 960921775, 958323496, 955732243, 953147997, 950570738, 948000448, 945437108, \
    942880699, 940331203, 937788600, 935252872, 932724001, 930201967, 927686753, 925178340, \
    922676710, 920181844, 917693724, 915212331, 912737649, 910269657, 907808339, 905353676, \
    902905651, 900464244, 898029440, 895601218, 893179563, 890764456, 888355878, 885953814, \
    883558244, 881169153, 878786521, 876410331, 874040567, 871677210, 869320244, 866969651, \
    864625413, 862287515, 859955938, 857630665, 855311680, 852998965, 850692504, 848392279, \
    846098274, 843810471, 841528855, 839253408, 836984114, 834720956, 832463917, 830212982, \
    827968132, 825729353, 823496627, 821269938, 819049271, 816834607, 814625932, 812423229, \
    810226483, 808035676, 805850792, 803671817, 801498734, 799331526, 797170178, 795014675, \
    792865000, 790721137, 788583072, 786450787, 784324269, 782203500, 780088465, 777979150, \
    775875538, 773777614, 771685363, 769598769, 767517817, 765442492, 763372778, 761308661, \
    759250125, 757197155, 755149737, 753107854, 751071493, 749040637, 747015274, 744995386, \
    742980960, 740971982, 738968435, 736970306, 734977579, 732990241, 731008277, 729031671, \
    727060411, 725094480, 723133865, 721178552, 719228525, 717283772, 715344277, 713410026, \
    711481005, 709557200, 707638598, 705725183, 703816941, 701913860, 700015924, 698123120, \
    696235434, 694352853, 692475362, 690602947, 688735596, 686873293, 685016026, 683163781, \
    681316545, 679474303, 677637043, 675804750, 673977412, 672155015, 670337545, 668524990, \
    666717336, 664914570, 663116678, 661323648, 659535466, 657752119, 655973594, 654199878, \
    652430958, 650666822, 648907455, 647152846, 645402981, 643657847, 641917433, 640181724, \
    638450708, 636724373, 635002706, 633285695, 631573326, 629865587, 628162466, 626463950, \
    624770026, 623080683, 621395908, 619715688, 618040012, 616368866, 614702239, 613040119, \
    611382493, 609729349, 608080675, 606436459, 604796689, 603161352, 601530438, 599903933, \
    598281827, 596664106, 595050760, 593441776, 591837143, 590236848, 588640881, 587049229, \
    585461881, 583878825, 582300049, 580725543, 579155293, 577589290, 576027521, 574469975, \
    572916640, 571367506, 569822560, 568281792, 566745190, 565212742, 563684439, 562160268, \
    560640218, 559124278, 557612438, 556104685, 554601009, 553101399, 551605844, 550114332, \
    548626854, 547143398, 545663953, 544188508, 542717053, 541249576, 539786068, 538326517, \

#if defined(__CUDACC__)
static __constant__ int32_t kSoftmaxExp2TableDevice[256] = {KI_SOFTMAX_EXP2_TABLE};
#endif
inline constexpr int32_t kSoftmaxExp2Table[256] = {KI_SOFTMAX_EXP2_TABLE};
#undef KI_SOFTMAX_EXP2_TABLE

KI_HOST_DEVICE int64_t SoftmaxExp2Fraction(int64_t j) {
#if defined(__CUDA_ARCH__)
  return kSoftmaxExp2TableDevice[j];
#else
  return kSoftmaxExp2Table[j];
#endif
}

// t for a logit d = q_max - q >= 0 mantissa units below the row maximum at
// exponent e, with the scale multiplier * 2**-shift: d * 2**e * c * log2(e)
// in units of 2**-8, i.e. round_shift(d * 47274 * multiplier, 7 + shift - e)
// (47274 / 2**15 ~= log2(e)), capped at kSoftmaxExpCutoff.
KI_HOST_DEVICE int64_t SoftmaxExpArgument(int32_t d, int exponent, int64_t multiplier, int shift) {
  const int64_t v = int64_t{d} * kLog2E * multiplier;  // < 2**8 * 2**16 * 2**16
  if (v == 0) return 0;
  const int left = exponent - shift - (kLog2EShift - kSoftmaxExpFractionBits);
  if (left >= 0) {
    return BitLength64(static_cast<uint64_t>(v)) + left > 13 ? kSoftmaxExpCutoff
                                                              : (v << left < kSoftmaxExpCutoff ? v << left
                                                                                              : kSoftmaxExpCutoff);
  }
  const int64_t t = -left >= 64 ? 0 : RoundShift64(v, -left, Rounding::kNearest, 0);
  return t < kSoftmaxExpCutoff ? t : kSoftmaxExpCutoff;
}

// The numerator 2**30 * 2**(-t / 256): the table entry of t's fraction,
// shifted right (nearest) by its integer part; 0 at the cutoff.
KI_HOST_DEVICE int64_t SoftmaxNumerator(int64_t t) {
  if (t >= kSoftmaxExpCutoff) return 0;
  return RoundShift64(SoftmaxExp2Fraction(t & 255), static_cast<int>(t >> kSoftmaxExpFractionBits),
                      Rounding::kNearest, 0);
}

// P = round(p * 2**22 / sum), sum > 0 (p <= sum, so P <= 2**22).
KI_HOST_DEVICE int32_t SoftmaxProbability(int64_t p, int64_t sum) {
  return static_cast<int32_t>(((p << (kSoftmaxProbabilityBits + 1)) + sum) / (2 * sum));
}

// The gradient's value of one element: y * (err * 2**-y_exponent - D) *
// multiplier, with D = sum(y * err) over the row.
KI_HOST_DEVICE int64_t SoftmaxGradValue(int8_t y, int8_t err, int y_exponent, int64_t dot, int64_t multiplier) {
  return int64_t{y} * (int64_t{err} * (int64_t{1} << -y_exponent) - dot) * multiplier;
}

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_SOFTMAX_ELEMENT_H_

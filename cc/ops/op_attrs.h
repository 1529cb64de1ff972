// Attributes several ops share, as enumerated attrs: TensorFlow then refuses
// any other value when the op is built, before a kernel runs.
#ifndef KERAS_INT_CC_OPS_OP_ATTRS_H_
#define KERAS_INT_CC_OPS_OP_ATTRS_H_

namespace keras_int {

// The four roundings of the spec (docs/algorithms.md 2; ParseRounding).
inline constexpr char kRoundingAttr[] =
    "rounding: {'nearest', 'pseudo_stochastic', 'stochastic', 'truncate'} = 'nearest'";

// TensorFlow's two paddings, upper case as in tf.nn (the Python wrappers
// accept any case).
inline constexpr char kPaddingAttr[] = "padding: {'SAME', 'VALID'}";

// The mantissa type of a layer op's input and weights.
inline constexpr char kMantissaTypeAttr[] = "T: {int8, int16} = DT_INT8";

// The exact products' result type: int32 for int8 operands, int64 for the
// int16 ones of the DFP16 datapath (docs/algorithms.md 16); kernels exist
// for those two pairs.
inline constexpr char kProductTypeAttr[] = "Tacc: {int32, int64} = DT_INT32";

}  // namespace keras_int

#endif  // KERAS_INT_CC_OPS_OP_ATTRS_H_

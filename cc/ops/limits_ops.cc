// Publishes the shared bounds of cc/core/limits.h to Python.
//
// IntOps>Limits is never run: its attributes' defaults are the constants,
// and tf_int_ops reads them from the op registry (tf_int_ops.ops._limits),
// so limits.h stays the one definition of each value. Its kernels do
// nothing; they exist because every op of the library has a CPU and (in
// `--config=cuda` builds) a GPU kernel (tests/test_gpu_build.py).
#include <cstdint>
#include <string>

#include "cc/core/limits.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace keras_int {

namespace {
// "name: int = value", the attribute whose default is `value`.
std::string IntAttr(const char* name, int64_t value) {
  return std::string(name) + ": int = " + std::to_string(value);
}
}  // namespace

// Attribute names are the lower-case Python names (tf_int_ops.MIN_EXPONENT
// is min_exponent).
REGISTER_OP("IntOps>Limits")
    .Attr(IntAttr("min_exponent", kMinExponent))
    .Attr(IntAttr("max_exponent", kMaxExponent))
    .Attr(IntAttr("min_acc_exponent", kMinAccExponent))
    .Attr(IntAttr("max_acc_exponent", kMaxAccExponent))
    .Attr(IntAttr("max_exact_depth", kMaxExactDepth))
    .Attr(IntAttr("max_align_shift", kMaxAlignShift))
    .Attr(IntAttr("avg_pool_shift", kAvgPoolShift))
    .Attr(IntAttr("avg_pool_window_log2", kAvgPoolWindowLog2))
    .Attr(IntAttr("max_pool_window_log2", kMaxPoolWindowLog2))
    .Attr(IntAttr("max_pool_carrier_taps", kMaxPoolCarrierMaxTaps))
    .Attr(IntAttr("cross_entropy_error_exponent", kCrossEntropyErrorExponent))
    .Attr(IntAttr("cross_entropy_max_classes", kCrossEntropyMaxClasses))
    .Attr(IntAttr("norm_max_rows", kNormMaxRows))
    .Attr(IntAttr("norm_fraction_bits", kNormFractionBits))
    .Attr(IntAttr("norm_momentum_bits", kNormMomentumBits))
    .Attr(IntAttr("norm_statistic_bits", kNormStatisticBits))
    .Attr(IntAttr("norm_epsilon_bits", kNormEpsilonBits))
    .Attr(IntAttr("norm_statistic_exponent_limit", kNormStatisticExponentLimit))
    .Attr(IntAttr("softmax_max_row", kSoftmaxMaxRow))
    .Attr(IntAttr("softmax_max_multiplier", kSoftmaxMaxMultiplier))
    .Attr(IntAttr("softmax_max_shift", kSoftmaxMaxShift))
    .Attr(IntAttr("embedding_max_lookups", kEmbeddingMaxLookups))
    .SetShapeFn(::tensorflow::shape_inference::NoOutputs)
    .Doc("Never run: its attributes' defaults publish the constants of cc/core/limits.h to Python "
         "through the op registry (tf_int_ops.MIN_EXPONENT, ...). No inputs, no outputs.");

namespace {
class LimitsOp : public ::tensorflow::OpKernel {
 public:
  explicit LimitsOp(::tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(::tensorflow::OpKernelContext*) override {}
};
}  // namespace

REGISTER_KERNEL_BUILDER(Name("IntOps>Limits").Device(::tensorflow::DEVICE_CPU), LimitsOp);
#if KERAS_INT_CUDA
REGISTER_KERNEL_BUILDER(Name("IntOps>Limits").Device(::tensorflow::DEVICE_GPU), LimitsOp);
#endif

}  // namespace keras_int

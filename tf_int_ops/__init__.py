"""tf_int_ops: integer-only training ops for TensorFlow.

Integer ops on DFP tensors (``q * 2**e``) in :mod:`tf_int_ops.ops`, and their
differentiable float32-carrier forms in :mod:`tf_int_ops.layer_ops`. The
compiled library is loaded on first use; if it is missing, the error says
how to build it.
"""

from tf_int_ops import _tf_internal
from tf_int_ops import layer_ops
from tf_int_ops.ops import (
    AVG_POOL_SHIFT,
    CROSS_ENTROPY_ERROR_EXPONENT,
    MAX_EXACT_DEPTH,
    MAX_EXPONENT,
    MIN_EXPONENT,
    ROUNDINGS,
    bit_length,
    dequantize,
    int8_weights,
    int_add,
    int_avg_pool2d,
    int_avg_pool2d_grad,
    int_conv2d,
    int_conv2d_backprop_filter,
    int_conv2d_backprop_input,
    int_matmul,
    int_max_pool2d,
    int_max_pool2d_grad,
    int_softmax_cross_entropy_grad,
    integer_sgd_update,
    quantize,
    requantize,
    round_shift,
)

__version__ = "0.1.0"

_tf_internal.check_versions()

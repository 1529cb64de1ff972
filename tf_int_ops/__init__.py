"""tf_int_ops: integer-only training ops for TensorFlow.

Integer ops on DFP tensors (``q * 2**e``) in :mod:`tf_int_ops.ops`, and their
differentiable float32-carrier forms in :mod:`tf_int_ops.layer_ops`. The
compiled library is loaded on first use; if it is missing, the error says
how to build it. The shared bounds (``MIN_EXPONENT``, ``MAX_EXPONENT``,
``MAX_EXACT_DEPTH``, ``AVG_POOL_SHIFT``, ``CROSS_ENTROPY_ERROR_EXPONENT``, ...)
are defined once, in cc/core/limits.h, and read from the library on first
access, so reading one loads it.
"""

from tf_int_ops import _quiet

_quiet.import_tensorflow()  # before anything imports TensorFlow: without its start-up lines

from tf_int_ops import _tf_internal  # noqa: E402
from tf_int_ops import layer_ops
from tf_int_ops import ops as _ops
from tf_int_ops.ops import (
    ROUNDINGS,
    bit_length,
    dequantize,
    int8_weights,
    int_add,
    int_avg_pool2d,
    int_avg_pool2d_grad,
    int_batch_matmul,
    int_conv2d,
    int_conv2d_backprop_filter,
    int_conv2d_backprop_input,
    int_matmul,
    int_max_pool2d,
    int_max_pool2d_grad,
    int_softmax_cross_entropy_grad,
    integer_adam_update,
    integer_sgd_update,
    quantize,
    requantize,
    round_shift,
)

__version__ = "0.1.0"


def __getattr__(name):
    # PEP 562: the constants of cc/core/limits.h (MIN_EXPONENT, MAX_EXACT_DEPTH,
    # ...; tf_int_ops.ops lists them) come from the library, loaded on first use.
    if name in _ops._LIMIT_NAMES:
        return getattr(_ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ops._LIMIT_NAMES))


_tf_internal.check_versions()

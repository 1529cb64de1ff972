"""What the layer ops with weights share: int8 weights read through their resource
handle, the optional int32 bias, the recorded error exponent, and their gradients' helpers.

Weights are int8 (or int16: the ops' ``T``) variables read by the op through their resource handle:
that is what lets ``tape.gradient(loss, int8_variable)`` return the int32
weight gradient. The ops' inputs and outputs are read by name
(``_op_args``), as ``cc/ops/layer_ops.cc`` registers them.
"""

import tensorflow as tf

from tf_int_ops import _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops
from tf_int_ops.layer_ops import _op_args


def _inner_variable(variable):
    """The tf.Variable behind `variable` (a tf.Variable or a Keras variable), or what unwrapping reached."""
    inner = variable
    while not isinstance(inner, tf.Variable) and hasattr(inner, "value"):
        inner = inner.value
    return inner


# The weight types the layer ops take (their attribute T, cc/ops/op_attrs.h):
# int8, and int16 for the DFP16 datapath (docs/algorithms.md 16).
WEIGHT_DTYPES = (tf.int8, tf.int16)


def resource_variable(variable, name, fn, dtypes=WEIGHT_DTYPES):
    """The tf.Variable behind `variable` (a tf.Variable or a Keras variable), watched."""
    inner = _inner_variable(variable)
    if not isinstance(inner, tf.Variable):
        raise ValueError(f"{fn}: {name} must be a variable (read through its handle), got {type(variable).__name__}")
    if inner.dtype not in dtypes:
        allowed = " or ".join(dtype.name for dtype in dtypes)
        raise ValueError(f"{fn}: {name} must be an {allowed} variable, got {inner.dtype.name}")
    # The op reads the variable through its handle; telling the tape makes the
    # variable a source of the gradient, as reading it would.
    _tf_internal.variable_accessed(inner)
    return inner


def biases(bias, fn):
    """The op's list of 0 or 1 int32 bias handles."""
    return [] if bias is None else [resource_variable(bias, "bias", fn, (tf.int32,)).handle]


def error_exponents(error_exponent, fn):
    """The op's list of 0 or 1 int32 variable handles the gradient records the error's exponent in.

    Not marked as accessed: the op never reads it, and it takes no gradient.
    """
    if error_exponent is None:
        return []
    inner = _inner_variable(error_exponent)
    if not isinstance(inner, tf.Variable) or inner.dtype != tf.int32 or inner.shape.rank != 0:
        raise ValueError(f"{fn}: error_exponent must be a scalar int32 variable, got {error_exponent!r}")
    return [inner.handle]


def bits(op):
    """The mantissa width of a layer op: 8, or 16 for ``T = int16``."""
    return 16 if op.get_attr("T") == tf.int16 else 8


def error(op, dy):
    """The error as mantissas of the op's width (int8, or int16 for ``T = int16``)
    and exponent, the exponent recorded when asked (an ``error_exponent``
    variable given to the op)."""
    err, err_exponent = ops.quantize(dy, bits=bits(op))
    for variable in _op_args.inputs(op)["error_exponent"]:
        tf.raw_ops.AssignVariableOp(resource=variable, value=err_exponent)
    return err, err_exponent


def bias_gradient(op, err):
    """The ``bias`` inputs' gradients: the integer sum of the error over all but the
    channel axis (a bias is a weight on a constant input of 1): int32 for int8
    errors, int64 for int16 ones (more than 2**16 rows of them reach 2**31)."""
    if op.get_attr("N") == 0:
        return []
    return [tf.reduce_sum(tf.cast(err, check.sum_dtype(err.dtype)), axis=tf.range(tf.rank(err) - 1))]

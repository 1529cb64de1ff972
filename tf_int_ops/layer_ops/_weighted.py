"""What the layer ops with weights share: int8 weights read through their resource
handle, the optional int32 bias, the recorded error exponent, and their gradients' helpers.

Weights are int8 (or int16: the ops' ``T``) variables read by the op through their resource handle:
that is what lets ``tape.gradient(loss, int8_variable)`` return the int32
weight gradient. The ops' inputs and outputs are read by name
(``_op_args``), as ``cc/ops/layer_ops.cc`` registers them.
"""

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import replicas
from tf_int_ops.layer_ops import _op_args, activations
from tf_int_ops.layer_ops._carrier import error_to_carrier


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
    return [] if bias is None else [_tf_internal.resource_handle(resource_variable(bias, "bias", fn, (tf.int32,)))]


def error_exponents(error_exponent, fn):
    """The op's list of 0 or 1 int32 variable handles the gradient records the error's exponent in.

    Not marked as accessed: the op never reads it, and it takes no gradient.
    """
    if error_exponent is None:
        return []
    inner = _inner_variable(error_exponent)
    if not isinstance(inner, tf.Variable) or inner.dtype != tf.int32 or inner.shape.rank != 0:
        raise ValueError(f"{fn}: error_exponent must be a scalar int32 variable, got {error_exponent!r}")
    return [_tf_internal.resource_handle(inner)]


def bits(op):
    """The mantissa width of a layer op: 8, or 16 for ``T = int16``."""
    return 16 if op.get_attr("T") == tf.int16 else 8


def quantize_error(dy, width, error_exponent_handles):
    """The error as `width`-bit mantissas and exponent (agreed across replicas
    under a tf.distribute strategy), the exponent recorded in the given
    ``error_exponent`` variable handles (0 or 1)."""
    err, err_exponent = replicas.quantize(dy, bits=width)
    for handle in error_exponent_handles:
        tf.raw_ops.AssignVariableOp(resource=handle, value=err_exponent)
    return err, err_exponent


def bias_gradients(count, err):
    """`count` (0 or 1) bias gradients: the integer sum of the error over all but the
    channel axis (a bias is a weight on a constant input of 1): int32 for int8
    errors, int64 for int16 ones (more than 2**16 rows of them reach 2**31)."""
    if count == 0:
        return []
    return [tf.reduce_sum(tf.cast(err, check.sum_dtype(err.dtype)), axis=tf.range(tf.rank(err) - 1))]


# The weight gradient from a 16-bit error is 8 bits finer than the one from
# the 8-bit error of the same dy (quantize puts the largest mantissa at 7
# or 15 bits): narrowed by this shift, an int8 layer's gradient keeps its
# int32 type and scale.
_WIDE_ERROR_EXTRA_BITS = 8


def _shift_nearest(values, k):
    """round_shift(values, k, nearest) on an int64 tensor, k >= 1 (an int64
    scalar): magnitudes rounded half away from zero, the sign restored
    (|values| + 2**(k - 1) must fit int64)."""
    one = tf.constant(1, tf.int64)
    magnitude = tf.bitwise.right_shift(tf.abs(values) + tf.bitwise.left_shift(one, k - 1), k)
    return tf.where(values < 0, -magnitude, magnitude)


def _narrowed(gradient, what):
    """An int64 gradient of 16-bit errors as the int32 gradient of an int8 layer:
    round_shift(gradient, 8, nearest), an error where it leaves int32
    (docs/algorithms.md 5)."""
    return replicas.int32_exactly(_shift_nearest(gradient, tf.constant(_WIDE_ERROR_EXTRA_BITS, tf.int64)),
                                  f"int32 overflow: the {what} gradient of 16-bit errors leaves int32")


def backward(dy, x_q, w, weights_exponent, width, error_exponent_handles, bias_count, backward_products,
             error_bits=None):
    """The gradients of a layer op with weights, from the mantissas its forward pass kept:
    ``(dx carrier, weight gradient, [bias gradient]*bias_count)``. The error is
    quantized (``quantize_error``) to ``error_bits`` (default: the layer's
    width), multiplied by ``backward_products(x_q, w, err)`` -> (the error
    accumulator of x, the weight gradient), and the input error requantized;
    under a strategy every exponent is agreed.

    16-bit errors into an int8 layer (``error_bits=16``, docs/algorithms.md 5):
    the products run on the int8 mantissas widened to int16 (exact int64
    sums), ``dx`` is a 16-bit carrier, and the weight and bias gradients,
    summed over every row before any rounding, are narrowed to the int32
    gradients an 8-bit error gives."""
    error_bits = width if error_bits is None else max(width, error_bits)
    err, err_exponent = quantize_error(dy, error_bits, error_exponent_handles)
    if error_bits == width:
        dx_acc, dw = backward_products(x_q, w, err)
        return error_to_carrier(dx_acc, err_exponent + weights_exponent, width), dw, bias_gradients(bias_count, err)
    dx_acc, dw = backward_products(tf.cast(x_q, tf.int16), tf.cast(w, tf.int16), err)
    wide = [dw] + bias_gradients(bias_count, err)
    if replicas.count() > 1:
        # One rounding of the whole batch's sum, as on one device: the sums
        # over the replicas first; the first replica hands the rounded total
        # to the optimizer and the others zeros, so that the optimizer's own
        # exact sum over the replicas is that total.
        first = tf.equal(replicas.index(), 0)
        wide = [tf.where(first, total, tf.zeros_like(total)) for total in replicas.sum_exactly(wide)]
    return (error_to_carrier(dx_acc, err_exponent + weights_exponent, error_bits), _narrowed(wide[0], "weight"),
            [_narrowed(b, "bias") for b in wide[1:]])


def op_backward(op, dy, weights_name, backward_products):
    """``backward`` of a fused layer op (``IntOps>Dense``, ``IntOps>Conv2DLayer``): the
    weights it used (``<weights>_q``, not a fresh read of the variable, which the
    optimizer may already have updated), its exponents and width; with its
    ReLU (``relu``) the error first passes the ReLU's mask."""
    inputs, outputs = _op_args.inputs(op), _op_args.outputs(op)
    if op.get_attr("relu"):
        dy = _loader.load().int_ops_relu_grad(dy, outputs["mask"])
    return backward(dy, outputs["x_q"], outputs[f"{weights_name}_q"], inputs[f"{weights_name}_exponent"], bits(op),
                    inputs["error_exponent"], op.get_attr("N"), backward_products, op.get_attr("error_bits"))


def _aligned_bias_sum(acc, bias, x_exponent):
    """acc + the int32 bias (at the weights' exponent) aligned to acc's exponent
    (x_exponent higher): what the layer ops' AddBias does (docs/algorithms.md 8),
    in int64 TensorFlow integer ops, with the same errors."""
    shift = -tf.convert_to_tensor(x_exponent, tf.int32)
    too_far = tf.debugging.assert_less_equal(
        shift, 31, message="bias: alignment shift is too large (input exponent below -31)")
    b = tf.cast(bias, tf.int64)
    left = b * tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.cast(tf.clip_by_value(shift, 0, 31), tf.int64))
    k = tf.cast(tf.clip_by_value(-shift, 1, 63), tf.int64)
    aligned = tf.where(shift >= 0, left, _shift_nearest(b, k))  # |b| < 2**31: no overflow
    with tf.control_dependencies([too_far]):
        if acc.dtype == tf.int32:
            return replicas.int32_exactly(tf.cast(acc, tf.int64) + aligned,
                                          "int32 overflow: accumulator plus bias leaves int32")
        total = acc + aligned
        wrapped = tf.reduce_any(tf.bitwise.bitwise_and(tf.bitwise.bitwise_xor(acc, total),
                                                       tf.bitwise.bitwise_xor(aligned, total)) < 0)
        fits = tf.debugging.assert_equal(wrapped, False,
                                         message="int64 overflow: accumulator plus bias leaves int64")
        with tf.control_dependencies([fits]):
            return tf.identity(total)


def across_replicas(x, variable, bias, weights_exponent, rounding, seed, error_exponent, fn,
                    product, backward_products, relu=False, error_bits=8):
    """A layer op (quantize, product, bias, requantize) computed so that every
    replica of a tf.distribute strategy takes the exponent decisions one device
    takes over the whole batch (tf_int_ops.replicas), forward and backward.

    The fused layer op decides its exponents inside one kernel, where no
    replica can take part; here the same steps run as separate ops with the
    agreements between them. The weights are read through their handle, as
    the fused op reads them, so the tape still hands the integer weight
    gradient to the variable.

    product(x_q, w) -> the int32 (int64) accumulator; backward_products(x_q, w,
    err) -> (the error accumulator of x, the weight gradient). ``relu``: the
    layer op's ReLU, here a separate ReLU after the agreed requantize (the
    same values). ``error_bits``: the width of the error (``backward``).
    Returns ``(y, y_exponent)``.
    """
    width = 16 if variable.dtype == tf.int16 else 8
    weights_exponent = tf.convert_to_tensor(weights_exponent, tf.int32)
    seed = check.seed(seed, rounding, fn)
    bias_handles = biases(bias, fn)
    error_handles = error_exponents(error_exponent, fn)

    @tf.custom_gradient
    def run(x, weights_handle, *bias_handle):
        w = tf.raw_ops.ReadVariableOp(resource=weights_handle, dtype=variable.dtype)
        x_q, x_exponent = replicas.quantize(x, bits=width)
        acc = product(x_q, w)
        if bias_handle:
            acc = _aligned_bias_sum(acc, tf.raw_ops.ReadVariableOp(resource=bias_handle[0], dtype=tf.int32),
                                    x_exponent)
        y, y_exponent = replicas.requantize_to_carrier(acc, x_exponent + weights_exponent, rounding, seed, width)

        def grad(dy, *unused_exponent_gradient):
            dx, dw, dbias = backward(dy, x_q, w, weights_exponent, width, error_handles, len(bias_handle),
                                     backward_products, error_bits)
            return [dx, dw] + dbias

        return (y, y_exponent), grad

    y, y_exponent = run(x, _tf_internal.resource_handle(variable), *bias_handles)
    return (activations.relu(y) if relu else y), y_exponent

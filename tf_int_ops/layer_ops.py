"""Differentiable ops on float32 carriers, the building blocks of keras_int.

A carrier is a float32 tensor whose values are exactly ``q * 2**e`` with int8
``q``: converting it to ``(q, e)`` (``quantize``) and back (``dequantize``)
is exact, so integer layers can sit in an ordinary Keras graph and be mixed
with float layers. Every function here converts its carrier inputs to
integers, works in integers, and returns a carrier; its gradient does the
same with the error carrier and keeps only int8 mantissas (and int32
exponents) of the forward pass, never float carriers.

Weights are int8 variables read by the op through their resource handle:
that is what lets ``tape.gradient(loss, int8_variable)`` return the int32
weight gradient (see ARCHITECTURE.md).
"""

import tensorflow as tf
from tensorflow.python.eager import tape as tape_lib
from tensorflow.python.ops import resource_variable_ops

from tf_int_ops import _loader
from tf_int_ops import ops


def _inner_variable(variable):
    """The tf.Variable behind `variable` (a tf.Variable or a Keras variable), or what unwrapping reached."""
    inner = variable
    while not isinstance(inner, tf.Variable) and hasattr(inner, "value"):
        inner = inner.value
    return inner


def _resource_variable(variable, name, fn, dtype=tf.int8):
    """The tf.Variable behind `variable` (a tf.Variable or a Keras variable), watched."""
    inner = _inner_variable(variable)
    if not isinstance(inner, tf.Variable):
        raise ValueError(f"{fn}: {name} must be a variable (read through its handle), got {type(variable).__name__}")
    if inner.dtype != dtype:
        raise ValueError(f"{fn}: {name} must be an {dtype.name} variable, got {inner.dtype.name}")
    # The op reads the variable through its handle; telling the tape makes the
    # variable a source of the gradient, as reading it would.
    tape_lib.variable_accessed(inner)
    return inner


def _carrier(x, name, fn):
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        raise ValueError(f"{fn}: {name} must be a float32 carrier, got {x.dtype.name}")
    return x


def _biases(bias, fn):
    """The op's list of 0 or 1 int32 bias handles."""
    return [] if bias is None else [_resource_variable(bias, "bias", fn, tf.int32).handle]


def _error_exponents(error_exponent, fn):
    """The op's list of 0 or 1 int32 variable handles the gradient records the error's exponent in.

    Not marked as accessed: the op never reads it, and it takes no gradient.
    """
    if error_exponent is None:
        return []
    inner = _inner_variable(error_exponent)
    if not isinstance(inner, tf.Variable) or inner.dtype != tf.int32 or inner.shape.rank != 0:
        raise ValueError(f"{fn}: error_exponent must be a scalar int32 variable, got {error_exponent!r}")
    return [inner.handle]


def dense(x, kernel, kernel_exponent, rounding="nearest", seed=None, bias=None, error_exponent=None):
    """Integer dense layer on a carrier: ``requantize(quantize(x) @ kernel + bias)``.

    Args:
      x: float32 carrier (or raw input, quantized exactly as the spec says),
        shape ``[..., in]``.
      kernel: int8 variable ``[in, units]``.
      kernel_exponent: int32 scalar, the kernel's exponent.
      bias: optional int32 variable ``[units]`` at the kernel's exponent (a
        weight on a constant input of 1), aligned exactly to the accumulator.
      error_exponent: optional scalar int32 variable; the backward pass
        stores the exponent of the error reaching ``y`` in it.
    Returns:
      ``(y, y_exponent)``: the output carrier ``[..., units]`` and its exponent.

    >>> w = tf.Variable(tf.ones([3, 2], tf.int8))
    >>> y, e = dense(tf.constant([[0.5, 0.25, 1.0]]), w, -7)
    """
    fn = "dense"
    x = _carrier(x, "x", fn)
    variable = _resource_variable(kernel, "kernel", fn)
    rounding = ops._rounding(rounding, fn)
    if x.shape.rank is not None and x.shape.rank < 2:
        raise ValueError(f"{fn}: x must have rank >= 2, got shape {x.shape}")
    flat = x if x.shape.rank == 2 else tf.reshape(x, [-1, tf.shape(x)[-1]])
    y, y_exponent, _, _, _ = _loader.load().int_ops_dense(
        flat, variable.handle, _biases(bias, fn), ops._exponent(kernel_exponent, fn, "kernel_exponent"),
        ops._seed(seed, rounding, fn), _error_exponents(error_exponent, fn), rounding=rounding)
    if x.shape.rank != 2:
        y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], tf.shape(y)[-1:]], 0))
    return y, y_exponent


def conv2d(x, kernel, kernel_exponent, strides=1, padding="SAME", dilations=1,
           rounding="nearest", seed=None, bias=None, error_exponent=None):
    """Integer 2-D convolution on an NHWC carrier with an int8 HWIO kernel variable.

    ``bias``: optional int32 variable ``[filters]`` at the kernel's exponent.
    ``error_exponent``: optional scalar int32 variable where the backward
    pass stores the exponent of the error reaching ``y``.
    Returns ``(y, y_exponent)``.

    >>> w = tf.Variable(tf.ones([3, 3, 1, 4], tf.int8))
    >>> y, e = conv2d(tf.ones([1, 5, 5, 1]), w, -7, padding="SAME")
    """
    fn = "conv2d"
    x = _carrier(x, "x", fn)
    ops._rank(x, 4, "x", fn)
    variable = _resource_variable(kernel, "kernel", fn)
    rounding = ops._rounding(rounding, fn)
    y, y_exponent, _, _, _ = _loader.load().int_ops_conv2d_layer(
        x, variable.handle, _biases(bias, fn), ops._exponent(kernel_exponent, fn, "kernel_exponent"),
        ops._seed(seed, rounding, fn), _error_exponents(error_exponent, fn), rounding=rounding,
        **ops._conv_attrs(strides, padding, dilations, fn))
    return y, y_exponent


def _error_to_carrier(acc, exponent):
    """An int32 error accumulator -> requantized (nearest) carrier, in one op."""
    return _loader.load().int_ops_requantize_to_carrier(acc, exponent, ops._seed(None, "nearest", "error"))[0]


@tf.RegisterGradient("IntOps>Dense")
def _dense_grad(op, dy, *unused_output_grads):
    # The weights the forward pass used (output 4), not a fresh read of the
    # variable, which the optimizer may already have updated.
    x_q, kernel = op.outputs[2], op.outputs[4]
    err, err_exponent = _error(op, dy)
    dx = _error_to_carrier(ops.int_matmul(err, kernel, transpose_w=True),
                           err_exponent + _kernel_exponent(op))
    dkernel = ops.int_matmul(x_q, err, transpose_x=True)
    return [dx, dkernel, *_bias_gradient(op, err), None, None, *_no_gradients(op)]


def _error(op, dy):
    """The error as int8 mantissas and exponent, the exponent recorded when asked (M = 1)."""
    err, err_exponent = ops.quantize(dy)
    if op.get_attr("M"):
        resource_variable_ops.assign_variable_op(op.inputs[-1], err_exponent)
    return err, err_exponent


def _no_gradients(op):
    return [None] * op.get_attr("M")


def _kernel_exponent(op):
    return op.inputs[2 + op.get_attr("N")]


def _bias_gradient(op, err):
    """int32 sum of the error over all but the channel axis (bias = weight on input 1)."""
    if op.get_attr("N") == 0:
        return []
    return [tf.reduce_sum(tf.cast(err, tf.int32), axis=tf.range(tf.rank(err) - 1))]


@tf.RegisterGradient("IntOps>Conv2DLayer")
def _conv2d_grad(op, dy, *unused_output_grads):
    x_q, kernel = op.outputs[2], op.outputs[4]
    attrs = dict(strides=op.get_attr("strides"), padding=op.get_attr("padding").decode(),
                 dilations=op.get_attr("dilations"))
    err, err_exponent = _error(op, dy)
    dx = _error_to_carrier(
        ops.int_conv2d_backprop_input(tf.shape(x_q), kernel, err, **attrs),
        err_exponent + _kernel_exponent(op))
    dkernel = ops.int_conv2d_backprop_filter(x_q, tf.shape(kernel), err, **attrs)
    return [dx, dkernel, *_bias_gradient(op, err), None, None, *_no_gradients(op)]


def relu(x):
    """Integer ReLU on a carrier; the exponent is unchanged.

    For a carrier ``q * 2**e``, ``q > 0`` exactly when the float's sign bit is
    clear and it is not zero, so the op tests those bits and keeps a mask of
    one bit per element for the gradient; no conversion pass is needed. In
    a traced step the output reuses the input's buffer when nothing else
    holds it.

    >>> relu(tf.constant([-1.0, 0.5]))  # [0.0, 0.5]
    """
    x = _carrier(x, "x", "relu")
    return _loader.load().int_ops_relu(x)[0]


@tf.RegisterGradient("IntOps>MaxPoolCarrier")
def _max_pool_carrier_grad(op, dy, unused_which_grad):
    attrs = {name: op.get_attr(name) for name in ("ksize", "strides")}
    return _loader.load().int_ops_max_pool_carrier_grad(
        tf.shape(op.inputs[0]), dy, op.outputs[1], padding=op.get_attr("padding").decode(), **attrs)


@tf.RegisterGradient("IntOps>Relu")
def _relu_grad(op, dy, unused_mask_grad):
    return _loader.load().int_ops_relu_grad(dy, op.outputs[1])


def max_pool2d(x, pool_size=2, strides=None, padding="VALID"):
    """Integer max pooling on an NHWC carrier; the backward pass is integer too.

    Windows that do not overlap (the usual ``strides == pool_size``) are
    pooled by ``IntOps>MaxPoolCarrier``: integer comparisons of the carrier's
    bit patterns, which order like the values, so the int8 mantissas are
    compared without converting to int8 and back (the same result), and the
    gradient routes the error carrier to each window's recorded maximum
    without arithmetic. A raw float input (not a carrier) is pooled the same
    way, so it reaches the next integer layer unquantized, which quantizes it.
    Overlapping windows quantize, pool the int8 mantissas and route int8
    errors with int32 sums.
    """
    fn = "max_pool2d"
    x = _carrier(x, "x", fn)
    ops._rank(x, 4, "x", fn)
    attrs = ops._pool_attrs(pool_size, strides, padding, fn)
    (k_h, k_w), (s_h, s_w) = attrs["ksize"], attrs["strides"]
    if s_h >= k_h and s_w >= k_w and k_h * k_w <= 256:
        return _loader.load().int_ops_max_pool_carrier(x, **attrs)[0]

    @tf.custom_gradient
    def _max_pool(x):
        q, e = ops.quantize(x)
        y = ops.dequantize(ops.int_max_pool2d(q, pool_size, strides, padding), e)

        def grad(dy):
            err, err_exponent = ops.quantize(dy)
            return _error_to_carrier(
                ops.int_max_pool2d_grad(q, err, pool_size, strides, padding), err_exponent)

        return y, grad

    return _max_pool(x)


def avg_pool2d(x, pool_size=2, strides=None, padding="VALID", rounding="nearest", seed=None):
    """Integer average pooling on an NHWC carrier."""
    x = _carrier(x, "x", "avg_pool2d")
    ops._rank(x, 4, "x", "avg_pool2d")

    @tf.custom_gradient
    def _avg_pool(x):
        q, e = ops.quantize(x)
        input_sizes = tf.shape(q)
        y_q, y_e = ops.int_avg_pool2d(q, e, pool_size, strides, padding, rounding, seed)

        def grad(dy):
            err, err_exponent = ops.quantize(dy)
            dx, dx_e = ops.int_avg_pool2d_grad(input_sizes, err, err_exponent, pool_size,
                                               strides, padding)
            return ops.dequantize(dx, dx_e)

        return ops.dequantize(y_q, y_e), grad

    return _avg_pool(x)


def add(a, b, rounding="nearest", seed=None):
    """Residual add of two carriers: exponents aligned exactly, one rounding."""
    a = _carrier(a, "a", "add")
    b = _carrier(b, "b", "add")

    @tf.custom_gradient
    def _add(a, b):
        qa, ea = ops.quantize(a)
        qb, eb = ops.quantize(b)
        q, e = ops.int_add(qa, ea, qb, eb, rounding, seed)

        def grad(dy):
            # d(a + b)/da = d(a + b)/db = 1: the error carrier passes unchanged.
            return tf.identity(dy), tf.identity(dy)

        return ops.dequantize(q, e), grad

    return _add(a, b)


def dropout(x, keep_bits, seed):
    """Integer dropout: keeps each element with probability ``2**-keep_bits``.

    The kept int8 mantissas are unchanged and the exponent grows by
    ``keep_bits`` (the 1/keep scaling, exact). The mask comes from an integer
    counter-based generator keyed by ``seed`` ([key, step]), so it is
    reproducible. Returns the output carrier.
    """
    x = _carrier(x, "x", "dropout")
    if not isinstance(keep_bits, int) or not 1 <= keep_bits <= 16:
        raise ValueError(f"dropout: keep_bits must be an int in [1, 16], got {keep_bits!r}")
    seed = ops._seed(seed, "stochastic", "dropout")

    @tf.custom_gradient
    def _dropout(x):
        q, e = ops.quantize(x)
        draw = tf.random.stateless_uniform(tf.shape(q), seed, minval=0, maxval=2**keep_bits,
                                           dtype=tf.int32)
        keep = tf.equal(draw, 0)
        y = ops.dequantize(tf.where(keep, q, tf.zeros_like(q)), e + keep_bits)

        def grad(dy):
            err, err_exponent = ops.quantize(dy)
            return ops.dequantize(tf.where(keep, err, tf.zeros_like(err)), err_exponent + keep_bits)

        return y, grad

    return _dropout(x)


def softmax_cross_entropy(labels, logits, rounding="pseudo_stochastic", seed=None):
    """Per-sample cross-entropy whose gradient is NITI's integer one.

    The returned loss values are computed in float32 for display only; they
    take no part in training. The gradient is
    ``int_softmax_cross_entropy_grad`` scaled, in integers, by the upstream
    gradient (Keras' 1/batch): each row's error is multiplied by the int8
    mantissa of its upstream factor and requantized, which is exact when the
    factor is a power of two.

    Args:
      labels: int class indices ``[batch]``.
      logits: float32 carrier ``[batch, classes]``.
    """
    fn = "softmax_cross_entropy"
    logits = _carrier(logits, "logits", fn)
    labels = ops._one_of(labels, (tf.int32, tf.int64), "labels", fn)

    @tf.custom_gradient
    def _loss(logits):
        q, e = ops.quantize(logits)
        display_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)

        def grad(upstream):
            err, err_exponent = ops.int_softmax_cross_entropy_grad(q, e, labels, rounding, seed)
            scale, scale_exponent = ops.quantize(upstream)
            acc = tf.cast(err, tf.int32) * tf.cast(scale, tf.int32)[:, tf.newaxis]
            return _error_to_carrier(acc, err_exponent + scale_exponent)

        return display_loss, grad

    return _loss(logits)


for _op_name in ("BitLength", "ReluGrad", "MaxPoolCarrierGrad", "RequantizeToCarrier", "Quantize",
                 "Dequantize", "Requantize", "RoundShift", "AlignedAdd", "MatMul",
                 "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MaxPool",
                 "MaxPoolGrad", "AvgPool", "AvgPoolGrad", "SoftmaxCrossEntropyGrad",
                 "SgdUpdate"):
    # Integer ops have no gradient: integer tensors never carry one in
    # TensorFlow's tape. The float32 carrier ops above are the differentiable
    # surface.
    tf.no_gradient(f"IntOps>{_op_name}")

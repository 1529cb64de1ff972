"""The 2-D convolution layer op on carriers (keras_int.layers.IntConv2D) and its integer gradient."""

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args, _weighted


def conv2d(x, kernel, kernel_exponent, strides=1, padding="SAME", dilations=1,
           rounding="nearest", seed=None, bias=None, error_exponent=None, relu=False, error_bits=8):
    """Integer 2-D convolution on an NHWC carrier with an int8 (or int16: DFP16) HWIO kernel variable.

    ``bias``: optional int32 variable ``[filters]`` at the kernel's exponent.
    ``error_exponent``: optional scalar int32 variable where the backward
    pass stores the exponent of the error reaching ``y``.
    ``relu``: ReLU on the output in the requantize pass (the exponent is
    decided before it, as ``relu(conv2d(...))`` would).
    ``error_bits``: 8 or 16, the width of the error the gradient quantizes
    (as ``dense``'s).
    Returns ``(y, y_exponent)``.

    >>> w = tf.Variable(tf.ones([3, 3, 1, 4], tf.int8))
    >>> y, e = conv2d(tf.ones([1, 5, 5, 1]), w, -7, padding="SAME")
    """
    fn = "conv2d"
    x = check.carrier(x, "x", fn)
    check.rank(x, 4, "x", fn)
    variable = _weighted.resource_variable(kernel, "kernel", fn)
    rounding = check.rounding(rounding, fn)
    attrs = check.conv_attrs(strides, padding, dilations, fn)
    kernel_exponent = check.exponent(kernel_exponent, fn, "kernel_exponent")
    check.bits(error_bits, fn + ": error_bits")
    if replicas.count() > 1:
        return _weighted.across_replicas(
            x, variable, bias, kernel_exponent, rounding, seed, error_exponent, fn,
            lambda x_q, w: ops.int_conv2d(x_q, w, **attrs),
            lambda x_q, w, err: _conv2d_backward_products(x_q, w, err, attrs), relu, error_bits)
    y, y_exponent, _, _, _, _ = _loader.load().int_ops_conv2d_layer(
        x, _tf_internal.resource_handle(variable), _weighted.biases(bias, fn), kernel_exponent,
        check.seed(seed, rounding, fn), _weighted.error_exponents(error_exponent, fn), T=variable.dtype,
        rounding=rounding, relu=relu, error_bits=error_bits, **attrs)
    return y, y_exponent


def _conv2d_backward_products(x_q, kernel, err, attrs):
    """The error accumulator of x and the kernel gradient of a convolution."""
    return (ops.int_conv2d_backprop_input(tf.shape(x_q), kernel, err, **attrs),
            ops.int_conv2d_backprop_filter(x_q, tf.shape(kernel), err, **attrs))


@tf.RegisterGradient("IntOps>Conv2DLayer")
def _conv2d_grad(op, dy, *unused_output_grads):
    attrs = dict(strides=op.get_attr("strides"), padding=op.get_attr("padding").decode(),
                 dilations=op.get_attr("dilations"))
    dx, dfilter, dbias = _weighted.op_backward(
        op, dy, "filter", lambda x_q, w, err: _conv2d_backward_products(x_q, w, err, attrs))
    return _op_args.gradients(op, x=dx, filter=dfilter, bias=dbias)

"""The dense layer op on carriers (keras_int.layers.IntDense) and its integer gradient."""

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args, _weighted


def dense(x, kernel, kernel_exponent, rounding="nearest", seed=None, bias=None, error_exponent=None, relu=False,
          error_bits=8):
    """Integer dense layer on a carrier: ``requantize(quantize(x) @ kernel + bias)``.

    Args:
      x: float32 carrier (or raw input, quantized exactly as the spec says),
        shape ``[..., in]``.
      kernel: int8 variable ``[in, units]``, or int16 (the DFP16 datapath,
        docs/algorithms.md 16: x is quantized to int16, the products are
        exact int64 sums and y carries 16-bit mantissas).
      kernel_exponent: int32 scalar, the kernel's exponent.
      bias: optional int32 variable ``[units]`` at the kernel's exponent (a
        weight on a constant input of 1), aligned exactly to the accumulator.
      error_exponent: optional scalar int32 variable; the backward pass
        stores the exponent of the error reaching ``y`` in it.
      relu: ReLU on the output, in the requantize pass (the exponent is
        decided before it, as ``relu(dense(...))`` would), and its mask
        for the gradient.
      error_bits: 8 or 16, the mantissa width of the error the gradient
        quantizes (docs/algorithms.md 5; 16 with an int8 kernel: int16
        products, a 16-bit ``dx``, the kernel gradient rounded once after
        its sum). A 16-bit kernel's errors are 16-bit whatever this says.
    Returns:
      ``(y, y_exponent)``: the output carrier ``[..., units]`` and its exponent.

    >>> w = tf.Variable(tf.ones([3, 2], tf.int8))
    >>> y, e = dense(tf.constant([[0.5, 0.25, 1.0]]), w, -7)
    """
    fn = "dense"
    x = check.carrier(x, "x", fn)
    variable = _weighted.resource_variable(kernel, "kernel", fn)
    rounding = check.rounding(rounding, fn)
    if x.shape.rank is not None and x.shape.rank < 2:
        raise ValueError(f"{fn}: x must have rank >= 2, got shape {x.shape}")
    flat = x if x.shape.rank == 2 else tf.reshape(x, [-1, tf.shape(x)[-1]])
    kernel_exponent = check.exponent(kernel_exponent, fn, "kernel_exponent")
    check.bits(error_bits, fn + ": error_bits")
    if replicas.count() > 1:
        y, y_exponent = _weighted.across_replicas(
            flat, variable, bias, kernel_exponent, rounding, seed, error_exponent, fn,
            ops.int_matmul, _dense_backward_products, relu, error_bits)
    else:
        y, y_exponent, _, _, _, _ = _loader.load().int_ops_dense(
            flat, _tf_internal.resource_handle(variable), _weighted.biases(bias, fn), kernel_exponent,
            check.seed(seed, rounding, fn), _weighted.error_exponents(error_exponent, fn), T=variable.dtype,
            rounding=rounding, relu=relu, error_bits=error_bits)
    if x.shape.rank != 2:
        y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], tf.shape(y)[-1:]], 0))
    return y, y_exponent


def _dense_backward_products(x_q, kernel, err):
    """(err @ kernel^T, x_q^T @ err): the error accumulator of x and the kernel gradient."""
    return ops.int_matmul(err, kernel, transpose_w=True), ops.int_matmul(x_q, err, transpose_x=True)


@tf.RegisterGradient("IntOps>Dense")
def _dense_grad(op, dy, *unused_output_grads):
    dx, dkernel, dbias = _weighted.op_backward(op, dy, "kernel", _dense_backward_products)
    return _op_args.gradients(op, x=dx, kernel=dkernel, bias=dbias)

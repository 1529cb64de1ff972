"""Regularization ops on carriers (keras_int.layers.IntDropout)."""

import tensorflow as tf

from tf_int_ops import _validation as check
from tf_int_ops import ops


def dropout(x, keep_bits, seed, bits=8):
    """Integer dropout: keeps each element with probability ``2**-keep_bits``.

    The kept mantissas (``bits``: 8, or 16 for DFP16) are unchanged and the
    exponent grows by ``keep_bits`` (the 1/keep scaling, exact). The mask
    comes from an integer counter-based generator keyed by ``seed`` ([key,
    step]), so it is reproducible. Returns the output carrier.
    """
    x = check.carrier(x, "x", "dropout")
    keep_bits = check.int_in(keep_bits, "keep_bits", "dropout", 1, 16)
    seed = check.seed(seed, "stochastic", "dropout")
    check.bits(bits, "dropout")

    @tf.custom_gradient
    def _dropout(x):
        q, e = ops.quantize(x, bits=bits)
        draw = tf.random.stateless_uniform(tf.shape(q), seed, minval=0, maxval=2**keep_bits,
                                           dtype=tf.int32)
        keep = tf.equal(draw, 0)
        y = ops.dequantize(tf.where(keep, q, tf.zeros_like(q)), e + keep_bits)

        def grad(dy):
            err, err_exponent = ops.quantize(dy, bits=bits)
            return ops.dequantize(tf.where(keep, err, tf.zeros_like(err)), err_exponent + keep_bits)

        return y, grad

    return _dropout(x)

"""Regularization ops on carriers (keras_int.layers.IntDropout)."""

import tensorflow as tf

from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas


def _draw(q, keep_bits, seed):
    """Integers in [0, 2**keep_bits), one per element of `q`. Under a
    tf.distribute strategy each replica takes its rows of the draw for the
    whole batch (the replicas hold consecutive, equal slices of it), so the
    masks are those of one device with the whole batch."""
    shape = tf.shape(q)
    if q.shape.rank == 0 or replicas.count() == 1:
        return tf.random.stateless_uniform(shape, seed, minval=0, maxval=2**keep_bits, dtype=tf.int32)
    rows = shape[0]
    batch = tf.concat([[rows * replicas.count()], shape[1:]], 0)
    draw = tf.random.stateless_uniform(batch, seed, minval=0, maxval=2**keep_bits, dtype=tf.int32)
    return draw[rows * replicas.index():rows * (replicas.index() + 1)]


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
        q, e = replicas.quantize(x, bits=bits)
        keep = tf.equal(_draw(q, keep_bits, seed), 0)
        y = ops.dequantize(tf.where(keep, q, tf.zeros_like(q)), e + keep_bits)

        def grad(dy):
            err, err_exponent = replicas.quantize(dy, bits=bits)
            return ops.dequantize(tf.where(keep, err, tf.zeros_like(err)), err_exponent + keep_bits)

        return y, grad

    return _dropout(x)

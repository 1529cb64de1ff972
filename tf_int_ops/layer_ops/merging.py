"""Merging ops on carriers (keras_int.layers.IntAdd)."""

import tensorflow as tf

from tf_int_ops import _validation as check
from tf_int_ops import replicas
from tf_int_ops.layer_ops._carrier import error_to_carrier


def _same_shape(a, b):
    """Whether a and b have one static shape (None only where both have it)."""
    return a.shape.rank is not None and a.shape.as_list() == b.shape.as_list()


def _reduce_error(dy, shape, bits):
    """The error of an operand of shape `shape` broadcast to dy's shape: dy
    quantized to `bits`, summed over the broadcast axes in int32 (int64 for
    16 bits), requantized (nearest)."""
    err, e_err = replicas.quantize(dy, bits=bits)
    axes, _ = tf.raw_ops.BroadcastGradientArgs(s0=shape, s1=tf.shape(dy))
    # int8: at most 2**24 terms of |err| <= 127 fit int32.
    total = tf.reduce_sum(tf.cast(err, check.sum_dtype(err.dtype)), axis=axes)
    return error_to_carrier(tf.reshape(total, shape), e_err, bits)


def add(a, b, rounding="nearest", seed=None, bits=8):
    """Residual add of two carriers: exponents aligned exactly, one rounding.

    The operands broadcast as in ``tf.add`` (and Keras' ``Add``). The error
    of a broadcast operand is the integer sum of the error over the axes it
    was broadcast along. ``bits``: the mantissa width (8, or 16 for DFP16).

    >>> add(tf.ones([2, 3]), tf.constant([0.5, 0.25, 1.0]))   # [2, 3]
    """
    a = check.carrier(a, "a", "add")
    b = check.carrier(b, "b", "add")
    check.bits(bits, "add")
    if replicas.count() > 1 and (a.shape.rank != b.shape.rank or a.shape[:1] != b.shape[:1]):
        # Its error would be summed over the batch, which the replicas split:
        # rounded per replica, not as one device rounds it.
        raise ValueError(f"add: under a tf.distribute strategy with {replicas.count()} replicas an operand "
                         f"broadcast along the batch axis is not supported yet, got shapes {a.shape} and {b.shape}")
    try:
        tf.broadcast_static_shape(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"add: a and b must have the same shape or broadcast, got {a.shape} and {b.shape}") from None
    same = _same_shape(a, b)

    @tf.custom_gradient
    def _add(a, b):
        qa, ea = replicas.quantize(a, bits=bits)
        qb, eb = replicas.quantize(b, bits=bits)
        if not same:
            shape = tf.broadcast_dynamic_shape(tf.shape(qa), tf.shape(qb))
            qa, qb = tf.broadcast_to(qa, shape), tf.broadcast_to(qb, shape)
        y = replicas.aligned_add_to_carrier(qa, ea, qb, eb, rounding, seed)

        def grad(dy):
            # d(a + b)/da = d(a + b)/db = 1: the error carrier passes
            # unchanged, summed over the axes an operand was broadcast along.
            if same:
                return tf.identity(dy), tf.identity(dy)
            if dy.shape.rank is not None and y.shape.rank is not None and not dy.shape.is_compatible_with(y.shape):
                raise ValueError(f"add: the error dy has shape {dy.shape}, the sum {y.shape}")
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.shape(dy), tf.shape(y), message="add: the error dy must have the sum's shape")]):
                dy = tf.identity(dy)
            return _reduce_error(dy, tf.shape(a), bits), _reduce_error(dy, tf.shape(b), bits)

        return y, grad

    return _add(a, b)

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
    try:
        tf.broadcast_static_shape(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"add: a and b must have the same shape or broadcast, got {a.shape} and {b.shape}") from None
    if replicas.count() > 1:
        shared = _broadcast_along_batch(a, b)
        if shared is not None:
            return _add_batch_broadcast(a, b, shared, rounding, seed, bits)
    return _add(a, b, rounding, seed, bits)


def _broadcast_along_batch(a, b):
    """0 or 1: the operand broadcast along the batch axis (a lower rank, or a static
    batch size 1 beside another), else None."""
    if a.shape.rank is None or b.shape.rank is None:
        raise ValueError(f"add: under a tf.distribute strategy both operands need a known rank, got shapes "
                         f"{a.shape} and {b.shape}")
    for index, (t, other) in enumerate(((a, b), (b, a))):
        if t.shape.rank < other.shape.rank or (t.shape.rank == other.shape.rank and t.shape[0] == 1
                                               and other.shape[0] != 1):
            return index
    return None


def _add(a, b, rounding, seed, bits):
    same = _same_shape(a, b)

    @tf.custom_gradient
    def run(a, b):
        qa, ea = replicas.quantize(a, bits=bits)
        qb, eb = replicas.quantize(b, bits=bits)
        if not same:
            shape = tf.broadcast_dynamic_shape(tf.shape(qa), tf.shape(qb))
            qa, qb = tf.broadcast_to(qa, shape), tf.broadcast_to(qb, shape)
        y = replicas.aligned_add_to_carrier(qa, ea, qb, eb, rounding, seed)

        def grad(dy):
            return _add_gradients(dy, y, a, b, same, bits)

        return y, grad

    return run(a, b)


def _add_gradients(dy, y, a, b, same, bits):
    """d(a + b)/da = d(a + b)/db = 1: the error carrier passes unchanged,
    summed over the axes an operand was broadcast along."""
    if same:
        return tf.identity(dy), tf.identity(dy)
    if dy.shape.rank is not None and y.shape.rank is not None and not dy.shape.is_compatible_with(y.shape):
        raise ValueError(f"add: the error dy has shape {dy.shape}, the sum {y.shape}")
    with tf.control_dependencies([tf.debugging.assert_equal(
            tf.shape(dy), tf.shape(y), message="add: the error dy must have the sum's shape")]):
        dy = tf.identity(dy)
    return _reduce_error(dy, tf.shape(a), bits), _reduce_error(dy, tf.shape(b), bits)


def _add_batch_broadcast(a, b, shared_index, rounding, seed, bits):
    """``_add`` under a strategy when one operand (``shared_index``) is broadcast
    along the batch axis: its error is a sum over the batch, which the replicas
    split, so the add runs on the gathered batch (``replicas.on_whole_batch``;
    the broadcast operand is the same on every replica)."""
    batched, shared = (b, a) if shared_index == 0 else (a, b)

    def operands(whole, shared_):
        return (shared_, whole) if shared_index == 0 else (whole, shared_)

    def forward(whole, shared_):
        first, second = operands(whole[0], shared_[0])
        y = _add(first, second, rounding, seed, bits)
        return [y], [], (first, second, y)

    def backward(dy, saved):
        first, second, y = saved
        grads = _add_gradients(dy[0], y, first, second, False, bits)
        return [grads[1 - shared_index]], [grads[shared_index]]

    (y,) = replicas.on_whole_batch(forward, backward, [batched], [shared], "add")
    return y

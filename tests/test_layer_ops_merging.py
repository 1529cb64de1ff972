"""Carrier op of the merging family (tf_int_ops/layer_ops/merging.py).

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import tensorflow as tf

from conftest import carrier as _carrier
from tf_int_ops import layer_ops


def test_add_gradient_passes_through(rng):
    a, b = tf.constant(_carrier(rng, (4, 5), -3)), tf.constant(_carrier(rng, (4, 5), -6))
    dy = _carrier(rng, (4, 5), -2)
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        y = layer_ops.add(a, b)
        loss = tf.reduce_sum(y * dy)
    da, db = tape.gradient(loss, [a, b])
    np.testing.assert_array_equal(da.numpy(), dy)
    np.testing.assert_array_equal(db.numpy(), dy)
    assert np.abs(y.numpy() - (a.numpy() + b.numpy())).max() <= 2.0**-3


def test_add_broadcasts_with_integer_error_sums(rng):
    """A broadcast operand's error is the int32 sum of the quantized error over
    the broadcast axes, requantized (nearest): bit-exact against the
    reference, and within the quantisation error of float autodiff."""
    import reference as ref

    for a_shape, b_shape in [((2, 3, 4), (3, 4)), ((2, 3, 4), (1, 3, 1)), ((5, 1), (1, 6)), ((4,), (3, 4))]:
        a, b = tf.constant(_carrier(rng, a_shape, -4)), tf.constant(_carrier(rng, b_shape, -6))
        out_shape = np.broadcast_shapes(a_shape, b_shape)
        dy = _carrier(rng, out_shape, -9)
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            y = layer_ops.add(a, b)
            loss = tf.reduce_sum(y * dy)
        da, db = tape.gradient(loss, [a, b])
        assert y.shape == out_shape
        qa, ea = ref.quantize(a.numpy())
        qb, eb = ref.quantize(b.numpy())
        sa, sb = np.broadcast_to(qa, out_shape), np.broadcast_to(qb, out_shape)
        want_q, want_e = ref.requantize(*ref.aligned_add(sa, ea, sb, eb))
        np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))
        err, e_err = ref.quantize(dy)
        for grad, shape in ((da, a_shape), (db, b_shape)):
            axes = tuple(i for i in range(len(out_shape))
                         if i < len(out_shape) - len(shape) or shape[i - len(out_shape) + len(shape)] == 1)
            summed = err.astype(np.int64).sum(axis=axes).reshape(shape)
            q, e = ref.requantize(summed, e_err)
            np.testing.assert_array_equal(grad.numpy(), ref.dequantize(q, e))
            want = np.sum(dy, axis=axes).reshape(shape)
            assert np.abs(grad.numpy() - want).max() <= 2.0 ** (e - 1) + 1e-12

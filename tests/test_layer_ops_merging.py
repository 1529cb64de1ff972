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

"""Carrier op of the loss family (tf_int_ops/layer_ops/losses.py) and its integer gradient.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("batch", [8, 6])
def test_softmax_cross_entropy_gradient(rng, batch):
    logits = tf.constant(_carrier(rng, (batch, 10), -4))
    labels = rng.integers(0, 10, batch)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(layer_ops.softmax_cross_entropy(labels, logits))
        loss_float = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grad, grad_float = tape.gradient(loss, logits), tape.gradient(loss_float, logits)
    np.testing.assert_allclose(loss.numpy(), loss_float.numpy(), rtol=1e-6)  # display value
    q, e = ref.quantize(logits.numpy())
    err, err_e = ref.softmax_cross_entropy_grad(q, e, labels)
    if batch == 8:  # 1/8 is a power of two: the scaling is exact
        np.testing.assert_array_equal(grad.numpy(), err * 2.0 ** (err_e - 3))
    assert np.abs(grad.numpy() - grad_float.numpy()).max() < 0.2 / batch

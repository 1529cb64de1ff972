"""Carrier ops of the activation family (tf_int_ops/layer_ops/activations.py).

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000, 4099])
def test_relu_keeps_one_mask_bit_per_element(rng, n):
    x = _carrier(rng, (n,), -5)
    x[: min(n, 2)] = [0.0, -0.0][: min(n, 2)]
    lib = layer_ops._loader.load()
    y, mask = lib.int_ops_relu(tf.constant(x))
    np.testing.assert_array_equal(y.numpy(), np.where(x > 0, x, 0.0))
    # Bit i % 32 of word i / 32 (little-endian bit order within each word).
    padded = np.zeros(-(-n // 32) * 32, bool)
    padded[:n] = x > 0
    words = np.packbits(padded, bitorder="little").view("<u4").view(np.int32)
    np.testing.assert_array_equal(mask.numpy(), words)
    dy = _carrier(rng, (n,), -3)
    dx = lib.int_ops_relu_grad(tf.constant(dy), mask)
    np.testing.assert_array_equal(dx.numpy(), np.where(x > 0, dy, 0.0))

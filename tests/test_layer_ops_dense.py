"""Carrier op of the dense family (tf_int_ops/layer_ops/dense.py) and its gradient.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("rounding", ["nearest", "pseudo_stochastic", "truncate"])
def test_dense_forward_and_gradients(rng, rounding):
    x = rng.random((8, 20)).astype(np.float32)           # raw input: quantized at the boundary
    w_np = rng.integers(-127, 128, (20, 6)).astype(np.int8)
    w, w_exp = tf.Variable(w_np), -7
    dy = _carrier(rng, (8, 6), -9)
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y, y_exp = layer_ops.dense(x_t, w, w_exp, rounding=rounding)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])

    qx, ex = ref.quantize(x)
    want_q, want_e = ref.requantize(qx @ w_np.astype(np.int64), ex + w_exp, rounding)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))
    assert int(y_exp) == want_e

    assert dw.dtype == tf.int32
    err, ee = ref.quantize(dy)
    np.testing.assert_array_equal(dw.numpy(), qx.T @ err)
    dx_q, dx_e = ref.requantize(err @ w_np.T.astype(np.int64), ee + w_exp, "nearest")
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))

    # Against float autodiff of y = x @ W: dx exact up to one rounding.
    w_float = w_np.astype(np.float64) * 2.0**w_exp
    dx_float = dy.astype(np.float64) @ w_float.T
    assert np.abs(dx.numpy() - dx_float).max() <= 2.0 ** (dx_e - 1)
    dw_float = x.astype(np.float64).T @ dy
    dw_value = dw.numpy() * 2.0 ** (ex + ee)
    assert np.abs(dw_value - dw_float).max() <= 8 * 2.0 ** (ex - 1) * np.abs(dy).max()


def test_dense_accepts_rank_3_input(rng):
    w = tf.Variable(rng.integers(-127, 128, (5, 3)).astype(np.int8))
    x = _carrier(rng, (2, 4, 5), -6)
    y, _ = layer_ops.dense(x, w, -7)
    y2, _ = layer_ops.dense(x.reshape(8, 5), w, -7)
    assert y.shape == (2, 4, 3)
    np.testing.assert_array_equal(y.numpy().reshape(8, 3), y2.numpy())

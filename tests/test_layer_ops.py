"""Carrier ops across families: weightless ops against float autodiff, the bias of dense and conv,
and a traced step through several families (one file per family: tests/test_layer_ops_<family>.py).

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff of the same float
function, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


def test_weightless_ops_against_float_autodiff(rng):
    x = _carrier(rng, (2, 6, 6, 3), -5)
    x_t = tf.constant(x)
    for fn, float_fn, exact in (
        (layer_ops.relu, tf.nn.relu, True),
        (lambda v: layer_ops.max_pool2d(v, 2), lambda v: tf.nn.max_pool2d(v, 2, 2, "VALID"), True),
        (lambda v: layer_ops.avg_pool2d(v, 2), lambda v: tf.nn.avg_pool2d(v, 2, 2, "VALID"), False),
    ):
        y_float = float_fn(x_t)
        dy = _carrier(rng, y_float.shape, -6)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x_t)
            y = fn(x_t)
            y_ref = float_fn(x_t)
            loss, loss_ref = tf.reduce_sum(y * dy), tf.reduce_sum(y_ref * dy)
        dx, dx_ref = tape.gradient(loss, x_t), tape.gradient(loss_ref, x_t)
        if exact:
            np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
            np.testing.assert_array_equal(dx.numpy(), dx_ref.numpy())
        else:  # average pooling divides by 4: exact while the result has room
            np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=2.0**-6)
            np.testing.assert_allclose(dx.numpy(), dx_ref.numpy(), atol=2.0**-8)


def test_dense_and_conv_bias_forward_and_gradient(rng):
    x = rng.random((6, 10)).astype(np.float32)
    w_np = rng.integers(-127, 128, (10, 4)).astype(np.int8)
    b_np = rng.integers(-3000, 3000, 4).astype(np.int32)
    w, b = tf.Variable(w_np), tf.Variable(b_np)
    dy = _carrier(rng, (6, 4), -8)
    with tf.GradientTape() as tape:
        y, _ = layer_ops.dense(x, w, -7, bias=b)
        loss = tf.reduce_sum(y * dy)
    dw, db = tape.gradient(loss, [w, b])
    qx, ex = ref.quantize(x)
    want_q, want_e = ref.requantize(ref.add_bias(qx @ w_np.astype(np.int64), b_np, -ex), ex - 7)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))
    err, _ = ref.quantize(dy)
    assert db.dtype == tf.int32
    np.testing.assert_array_equal(db.numpy(), err.sum(axis=0))
    np.testing.assert_array_equal(dw.numpy(), qx.T @ err)

    # Convolution, and an input exponent above 0 (bias rounded onto the accumulator).
    xc = _carrier(rng, (2, 5, 5, 3), 2)
    wc_np = rng.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8)
    bc_np = np.array([77, -5], np.int32)
    wc, bc = tf.Variable(wc_np), tf.Variable(bc_np)
    dyc = _carrier(rng, (2, 5, 5, 2), -6)
    with tf.GradientTape() as tape:
        yc, _ = layer_ops.conv2d(xc, wc, -7, 1, "SAME", bias=bc)
        loss = tf.reduce_sum(yc * dyc)
    dbc = tape.gradient(loss, bc)
    qx, ex = ref.quantize(xc)
    assert ex > 0
    want_q, want_e = ref.requantize(ref.add_bias(ref.conv2d(qx, wc_np), bc_np, -ex), ex - 7)
    np.testing.assert_array_equal(yc.numpy(), ref.dequantize(want_q, want_e))
    np.testing.assert_array_equal(dbc.numpy(), ref.quantize(dyc)[0].sum(axis=(0, 1, 2)))


def test_bias_errors_are_named():
    w = tf.Variable(np.ones((2, 2), np.int8))
    x = np.full((1, 2), 0.5, np.float32)
    with pytest.raises(ValueError, match="bias must be an int32 variable"):
        layer_ops.dense(x, w, 0, bias=tf.Variable(np.ones(2, np.int8)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="bias must have shape \\[2\\]"):
        layer_ops.dense(x, w, 0, bias=tf.Variable(np.ones(3, np.int32)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="int32 overflow: accumulator plus bias"):
        layer_ops.dense(x, w, 0, bias=tf.Variable(np.full(2, 2**30, np.int32)))


def test_traced_step_reuses_buffers_and_matches_eager(rng):
    # In a traced step the ops write into buffers they take over (ReLU and its
    # gradient, a conv layer keeping its width, requantizing backprop
    # products into their own buffers); eager execution never can. Both must
    # give the same bits.
    w1 = tf.Variable(rng.integers(-127, 128, (3, 3, 2, 4)).astype(np.int8))
    w2 = tf.Variable(rng.integers(-127, 128, (3, 3, 4, 4)).astype(np.int8))
    wd = tf.Variable(rng.integers(-127, 128, (36, 5)).astype(np.int8))
    x = tf.constant(_carrier(rng, (3, 6, 6, 2), -6))
    dy = tf.constant(_carrier(rng, (3, 5), -9))

    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            h = layer_ops.relu(layer_ops.conv2d(x, w1, -7)[0])
            h = layer_ops.relu(layer_ops.conv2d(h, w2, -8)[0])
            h = layer_ops.max_pool2d(h, 2)
            y = layer_ops.dense(tf.reshape(h, [3, 36]), wd, -7)[0]
            loss = tf.reduce_sum(y * dy)
        return [y, *tape.gradient(loss, [x, w1, w2, wd])]

    for eager, traced in zip(step(), tf.function(step)()):
        np.testing.assert_array_equal(eager.numpy(), traced.numpy())

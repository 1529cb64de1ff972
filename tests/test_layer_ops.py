"""Carrier ops and their gradients.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff of the same float
function, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
import tf_int_ops as ops
from tf_int_ops import layer_ops


def _carrier(rng, shape, exponent, low=-127, high=127):
    q = rng.integers(low, high + 1, shape)
    return (q * 2.0**exponent).astype(np.float32)


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


@pytest.mark.parametrize("strides,padding", [(1, "SAME"), (2, "SAME"), (2, "VALID"), (1, "VALID")])
def test_conv2d_forward_and_gradients(rng, strides, padding):
    x = _carrier(rng, (3, 9, 8, 2), -7, 0, 127)
    w_np = rng.integers(-127, 128, (3, 3, 2, 4)).astype(np.int8)
    w, w_exp = tf.Variable(w_np), -8
    x_t = tf.constant(x)
    y_shape = tf.nn.conv2d(x, w_np.astype(np.float32), strides, padding).shape
    dy = _carrier(rng, y_shape, -10)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y, _ = layer_ops.conv2d(x_t, w, w_exp, strides, padding)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])
    s = (strides, strides)
    qx, ex = ref.quantize(x)
    want_q, want_e = ref.requantize(ref.conv2d(qx, w_np, s, padding), ex + w_exp)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))

    err, ee = ref.quantize(dy)
    np.testing.assert_array_equal(dw.numpy(), ref.conv2d_backprop_filter(qx, w_np.shape, err, s, padding))
    dx_q, dx_e = ref.requantize(ref.conv2d_backprop_input(x.shape, w_np, err, s, padding), ee + w_exp)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))

    # Float autodiff of the same convolution (x is an exact carrier here).
    w_float = tf.constant(w_np.astype(np.float32) * 2.0**w_exp)
    with tf.GradientTape() as tape:
        tape.watch(w_float)
        x_f = tf.constant(x)
        tape.watch(x_f)
        loss = tf.reduce_sum(tf.nn.conv2d(x_f, w_float, strides, padding) * dy)
    dx_float, dw_float = tape.gradient(loss, [x_f, w_float])
    assert np.abs(dx.numpy() - dx_float.numpy()).max() <= 2.0 ** (dx_e - 1)
    np.testing.assert_allclose(dw.numpy() * 2.0 ** (ex + ee), dw_float.numpy(), rtol=1e-6)


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


@pytest.mark.parametrize("x_shape,pool,strides,padding", [
    ((2, 8, 8, 3), (2, 2), (2, 2), "VALID"),
    ((3, 9, 7, 5), (2, 3), (3, 3), "SAME"),
    ((1, 5, 5, 4), (3, 3), (3, 4), "VALID"),
    ((2, 7, 7, 2), (1, 1), (2, 2), "SAME"),
])
@pytest.mark.parametrize("value_range", [2, 127])  # the narrow range makes ties
def test_max_pool_on_carrier_bits_matches_the_int8_path(rng, x_shape, pool, strides, padding, value_range):
    # Non-overlapping windows pool the carrier's bit patterns; the result and
    # the gradient must be those of quantize -> int8 pool -> int8 routing,
    # bit for bit (with -0.0 and +0.0 mixed in).
    x = _carrier(rng, x_shape, -5, -value_range, value_range)
    x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y = layer_ops.max_pool2d(x_t, pool, strides, padding)
        dy = tf.constant(_carrier(rng, y.shape, -8))
        loss = tf.reduce_sum(y * dy)
    dx = tape.gradient(loss, x_t)
    assert "IntOps>MaxPoolCarrier" in {op.type for op in tf.function(
        lambda v: layer_ops.max_pool2d(v, pool, strides, padding)).get_concrete_function(x_t).graph.get_operations()}
    q, e = ref.quantize(x)
    want_y = ref.dequantize(ref.max_pool(q, pool, strides, padding), e)
    err, err_e = ref.quantize(dy.numpy())
    acc = ref.max_pool_grad(q, err, pool, strides, padding)
    want_dx = ref.dequantize(*ref.requantize(acc, err_e))
    np.testing.assert_array_equal(y.numpy().view(np.int32), want_y.view(np.int32))
    np.testing.assert_array_equal(dx.numpy().view(np.int32), want_dx.view(np.int32))


@pytest.mark.parametrize("shape,where", [((1, 2, 2, 1), (0, 0, 1, 0)),   # windows tile the input
                                         ((2, 3, 3, 2), (1, 2, 2, 1)),   # in the border VALID drops
                                         ((2, 3, 3, 2), (1, 0, 1, 0))])  # inside a window, border dropped
def test_max_pool_on_carrier_bits_rejects_nan(shape, where):
    x = np.ones(shape, np.float32)
    x[where] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        layer_ops.max_pool2d(tf.constant(x), 2)


@pytest.mark.parametrize("strides,padding,dilations", [(1, "SAME", 1), (2, "SAME", 1), (2, "VALID", 1),
                                                        (1, "VALID", 2), (3, "SAME", 2)])
def test_conv2d_static_output_shape_matches_tensorflow(strides, padding, dilations):
    w = tf.Variable(tf.ones([3, 2, 1, 4], tf.int8))
    shapes = {}

    @tf.function(input_signature=[tf.TensorSpec([5, 13, 11, 1], tf.float32)])
    def trace(x):
        shapes["int"] = layer_ops.conv2d(x, w, -7, strides, padding, dilations)[0].shape
        shapes["float"] = tf.nn.conv2d(x, tf.ones([3, 2, 1, 4]), strides, padding, dilations=dilations).shape
        return x

    trace.get_concrete_function()
    assert shapes["int"] == shapes["float"] and shapes["int"].is_fully_defined()


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

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


def _dense_gradients(x, w_np, w_exp, dy, error_bits, bias=None):
    w = tf.Variable(w_np)
    b = None if bias is None else tf.Variable(bias)
    recorded = tf.Variable(0, dtype=tf.int32)
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y, _ = layer_ops.dense(x_t, w, w_exp, bias=b, error_exponent=recorded, error_bits=error_bits)
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [x_t, w] + ([] if b is None else [b]))
    return [g.numpy() for g in grads], int(recorded.numpy())


def test_dense_16_bit_errors_bit_exact(rng):
    """error_bits=16 on an int8 kernel: the error quantized to int16, dx = requantize(err @ W^T) to 16
    bits, the kernel and bias gradients summed in int64 and rounded once, round_shift(., 8, nearest)."""
    x = _carrier(rng, (37, 19), -6)
    w_np = rng.integers(-127, 128, (19, 5)).astype(np.int8)
    dy = _carrier(rng, (37, 5), -11, -32767, 32767)
    bias = rng.integers(-1000, 1000, 5).astype(np.int32)
    (dx, dw, db), recorded = _dense_gradients(x, w_np, -7, dy, 16, bias)
    qx, ex = ref.quantize(x)
    err, ee = ref.quantize(dy, bits=16)
    assert recorded == ee
    assert dw.dtype == np.int32 and db.dtype == np.int32
    np.testing.assert_array_equal(dw, ref.round_shift(qx.T @ err, 8, "nearest"))
    np.testing.assert_array_equal(db, ref.round_shift(err.sum(axis=0), 8, "nearest"))
    dx_q, dx_e = ref.requantize(err @ w_np.T.astype(np.int64), ee - 7, "nearest", bits=16)
    np.testing.assert_array_equal(dx, ref.dequantize(dx_q, dx_e))
    assert np.abs(dx_q).max() > 127  # 16-bit mantissas


def test_dense_16_bit_errors_keep_small_rows(rng):
    """Rows whose error is 2**-10 of the batch's largest: 8-bit errors round them to zero before
    the kernel gradient's sum, 16-bit ones keep them (closer to float's gradient, and dx nonzero there)."""
    x = _carrier(rng, (64, 16), -6)
    w_np = rng.integers(-127, 128, (16, 4)).astype(np.int8)
    dy = _carrier(rng, (64, 4), -20)
    dy[0] = 127 * 2.0**-10  # one large row; the others are about 2**-10 of it
    dw_float = x.astype(np.float64)[1:].T @ dy[1:].astype(np.float64)  # the small rows' share
    errors = {}
    for bits in (8, 16):
        (dx, dw, *_), recorded = _dense_gradients(x, w_np, -7, dy, bits)
        qx, ex = ref.quantize(x)
        row0 = np.outer(qx[0], ref.quantize(dy, bits=bits)[0][0]) * 2.0 ** (ex + recorded)
        scale = 2.0 ** (ex + recorded + (8 if bits == 16 else 0))
        errors[bits] = np.abs(dw * scale - row0 - dw_float).max() / np.abs(dw_float).max()
        assert (np.abs(dx[1:]).max() > 0) == (bits == 16)
    assert errors[8] >= 0.9  # the small rows' share lost
    assert errors[16] < 0.05


def test_conv2d_16_bit_errors_bit_exact(rng):
    x = _carrier(rng, (2, 7, 6, 3), -6)
    w_np = rng.integers(-127, 128, (3, 3, 3, 4)).astype(np.int8)
    dy = _carrier(rng, (2, 4, 3, 4), -12, -32767, 32767)
    w = tf.Variable(w_np)
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y, _ = layer_ops.conv2d(x_t, w, -7, strides=2, padding="SAME", error_bits=16)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])
    qx, ex = ref.quantize(x)
    err, ee = ref.quantize(dy, bits=16)
    np.testing.assert_array_equal(
        dw.numpy(), ref.round_shift(ref.conv2d_backprop_filter(qx, w_np.shape, err, (2, 2), "SAME"), 8, "nearest"))
    dx_q, dx_e = ref.requantize(ref.conv2d_backprop_input(qx.shape, w_np.astype(np.int64), err, (2, 2), "SAME"),
                                ee - 7, "nearest", bits=16)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))


def test_error_bits_bad_values(rng):
    w = tf.Variable(np.ones((3, 2), np.int8))
    with pytest.raises(ValueError, match="dense: error_bits: bits must be 8 or 16, got 12"):
        layer_ops.dense(tf.ones([2, 3]), w, -7, error_bits=12)
    with pytest.raises(ValueError, match="conv2d: error_bits: bits must be 8 or 16, got 4"):
        layer_ops.conv2d(tf.ones([1, 3, 3, 1]), tf.Variable(np.ones((1, 1, 1, 2), np.int8)), -7, error_bits=4)
    raw = layer_ops._loader.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="dense: error_bits must be 8 or 16, got 9"):
        raw.int_ops_dense(tf.ones([2, 3]), w.handle, [], -7, 0, [], T=tf.int8, error_bits=9)


def test_16_bit_error_gradient_overflow_is_an_error():
    """A kernel gradient that leaves int32 after its rounding: an error naming it, not a wrap."""
    rows = 140000  # 140000 * 127 * 32767 / 2**8 > 2**31
    x = np.full((rows, 1), 127 * 2.0**-7, np.float32)
    w = tf.Variable(np.ones((1, 1), np.int8))
    dy = tf.constant(np.full((rows, 1), 32767 * 2.0**-15, np.float32))  # mantissas 32767
    with tf.GradientTape() as tape:
        y, _ = layer_ops.dense(tf.constant(x), w, 0, error_bits=16)
        loss = tf.reduce_sum(y * dy)
    with pytest.raises(tf.errors.InvalidArgumentError, match="the weight gradient of 16-bit errors leaves int32"):
        tape.gradient(loss, w)

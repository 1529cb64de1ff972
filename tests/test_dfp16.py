"""The DFP16 datapath (docs/algorithms.md 16) against the NumPy reference.

Products, requantize, the cross-entropy gradient, the SGD step and the
dense/convolution layer ops at 16 bits, bit for bit; carriers at the
extremes; what is refused, and how.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from tf_int_ops import layer_ops, ops
from tf_int_ops.layer_ops._carrier import error_to_carrier

ROUNDINGS = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]


def _int16(rng, shape, extreme=False):
    if extreme:  # only the two extremes
        return np.where(rng.random(shape) < 0.5, -32767, 32767).astype(np.int16)
    return rng.integers(-32767, 32768, shape).astype(np.int16)


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (13, 33, 1000), (40, 17, 3000), (300, 10, 64)])
@pytest.mark.parametrize("transpose_x, transpose_w", [(False, False), (True, False), (False, True), (True, True)])
def test_int16_matmul_is_exact_int64(rng, shape, transpose_x, transpose_w):
    M, N, K = shape
    x = _int16(rng, (K, M) if transpose_x else (M, K))
    w = _int16(rng, (N, K) if transpose_w else (K, N))
    out = ops.int_matmul(x, w, transpose_x, transpose_w)
    assert out.dtype == tf.int64
    np.testing.assert_array_equal(out.numpy(), ref.matmul(x, w, transpose_x, transpose_w))


def test_int16_matmul_overflows_int32_many_times_over_and_stays_exact(rng):
    # 200000 products of +-32767**2 (~2**30 each): sums near 2**47.
    K = 200_000
    x = _int16(rng, (3, K), extreme=True)
    w = _int16(rng, (K, 2), extreme=True)
    w[:, 0] = x[0]  # column 0 against row 0: every product is +32767**2
    out = ops.int_matmul(x, w).numpy()
    assert out[0, 0] == K * 32767**2 > 2**47
    np.testing.assert_array_equal(out, ref.matmul(x, w))


@pytest.mark.parametrize("K", [9, 32, 33, 700])  # the direct shallow loop up to 32, the byte planes beyond
@pytest.mark.parametrize("narrow", ["x", "w"])
@pytest.mark.parametrize("extreme", [False, True])
def test_mixed_int8_and_int16_operands_widen_exactly(rng, K, narrow, extreme):
    # The GEMM takes an operand within int8 (as a 16-bit error times int8
    # weights, docs/algorithms.md 5) as one byte plane instead of two.
    def int8(shape):
        if extreme:
            return np.where(rng.random(shape) < 0.5, -128, 127).astype(np.int8)
        return rng.integers(-128, 128, shape).astype(np.int8)
    x = int8((40, K)) if narrow == "x" else _int16(rng, (40, K), extreme)
    w = int8((K, 24)) if narrow == "w" else _int16(rng, (K, 24), extreme)
    want = ref.matmul(x, w)
    for a, b in ((x, w), (x.astype(np.int16), w.astype(np.int16))):  # int8 as such, or already widened
        out = ops.int_matmul(a, b)
        assert out.dtype == tf.int64
        np.testing.assert_array_equal(out.numpy(), want)
    # One value just outside int8 makes the operand wide again.
    narrowed = (x if narrow == "x" else w).astype(np.int16)
    narrowed.flat[narrowed.size // 2] = 128
    x16, w16 = (narrowed, w) if narrow == "x" else (x, narrowed)
    np.testing.assert_array_equal(ops.int_matmul(x16, w16).numpy(), ref.matmul(x16, w16))


def test_int16_convolutions_with_int8_range_operands_are_exact(rng):
    # A 16-bit error against int8 inputs and weights: every product and
    # gradient of the convolution with one byte plane for x and w.
    x = rng.integers(-128, 128, (2, 9, 8, 6)).astype(np.int16)
    w = rng.integers(-128, 128, (3, 3, 6, 5)).astype(np.int16)
    dy = _int16(rng, (2, 9, 8, 5))
    np.testing.assert_array_equal(ops.int_conv2d(x, w, 1, "SAME").numpy(), ref.conv2d(x, w, (1, 1), "SAME"))
    np.testing.assert_array_equal(ops.int_conv2d_backprop_input(x.shape, w, dy, 1, "SAME").numpy(),
                                  ref.conv2d_backprop_input(x.shape, w, dy, (1, 1), "SAME"))
    np.testing.assert_array_equal(ops.int_conv2d_backprop_filter(x, w.shape, dy, 1, "SAME").numpy(),
                                  ref.conv2d_backprop_filter(x, w.shape, dy, (1, 1), "SAME"))


@pytest.mark.parametrize("strides, padding, dilations", [(1, "SAME", 1), (2, "VALID", 1), ((1, 2), "SAME", (2, 1)),
                                                      (2, "SAME", 2), (3, "SAME", 1)])
def test_int16_convolutions_are_exact_int64(rng, strides, padding, dilations):
    x = _int16(rng, (2, 9, 8, 3))
    w = _int16(rng, (3, 3, 3, 5))
    y = ops.int_conv2d(x, w, strides, padding, dilations)
    assert y.dtype == tf.int64
    s, d = ((strides,) * 2 if isinstance(strides, int) else strides), ((dilations,) * 2 if isinstance(dilations, int)
                                                                      else dilations)
    np.testing.assert_array_equal(y.numpy(), ref.conv2d(x, w, s, padding, d))
    dy = _int16(rng, y.shape)
    dx = ops.int_conv2d_backprop_input(x.shape, w, dy, strides, padding, dilations)
    np.testing.assert_array_equal(dx.numpy(), ref.conv2d_backprop_input(x.shape, w, dy, s, padding, d))
    dw = ops.int_conv2d_backprop_filter(x, w.shape, dy, strides, padding, dilations)
    np.testing.assert_array_equal(dw.numpy(), ref.conv2d_backprop_filter(x, w.shape, dy, s, padding, d))


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits", [8, 16])
def test_requantize_int64_accumulators(rng, rounding, bits):
    acc = rng.integers(-(2**50), 2**50, (257,), dtype=np.int64)  # shifts up to 43: past 32 bits
    acc[:3] = [2**50 - 1, -(2**50 - 1), 0]
    seed = (7, 11)
    q, e = ops.requantize(acc, -40, rounding, bits=bits, seed=list(seed))
    want_q, want_e = ref.requantize(acc, -40, rounding, bits=bits, seed=seed)
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e
    carrier = error_to_carrier(tf.constant(acc), -40, bits)  # nearest
    want_q, want_e = ref.requantize(acc, -40, "nearest", bits=bits)
    np.testing.assert_array_equal(carrier.numpy(), ref.dequantize(want_q, want_e))


@pytest.mark.parametrize("exponent", [-30, -16, -15, -14, -9, -3, 0, 4])
@pytest.mark.parametrize("rounding", ["pseudo_stochastic", "stochastic"])
def test_cross_entropy_gradient_of_int16_logits(rng, exponent, rounding):
    logits = _int16(rng, (9, 11))
    logits[0] = 32767
    logits[1] = -32767
    labels = rng.integers(0, 11, 9)
    err, e = ops.int_softmax_cross_entropy_grad(logits, exponent, labels, rounding, seed=[3, 5])
    assert err.dtype == tf.int16 and int(e) == -15
    want, want_e = ref.softmax_cross_entropy_grad(logits, exponent, labels, rounding, (3, 5), bits=16)
    np.testing.assert_array_equal(err.numpy(), want)
    assert want_e == -15
    # It approximates softmax - onehot to about 2**-11 (the base-2 numerators' steps are coarser).
    p = tf.nn.softmax(logits.astype(np.float64) * 2.0**exponent).numpy() - np.eye(11)[labels]
    assert np.abs(err.numpy() * 2.0**-15 - p).max() < 0.5


@pytest.mark.parametrize("momentum, weight_decay", [(0, 0), (8, 0), (0, 3), (12, 5)])
def test_sgd_on_int16_weights_with_int64_gradients(rng, momentum, weight_decay):
    w = _int16(rng, (40,))
    g = rng.integers(-(2**45), 2**45, (40,), dtype=np.int64)
    buffer = _int16(rng, (40,)) if momentum else None
    new_w, new_m = ops.integer_sgd_update(w, g, mu=13, momentum=momentum, momentum_buffer=buffer,
                                          weight_decay=weight_decay)
    want_w, want_m = ref.sgd_update(w, g, 13, momentum, buffer, weight_decay, bits=16)
    np.testing.assert_array_equal(new_w.numpy(), want_w)
    if momentum:
        np.testing.assert_array_equal(new_m.numpy(), want_m)
    assert int(ops.bit_length(g)) == ref.bit_length(g)


@pytest.mark.parametrize("shift", [0, 8, -4])
def test_adam_on_int16_weights_with_int64_gradients(rng, shift):
    w = _int16(rng, (60,))
    m = np.zeros(60, np.int32)
    v = np.zeros(60, np.int32)
    for t, scale in ((1, 2**45), (2, 2**20), (3, 5)):
        g = rng.integers(-scale, scale + 1, (60,), dtype=np.int64)
        got = ops.integer_adam_update(w, g, m, v, t, step_shift=shift)
        want = ref.adam_update(w, g, m, v, t, step_shift=shift, bits=16)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.numpy(), b)
        w, m, v = want


def test_sgd_weight_decay_that_would_leave_int64_is_an_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match="weight_decay 1024 on a 62-bit gradient would leave int64"):
        ops.integer_sgd_update(np.ones(2, np.int32), np.full(2, 2**61, np.int64), mu=5, weight_decay=1024)


@pytest.mark.parametrize("rounding", ["nearest", "pseudo_stochastic", "stochastic"])
@pytest.mark.parametrize("use_bias", [False, True])
def test_dense_layer_op_at_16_bits(rng, rounding, use_bias):
    x = rng.normal(size=(6, 50)).astype(np.float32)
    w_np = _int16(rng, (50, 7))
    w, w_exp = tf.Variable(w_np), -17
    bias_np = rng.integers(-(2**20), 2**20, 7).astype(np.int32)
    bias = tf.Variable(bias_np) if use_bias else None
    dy = rng.normal(size=(6, 7)).astype(np.float32)
    seed = [5, 9]
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y, y_exp = layer_ops.dense(x_t, w, w_exp, rounding=rounding, seed=seed, bias=bias)
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [x_t, w] + ([bias] if use_bias else []))

    qx, ex = ref.quantize(x, bits=16)
    acc = ref.matmul(qx, w_np)
    if use_bias:
        acc = ref.add_bias(acc, bias_np, -ex)
    want_q, want_e = ref.requantize(acc, ex + w_exp, rounding, bits=16, seed=tuple(seed))
    assert int(y_exp) == want_e and np.abs(want_q).max() > 2**14  # 16-bit mantissas
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))

    err, ee = ref.quantize(dy, bits=16)
    assert grads[1].dtype == tf.int64
    np.testing.assert_array_equal(grads[1].numpy(), ref.matmul(qx, err, transpose_x=True))
    dx_q, dx_e = ref.requantize(ref.matmul(err, w_np, transpose_w=True), ee + w_exp, "nearest", bits=16)
    np.testing.assert_array_equal(grads[0].numpy(), ref.dequantize(dx_q, dx_e))
    if use_bias:
        assert grads[2].dtype == tf.int64
        np.testing.assert_array_equal(grads[2].numpy(), err.sum(axis=0))


def test_conv_layer_op_at_16_bits(rng):
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)
    w_np = _int16(rng, (3, 3, 3, 4))
    w, w_exp = tf.Variable(w_np), -16
    dy = rng.normal(size=(2, 4, 3, 4)).astype(np.float32)
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y, y_exp = layer_ops.conv2d(x_t, w, w_exp, strides=2, padding="SAME")
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])
    qx, ex = ref.quantize(x, bits=16)
    want_q, want_e = ref.requantize(ref.conv2d(qx, w_np, (2, 2), "SAME"), ex + w_exp, bits=16)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))
    err, ee = ref.quantize(dy, bits=16)
    np.testing.assert_array_equal(dw.numpy(), ref.conv2d_backprop_filter(qx, w_np.shape, err, (2, 2), "SAME"))
    dx_q, dx_e = ref.requantize(ref.conv2d_backprop_input(x.shape, w_np, err, (2, 2), "SAME"), ee + w_exp,
                                bits=16)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))


@pytest.mark.parametrize("ea, eb", [(-20, -20), (-10, -30), (-30, 0), (5, -50), (-60, 0)])
def test_add_of_16_bit_operands(rng, ea, eb):
    a, b = _int16(rng, (5, 7)), _int16(rng, (5, 7))
    q, e = ops.int_add(a, ea, b, eb, "nearest")
    acc, acc_e = ref.aligned_add(a, ea, b, eb, bits=16)
    want_q, want_e = ref.requantize(acc, acc_e, "nearest", bits=16)
    assert q.dtype == tf.int16
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e
    # The carrier op: a 16-bit sum, and errors passed through unchanged.
    x, y = ops.dequantize(a, ea), ops.dequantize(b, eb)
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        out = layer_ops.add(x, y, bits=16)
    np.testing.assert_array_equal(out.numpy(), ref.dequantize(want_q, want_e))
    dx, dy = tape.gradient(out, [x, y], output_gradients=tf.ones_like(out))
    np.testing.assert_array_equal(dx.numpy(), np.ones((5, 7), np.float32))


def test_broadcast_add_error_sums_16_bit_errors_in_int64(rng):
    a = ops.dequantize(_int16(rng, (300, 4)), -15)
    b = ops.dequantize(_int16(rng, (4,)), -15)
    g = ops.dequantize(_int16(rng, (300, 4)), -3)
    with tf.GradientTape() as tape:
        tape.watch(b)
        out = layer_ops.add(a, b, bits=16)
    db = tape.gradient(out, b, output_gradients=g)
    err, e_err = ref.quantize(g.numpy(), bits=16)
    want_q, want_e = ref.requantize(err.sum(axis=0), e_err, "nearest", bits=16)
    np.testing.assert_array_equal(db.numpy(), ref.dequantize(want_q, want_e))


@pytest.mark.parametrize("pool, strides, padding", [(2, 2, "VALID"), (3, 2, "SAME"), ((3, 2), 1, "VALID")])
def test_average_pooling_of_16_bit_mantissas(rng, pool, strides, padding):
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        y = layer_ops.avg_pool2d(x_t, pool, strides, padding, bits=16)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx = tape.gradient(y, x_t, output_gradients=tf.constant(dy))
    p = (pool, pool) if isinstance(pool, int) else pool
    s = (strides, strides) if isinstance(strides, int) else strides
    qx, ex = ref.quantize(x, bits=16)
    want_q, want_e = ref.requantize(ref.avg_pool_acc(qx, p, s, padding), ex - 16, "nearest", bits=16)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))
    assert np.abs(want_q).max() > 2**13  # 16-bit results
    err, e_err = ref.quantize(dy, bits=16)
    dx_q, dx_e = ref.requantize(ref.avg_pool_grad_acc(x.shape, err, p, s, padding), e_err - 16, "nearest", bits=16)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))


def test_dropout_keeps_16_bit_mantissas(rng):
    x = ops.dequantize(_int16(rng, (64,)), -15)  # 16-bit values an 8-bit dropout would round
    y = layer_ops.dropout(x, 1, [3, 4], bits=16)
    kept = y.numpy() != 0
    np.testing.assert_array_equal(y.numpy()[kept], 2 * x.numpy()[kept])
    y8 = layer_ops.dropout(x, 1, [3, 4], bits=8)
    assert not np.array_equal(y8.numpy()[kept], y.numpy()[kept])


def test_overlapping_max_pooling_at_16_bits_is_refused_by_name():
    with pytest.raises(ValueError, match="overlapping windows .* not supported at bits=16"):
        layer_ops.max_pool2d(tf.ones([1, 4, 4, 1]), 3, 1, "VALID", bits=16)
    # Non-overlapping windows compare the carriers' patterns: exact at any width.
    x = ops.dequantize(np.arange(-8, 8, dtype=np.int16).reshape(1, 4, 4, 1) * 4000, -15)
    y = layer_ops.max_pool2d(x, 2, 2, "VALID", bits=16)
    np.testing.assert_array_equal(y.numpy(), tf.nn.max_pool2d(x, 2, 2, "VALID").numpy())


@pytest.mark.parametrize("exponent", [-120, -60, 0, 100])
def test_16_bit_carriers_are_exact_at_the_extremes(exponent):
    q = np.array([32767, -32767, 1, -1, 0, 12345], np.int16)
    carrier = ops.dequantize(q, exponent)
    np.testing.assert_array_equal(carrier.numpy().astype(np.float64), q * 2.0**exponent)
    back, e = ops.quantize(carrier, bits=16)
    np.testing.assert_array_equal(back.numpy(), q)
    assert int(e) == exponent
    # An int16 layer reads such a carrier exactly: its x_q are the mantissas.
    kernel = tf.Variable(np.eye(6, dtype=np.int16))
    y, y_exp = layer_ops.dense(tf.reshape(carrier, [1, 6]), kernel, 0)
    np.testing.assert_array_equal(y.numpy().ravel(), carrier.numpy())


def test_int16_bias_sum_beyond_int64_is_an_error():
    kernel = tf.Variable(np.full((4, 1), 32767, np.int16))
    bias = tf.Variable(np.array([2**31 - 1], np.int32))
    # Bias aligned by 2**31 (input exponent -31) plus products near 2**32: fits; the op adds exactly.
    y, _ = layer_ops.dense(np.full((1, 4), 32767 * 2.0**-31, np.float32), kernel, 0, bias=bias)
    assert np.isfinite(y.numpy()).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="alignment shift 32 is too large"):
        layer_ops.dense(np.full((1, 4), 32767 * 2.0**-32, np.float32), kernel, 0, bias=bias)


@pytest.mark.parametrize("call, error, message", [
    (lambda: ops.int_matmul(np.ones((2, 2), np.int32), np.ones((2, 2), np.int16)), ValueError,
     "x must be one of int8, int16, got int32"),
    (lambda: ops.int_conv2d(np.ones((1, 3, 3, 1), np.int16), np.ones((1, 1, 1, 1), np.float32)), ValueError,
     "w must be one of int8, int16, got float32"),
    (lambda: ops.requantize(np.ones(3, np.int64), 0, bits=12), ValueError, "bits must be 8 or 16, got 12"),
    (lambda: ops.int_softmax_cross_entropy_grad(np.ones((2, 3), np.int32), 0, [0, 1]), ValueError,
     "logits must be one of int8, int16, got int32"),
    (lambda: error_to_carrier(tf.ones([3], tf.int64), 0, 12), tf.errors.InvalidArgumentError,
     "bits must be 8 or 16, got 12"),
    (lambda: ops.int_matmul(np.ones((2, 3), np.int16), np.ones((2, 3), np.int16)), (ValueError,
     tf.errors.InvalidArgumentError), "[Dd]imensions must be equal|do not match"),
])
def test_bad_16_bit_input_is_refused_with_a_named_error(call, error, message):
    with pytest.raises(error, match=message):
        call()

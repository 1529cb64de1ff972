"""Integer softmax and attention products (docs/algorithms.md sections 10 and
13) against the NumPy reference, bit for bit, and against TensorFlow's float
softmax and products within the documented error."""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops, ops

MODES = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]
BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


def _run(x, mask=None, scale=(1, 0), dy=None, rounding="nearest", seed=None):
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y, e = layer_ops.softmax(x_t, None if mask is None else tf.constant(mask), scale, rounding, seed)
        loss = tf.reduce_sum(y * (0.0 if dy is None else tf.constant(dy)))
    return y, int(e), tape.gradient(loss, x_t)


def _check(x, mask=None, scale=(1, 0), rounding="nearest", seeds=(None, (0, 0))):
    dy = _carrier(np.random.default_rng(x.size), x.shape, -9)
    y, e, dx = _run(x, mask, scale, dy, rounding, seeds[0])
    q, ex = ref.quantize(x)
    y_q, y_e = ref.softmax(q, ex, mask, scale, rounding, seeds[1])
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(y_q, y_e))
    assert e == y_e
    err, e_err = ref.quantize(dy)
    dx_q, dx_e = ref.softmax_grad(err, e_err, y_q, y_e, scale)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))
    return y_q, y_e


def test_exp2_table_is_the_specified_one():
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    exact = [int((Decimal(2) ** (Decimal(30) - Decimal(j) / 256) + Decimal("0.5")).to_integral_value("ROUND_FLOOR"))
             for j in range(256)]
    assert ref.softmax_exp2_table() == exact
    # The op's table: a row of logits 0, -j/256 octaves at scale 2**-8 / log2(e) is not exact, so
    # check instead that the op agrees with the reference (which uses `exact`) on every fraction.
    q = np.arange(0, -128, -1, dtype=np.int64)[np.newaxis]
    for e in (-4, -6, -8):
        x = (q * 2.0**e).astype(np.float32)
        _check(x)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 4, 33), (2, 300), (5, 1000)])
@pytest.mark.parametrize("scale", [(1, 0), (23170, 16), (1, 3), (65535, 20)])
def test_bit_exact(rng, shape, scale):
    _check(_carrier(rng, shape, -4), scale=scale)


@pytest.mark.parametrize("mode", MODES)
def test_rounding_modes(rng, mode):
    seeds = ([3, 11], (3, 11)) if mode == "stochastic" else (None, (0, 0))
    _check(_carrier(rng, (6, 40), -3), rounding=mode, seeds=seeds)


def test_masks(rng):
    x = _carrier(rng, (4, 3, 10), -4)
    mask = rng.random(x.shape) > 0.4
    mask[0, 0] = False           # a row with every entry masked: all zero, no error
    mask[1, 1] = False
    mask[1, 1, 7] = True         # one kept entry: probability 1
    y_q, y_e = _check(x, mask)
    y = ref.dequantize(y_q, y_e)
    assert not np.any(y[~mask]) and not np.any(y[0, 0]) and y[1, 1, 7] == 1.0
    causal = np.tril(np.ones((10, 10), bool))
    _check(_carrier(rng, (2, 10, 10), -4), np.broadcast_to(causal, (2, 10, 10)))


@pytest.mark.parametrize("exponent", [-20, -9, -2, 0, 5])
def test_logit_scales_and_extremes(rng, exponent):
    """Small logits (a near-uniform row), large ones (one-hot), all equal, +-127."""
    _check(_carrier(rng, (3, 17), exponent))
    _check(np.full((2, 5), 3.0 * 2.0**exponent, np.float32))
    _check((rng.choice([-127, 127], (4, 9)) * 2.0**exponent).astype(np.float32))
    _check(np.zeros((2, 6), np.float32))


def test_random_cases_bit_exact():
    rng = np.random.default_rng(20261203)
    for case in range(40):
        rows, n = int(rng.integers(1, 20)), int(rng.integers(1, 120))
        x = _carrier(rng, (rows, n), int(rng.integers(-12, 4)))
        mask = rng.random((rows, n)) > rng.uniform(0, 0.6) if case % 3 else None
        scale = (int(rng.integers(1, 65536)), int(rng.integers(0, 40))) if case % 2 else (1, 0)
        mode = MODES[case % 4]
        seeds = ([case, 1], (case, 1)) if mode == "stochastic" else (None, (0, 0))
        _check(x, mask, scale, mode, seeds)


@pytest.mark.parametrize("scale", [(1, 0), (23170, 16)])
def test_against_float_softmax(rng, scale):
    """Before the int8 rounding the probabilities are within 0.3 % + 2**-22 of
    float softmax (spec section 10); the op's output within half a unit more,
    and dx within the quantisation error of TensorFlow's autodiff."""
    x = _carrier(rng, (8, 24), -4)
    c = scale[0] * 2.0**-scale[1]
    xf = tf.constant(x, tf.float64)
    dy = _carrier(rng, x.shape, -9)
    with tf.GradientTape() as tape:
        tape.watch(xf)
        f = tf.nn.softmax(xf * c)
        loss = tf.reduce_sum(f * dy)
    dx_f = tape.gradient(loss, xf).numpy()
    f = f.numpy()
    q, e = ref.quantize(x)
    P = ref.softmax_probabilities(q, e, scale=scale) * 2.0**-22
    assert np.all(np.abs(P - f) <= 0.003 * f + 2.0**-22)
    y, y_e, dx = _run(x, scale=scale, dy=dy)
    assert np.abs(y.numpy() - f).max() <= 0.003 + 2.0 ** (y_e - 1) + 2.0**-22
    # dx from int8 probabilities (half a unit of y_e each) and quantized dy.
    _, dx_e = ref.quantize(dx.numpy())
    assert np.abs(dx.numpy() - dx_f).max() <= 0.05 * np.abs(dx_f).max() + 2.0**dx_e


def test_bad_inputs(rng):
    x = tf.constant(_carrier(rng, (2, 5), -4))
    with pytest.raises(BAD, match="mask must be bool"):
        layer_ops.softmax(x, tf.ones((2, 5), tf.int32))
    with pytest.raises(BAD, match="scale must be a pair"):
        layer_ops.softmax(x, scale=3)
    with pytest.raises(BAD, match="scale multiplier"):
        layer_ops.softmax(x, scale=(0, 1))
    with pytest.raises(BAD, match="scale multiplier"):
        layer_ops.softmax(x, scale=(2**16, 1))
    with pytest.raises(BAD, match="scale shift"):
        layer_ops.softmax(x, scale=(1, 63))
    with pytest.raises(BAD, match="NaN"):
        layer_ops.softmax(tf.constant([[np.nan, 1.0]]))
    with pytest.raises(BAD, match="(?i)rank"):
        layer_ops.softmax(tf.constant(1.0))
    with pytest.raises(BAD, match="seed"):
        layer_ops.softmax(x, rounding="stochastic")
    with pytest.raises(BAD, match="float32 carrier"):
        layer_ops.softmax(tf.ones((2, 3), tf.int32))
    raw = layer_ops._loader.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask must have the shape of x"):
        raw.int_ops_softmax(x, [tf.ones((2, 4), tf.bool)], [0, 0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most one mask"):
        raw.int_ops_softmax(x, [tf.ones((2, 5), tf.bool)] * 2, [0, 0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_exponent \(a softmax output's\) 3 is out of range"):
        raw.int_ops_softmax_grad(x, tf.ones((2, 5), tf.int8), 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dy has shape"):
        raw.int_ops_softmax_grad(x, tf.ones((2, 4), tf.int8), -7)
    with pytest.raises(tf.errors.InvalidArgumentError, match="scale 0 \\* 2\\*\\*-0 is out of range"):
        raw.int_ops_softmax(x, [], [0, 0], scale_multiplier=0)


# ---------------------------------------------------------------- products of two activations

@pytest.mark.parametrize("transpose_x,transpose_w", [(False, False), (True, False), (False, True), (True, True)])
def test_int_batch_matmul_bit_exact(rng, transpose_x, transpose_w):
    for batch, m, n, k in [((3,), 4, 5, 6), ((2, 3), 1, 7, 33), ((1,), 17, 1, 1), ((2,), 5, 6, 0)]:
        x = rng.integers(-128, 128, (*batch, *((k, m) if transpose_x else (m, k)))).astype(np.int8)
        w = rng.integers(-128, 128, (*batch, *((n, k) if transpose_w else (k, n)))).astype(np.int8)
        out = ops.int_batch_matmul(x, w, transpose_x, transpose_w)
        assert out.dtype == tf.int32
        np.testing.assert_array_equal(out.numpy(), ref.batch_matmul(x, w, transpose_x, transpose_w))


def test_int_batch_matmul_overflow_is_an_error():
    x = np.full((2, 1, 131072), -128, np.int8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="overflow"):
        ops.int_batch_matmul(x, np.swapaxes(x, 1, 2)).numpy()
    y = ops.int_batch_matmul(x[:, :, 1:], np.swapaxes(x[:, :, 1:], 1, 2))  # 131071 terms: exact
    np.testing.assert_array_equal(y.numpy(), np.full((2, 1, 1), 131071 * 2**14))


def test_int_batch_matmul_bad_inputs():
    with pytest.raises(BAD, match="x must be int8"):
        ops.int_batch_matmul(np.ones((2, 2, 2), np.float32), np.ones((2, 2, 2), np.int8))
    with pytest.raises(BAD, match="rank >= 2"):
        ops.int_batch_matmul(np.ones((2,), np.int8), np.ones((2, 2), np.int8))
    with pytest.raises(BAD, match="same rank"):
        ops.int_batch_matmul(np.ones((2, 2, 2), np.int8), np.ones((2, 2), np.int8))
    with pytest.raises(BAD, match="batch dimensions|Dimensions must be equal"):
        ops.int_batch_matmul(np.ones((2, 2, 2), np.int8), np.ones((3, 2, 2), np.int8))
    with pytest.raises(BAD, match="inner dimensions|Dimensions must be equal"):
        ops.int_batch_matmul(np.ones((2, 2, 3), np.int8), np.ones((2, 2, 2), np.int8))


@pytest.mark.parametrize("transpose_b", [False, True])
def test_carrier_matmul_and_gradient(rng, transpose_b):
    """y = requantize(qa @ qb) bit-exact; da = requantize(err @ qb^T), db =
    requantize(qa^T @ err) bit-exact; all within the quantisation error of floats."""
    a = _carrier(rng, (2, 3, 5, 8), -4)
    b = _carrier(rng, (2, 3, 6, 8) if transpose_b else (2, 3, 8, 6), -5)
    dy = _carrier(rng, (2, 3, 5, 6), -9)
    a_t, b_t = tf.constant(a), tf.constant(b)
    with tf.GradientTape() as tape:
        tape.watch([a_t, b_t])
        y, e = layer_ops.matmul(a_t, b_t, transpose_b=transpose_b)
        loss = tf.reduce_sum(y * dy)
    da, db = tape.gradient(loss, [a_t, b_t])
    qa, ea = ref.quantize(a)
    qb, eb = ref.quantize(b)
    acc = ref.batch_matmul(qa, qb, transpose_w=transpose_b)
    y_q, y_e = ref.requantize(acc, ea + eb)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(y_q, y_e))
    err, e_err = ref.quantize(dy)
    np.testing.assert_array_equal(da.numpy(), ref.dequantize(
        *ref.requantize(ref.batch_matmul(err, qb, transpose_w=not transpose_b), e_err + eb)))
    db_acc = ref.batch_matmul(err, qa, transpose_x=True) if transpose_b else ref.batch_matmul(qa, err,
                                                                                                 transpose_x=True)
    np.testing.assert_array_equal(db.numpy(), ref.dequantize(*ref.requantize(db_acc, e_err + ea)))
    bf = np.swapaxes(b, -1, -2) if transpose_b else b
    assert np.abs(y.numpy() - a @ bf).max() <= 2.0 ** (y_e - 1)

"""Integer GELU (docs/algorithms.md section 11) against the NumPy reference,
bit for bit, and against the exact GELU within the documented bounds."""

import math

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops

MODES = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]
BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


def _run(x, dy, rounding="nearest", seed=None):
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y, e = layer_ops.gelu(x_t, rounding, seed)
        loss = tf.reduce_sum(y * tf.constant(dy))
    return y, int(e), tape.gradient(loss, x_t)


def _check(x, rounding="nearest", seeds=(None, (0, 0))):
    dy = _carrier(np.random.default_rng(x.size), x.shape, -9)
    y, e, dx = _run(x, dy, rounding, seeds[0])
    q, ex = ref.quantize(x)
    y_q, y_e = ref.gelu(q, ex, rounding, seeds[1])
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(y_q, y_e))
    assert e == y_e
    err, e_err = ref.quantize(dy)
    dx_q, dx_e = ref.gelu_grad(err, e_err, q, ex)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))


@pytest.mark.parametrize("exponent", [-30, -17, -10, -7, -5, -3, 0, 4, 30])
def test_every_mantissa_bit_exact(exponent):
    x = (np.arange(-127, 128) * 2.0**exponent).astype(np.float32).reshape(1, -1)
    _check(x)


@pytest.mark.parametrize("mode", MODES)
def test_rounding_modes(rng, mode):
    seeds = ([9, 2], (9, 2)) if mode == "stochastic" else (None, (0, 0))
    _check(_carrier(rng, (5, 3, 7), -5), mode, seeds)


def test_shapes(rng):
    for shape in [(1,), (0, 4), (2, 3, 4, 5), (1000,)]:
        _check(_carrier(rng, shape, -6))
    _check(np.zeros((3, 3), np.float32))


def _gelu(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def _dgelu(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) + x * math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


@pytest.mark.parametrize("exponent", [-10, -8, -7, -6, -5])
def test_error_bounds_against_exact_gelu(exponent):
    """The spec's bounds over every mantissa: |GELU_int - GELU| <= 0.0182 and
    <= 0.049 |x| before the output rounding; |G - GELU'| <= 0.049."""
    for q in range(-127, 128):
        x = q * 2.0**exponent
        value = ref.gelu_value(q, exponent) * 2.0 ** (exponent - 17)
        assert abs(value - _gelu(x)) <= min(0.0182, 0.049 * abs(x)) + 1e-12, (q, exponent)
        if q:
            assert abs(ref.gelu_derivative(q, exponent) * 2.0**-17 - _dgelu(x)) <= 0.049, (q, exponent)
    # The op's output adds at most half a unit of its exponent.
    x = (np.arange(-127, 128) * 2.0**exponent).astype(np.float32)
    y, e, _ = _run(x, np.zeros_like(x))
    exact = np.array([_gelu(float(v)) for v in x])
    assert np.all(np.abs(y.numpy() - exact) <= np.minimum(0.0182, 0.049 * np.abs(x)) + 2.0 ** (e - 1) + 1e-12)


def test_gradient_against_float_autodiff(rng):
    x = _carrier(rng, (6, 40), -5)
    dy = _carrier(rng, x.shape, -9)
    _, _, dx = _run(x, dy)
    xf = tf.constant(x, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(xf)
        loss = tf.reduce_sum(tf.nn.gelu(xf, approximate=False) * dy)
    dx_f = tape.gradient(loss, xf).numpy()
    _, dx_e = ref.quantize(dx.numpy())
    assert np.all(np.abs(dx.numpy() - dx_f) <= 0.049 * np.abs(dy) + 2.0 ** (dx_e - 1) + 1e-12)


def test_bad_inputs():
    with pytest.raises(BAD, match="NaN"):
        layer_ops.gelu(tf.constant([np.inf, 1.0]))
    with pytest.raises(BAD, match="float32 carrier"):
        layer_ops.gelu(tf.ones((2,), tf.int8))
    with pytest.raises(BAD, match="rounding must be one of"):
        layer_ops.gelu(tf.ones((2,)), rounding="up")
    with pytest.raises(BAD, match="seed"):
        layer_ops.gelu(tf.ones((2,)), rounding="stochastic")
    raw = layer_ops._loader.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="x_exponent 101 is out of range"):
        raw.int_ops_gelu_grad(np.ones((2,), np.float32), np.ones((2,), np.int8), 101)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dy has shape"):
        raw.int_ops_gelu_grad(np.ones((2,), np.float32), np.ones((3,), np.int8), 0)

"""Integer layer normalization ops (docs/algorithms.md section 9) against the
NumPy reference (tests/reference.py), bit for bit, and against TensorFlow's
float layer normalization within the quantisation error.

Forward (every rounding), the carrier gradient dx (8- and 16-bit mantissas)
and the int32 weight gradients dgamma, dbeta, bad inputs.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops

MODES = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]
SHAPES = [(1, 3), (5, 7), (2, 3, 16), (3, 1), (4, 100), (2, 2, 2, 33)]
EPSILON = ref.epsilon_pair(1e-3)
BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


def _params(rng, features, unit_gamma=False):
    if unit_gamma:
        gamma, e_g = ref.quantize(np.ones(features, np.float32))   # 64 at -6: exactly 1.0
    else:
        gamma, e_g = rng.integers(-127, 128, features), -7
    beta = rng.integers(-2000, 2001, features)
    return gamma.astype(np.int8), beta.astype(np.int32), e_g


def _run(x, gamma, beta, e_g, dy, rounding="nearest", seed=None, epsilon=EPSILON, error_bits=16):
    """The op under a tape: (y, y_exponent, dx, dgamma, dbeta, recorded error exponent)."""
    gamma_v, beta_v, x_t = tf.Variable(gamma), tf.Variable(beta), tf.constant(x)
    error_exponent = tf.Variable(99, dtype=tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y, y_e = layer_ops.layer_norm(x_t, gamma_v, beta_v, e_g, epsilon, rounding, seed, error_exponent,
                                      error_bits)
        loss = tf.reduce_sum(y * tf.constant(dy))
    dx, dgamma, dbeta = tape.gradient(loss, [x_t, gamma_v, beta_v])
    return y, int(y_e), dx, dgamma, dbeta, int(error_exponent.numpy())


def _check(x, gamma, beta, e_g, dy, rounding="nearest", op_seed=None, ref_seed=None, epsilon=EPSILON,
           error_bits=16):
    """Bit-exact forward and gradients; returns the reference forward."""
    y, y_e, dx, dgamma, dbeta, recorded = _run(x, gamma, beta, e_g, dy, rounding, op_seed, epsilon, error_bits)
    qx, ex = ref.quantize(x)
    want = ref.layer_norm(qx, ex, gamma, e_g, beta, *epsilon, rounding=rounding, seed=ref_seed)
    assert y.dtype == tf.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want["y_q"], want["y_exponent"]))
    assert y_e == want["y_exponent"]
    err, e_err = ref.quantize(dy)
    assert recorded == e_err
    dx_q, dx_e, dgamma_ref, dbeta_ref = ref.layer_norm_grad(err, e_err, want["xhat"], ex, want["r"], want["k"],
                                                            gamma, e_g, error_bits)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))
    assert dgamma.dtype == tf.int32 and dbeta.dtype == tf.int32
    np.testing.assert_array_equal(dgamma.numpy(), dgamma_ref)
    np.testing.assert_array_equal(dbeta.numpy(), dbeta_ref)
    return want


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("unit_gamma", [True, False])
@pytest.mark.parametrize("error_bits", [8, 16])
def test_bit_exact(rng, shape, unit_gamma, error_bits):
    gamma, beta, e_g = _params(rng, shape[-1], unit_gamma)
    _check(_carrier(rng, shape, -5), gamma, beta, e_g, _carrier(rng, shape, -9), error_bits=error_bits)


@pytest.mark.parametrize("mode", MODES)
def test_rounding_modes(rng, mode):
    gamma, beta, e_g = _params(rng, 24)
    seeds = ([5, 7], (5, 7)) if mode == "stochastic" else (None, None)
    _check(_carrier(rng, (6, 24), -3), gamma, beta, e_g, _carrier(rng, (6, 24), -9), mode, *seeds)


def test_rank_one_and_raw_float_input(rng):
    gamma, beta, e_g = _params(rng, 9)
    _check(_carrier(rng, (9,), -4), gamma, beta, e_g, _carrier(rng, (9,), -9))
    x = rng.normal(size=(3, 9)).astype(np.float32)     # not a carrier: quantized as the spec says
    _check(x, gamma, beta, e_g, _carrier(rng, (3, 9), -9))


def test_constant_rows_and_single_feature(rng):
    """A constant row (variance 0) normalises to beta; one feature per row is a constant row."""
    gamma, beta, e_g = _params(rng, 5)
    x = np.repeat(_carrier(rng, (4, 1), -6), 5, axis=1)
    want = _check(x, gamma, beta, e_g, _carrier(rng, (4, 5), -9))
    assert not np.any(want["xhat"])
    gamma1, beta1, e_g1 = _params(rng, 1)
    _check(_carrier(rng, (6, 1), -6), gamma1, beta1, e_g1, _carrier(rng, (6, 1), -9))


@pytest.mark.parametrize("pattern", ["extremes", "zeros", "one_outlier"])
def test_extreme_values(rng, pattern):
    shape = (5, 40)
    if pattern == "extremes":
        q = rng.choice([-127, 127], shape)
    elif pattern == "zeros":
        q = np.zeros(shape)
    else:
        q = np.zeros(shape)
        q[:, 3] = 127
    gamma = np.full(40, 127, np.int8)
    beta = np.full(40, 2**30, np.int32) * (1 if pattern != "zeros" else 0)
    dy = (rng.choice([-127, 127], shape) * 2.0**-3).astype(np.float32)
    for error_bits in (8, 16):
        _check((q * 2.0**-7).astype(np.float32), gamma, beta.astype(np.int32), -7, dy, error_bits=error_bits)


def test_all_zero_error(rng):
    gamma, beta, e_g = _params(rng, 8)
    y, _, dx, dgamma, dbeta, _ = _run(_carrier(rng, (3, 8), -5), gamma, beta, e_g, np.zeros((3, 8), np.float32))
    assert not np.any(dx.numpy()) and not np.any(dgamma.numpy()) and not np.any(dbeta.numpy())


def test_random_cases_bit_exact():
    """Random shapes (1..60 rows, 1..130 features), exponents, value ranges
    (some rows constant), epsilons and roundings."""
    rng = np.random.default_rng(20261202)
    for case in range(30):
        rows, features = int(rng.integers(1, 61)), int(rng.integers(1, 131))
        shape = (rows, features) if case % 2 else (1, rows, features)
        spread = rng.integers(0, 128, (rows, 1))  # 0: a constant row
        centre = rng.integers(-127, 128, (rows, 1))
        q = np.clip(centre + rng.integers(-1, 2, (rows, features)) * rng.integers(0, 128, (rows, features))
                    * (spread > 0), -127, 127).reshape(shape)
        x = (q * 2.0 ** int(rng.integers(-40, 20))).astype(np.float32)
        dy = (rng.integers(-127, 128, shape) * 2.0 ** int(rng.integers(-30, 5))).astype(np.float32)
        gamma = rng.integers(-127, 128, features).astype(np.int8)
        beta = rng.integers(-2**20, 2**20, features).astype(np.int32)
        epsilon = ref.epsilon_pair(float(10.0 ** rng.uniform(-8, 1)))
        mode = MODES[case % 4]
        seeds = ([3, case], (3, case)) if mode == "stochastic" else (None, None)
        _check(x, gamma, beta, int(rng.integers(-10, 0)), dy, mode, *seeds, epsilon=epsilon,
               error_bits=(8, 16)[case // 4 % 2])


def _float_layer_norm(x, gamma, beta, e_g, dy):
    """TensorFlow's float64 layer norm of x with the integer gamma and beta,
    and its autodiff under the error dy: (y, dx, dgamma, dbeta)."""
    eps = float(np.ldexp(*EPSILON))
    xf = tf.constant(x, tf.float64)
    g = tf.constant(gamma.astype(np.float64) * 2.0**e_g)
    b = tf.constant(beta.astype(np.float64) * 2.0**(e_g - ref.NORM_FRACTION_BITS))
    with tf.GradientTape() as tape:
        tape.watch([xf, g, b])
        mean, var = tf.nn.moments(xf, [-1], keepdims=True)
        yf = (xf - mean) / tf.sqrt(var + eps) * g + b
        loss = tf.reduce_sum(yf * tf.constant(dy, tf.float64))
    return (yf.numpy(), *(t.numpy() for t in tape.gradient(loss, [xf, g, b])))


@pytest.mark.parametrize("shape", [(6, 32), (2, 5, 64)])
@pytest.mark.parametrize("error_bits", [8, 16])
def test_against_float_layer_norm(rng, shape, error_bits):
    """y and dx within the quantisation error of TensorFlow's float64 layer
    norm and its autodiff; dbeta exact; dgamma within rows * max|dy| * 2**-8."""
    features = shape[-1]
    gamma, beta, e_g = _params(rng, features)
    x = _carrier(rng, shape, -5)
    dy = _carrier(rng, shape, -12)
    y, y_e, dx, dgamma, dbeta, e_err = _run(x, gamma, beta, e_g, dy, error_bits=error_bits)
    yf, dx_f, dg_f, db_f = _float_layer_norm(x, gamma, beta, e_g, dy)
    assert np.abs(y.numpy() - yf).max() <= 2.0**y_e + np.abs(gamma).max() * 2.0**(e_g - 8)
    # Relative to the largest |dx|: xhat's rounding and the final rounding.
    qdx = dx.numpy()
    _, dx_e = ref.quantize(qdx, error_bits)
    assert np.abs(qdx - dx_f).max() <= 2.0**-5 * np.abs(dx_f).max() + 2.0**dx_e
    np.testing.assert_array_equal(dbeta.numpy() * 2.0**e_err, db_f)
    rows = x.size // features
    assert np.all(np.abs(dgamma.numpy() * 2.0**(e_err - ref.NORM_FRACTION_BITS) - dg_f)
                  <= rows * np.abs(dy).max() * 2.0**-8 + 2.0**(e_err - ref.NORM_FRACTION_BITS))


def test_16_bit_error_keeps_the_rows_that_8_bits_round_away():
    """One exponent serves the whole batch: a row with a large spread (small
    1 / sigma) has an error about 2**-7 of a narrow row's, which 8-bit
    mantissas round to a few units and 16-bit ones keep (section 9);
    measured: 14 % and 0.05 % of the row's largest error."""
    q = np.array([[-127, 127] * 8, [-1, 1] * 8], np.float64)
    x = (q * 2.0**-7).astype(np.float32)
    gamma, beta, e_g = np.full(16, 64, np.int8), np.zeros(16, np.int32), -6   # gamma 1.0, beta 0
    dy = (np.tile(np.arange(-8, 8), (2, 1)) * 2.0**-4).astype(np.float32)
    _, dx_f, _, _ = _float_layer_norm(x, gamma, beta, e_g, dy)
    wide_row = {}
    for error_bits in (8, 16):
        dx = _run(x, gamma, beta, e_g, dy, error_bits=error_bits)[2].numpy()
        wide_row[error_bits] = np.abs(dx[0] - dx_f[0]).max() / np.abs(dx_f[0]).max()
    assert wide_row[8] > 0.1, wide_row
    assert wide_row[16] < 2.0**-8, wide_row


def test_bad_inputs(rng):
    gamma, beta, e_g = _params(rng, 3)
    g, b = tf.Variable(gamma), tf.Variable(beta)
    x = _carrier(rng, (4, 3), -7)
    with pytest.raises(BAD, match=r"(?i)rank"):
        layer_ops.layer_norm(tf.constant(1.0), g, b, e_g)
    with pytest.raises(BAD, match=r"(?i)int8"):
        layer_ops.layer_norm(tf.constant(x), tf.Variable(gamma.astype(np.float32)), b, e_g)
    with pytest.raises(BAD, match=r"(?i)int32"):
        layer_ops.layer_norm(tf.constant(x), g, tf.Variable(gamma), e_g)
    with pytest.raises(BAD, match=r"gamma must have shape \[4\]"):
        layer_ops.layer_norm(tf.constant(_carrier(rng, (4, 4), -7)), g, b, e_g)
    with pytest.raises(BAD, match=r"beta must have shape \[3\]"):
        layer_ops.layer_norm(tf.constant(x), g, tf.Variable(np.zeros(4, np.int32)), e_g)
    x_nan = x.copy()
    x_nan[1, 2] = np.nan
    with pytest.raises(BAD, match="NaN"):
        layer_ops.layer_norm(tf.constant(x_nan), g, b, e_g)
    with pytest.raises(BAD, match=r"(?i)seed"):
        layer_ops.layer_norm(tf.constant(x), g, b, e_g, rounding="stochastic")
    with pytest.raises(BAD, match=r"(?i)epsilon"):
        layer_ops.layer_norm(tf.constant(x), g, b, e_g, epsilon=0.0)
    with pytest.raises(BAD, match=r"(?i)exponent"):
        layer_ops.layer_norm(tf.constant(x), g, b, 1000)
    with pytest.raises(BAD, match=r"error_bits: bits must be 8 or 16, got 12"):
        layer_ops.layer_norm(tf.constant(x), g, b, e_g, error_bits=12)


def test_gradient_bad_saved_constants():
    raw = layer_ops._loader.load()
    dy = np.ones((2, 3), np.float32)
    q = np.ones((2, 3), np.int8)
    good = dict(x_sum=np.zeros(2, np.int64), inv_sqrt=np.ones(2, np.int64), inv_shift=np.zeros(2, np.int32))
    for key, value, message in [("x_sum", [0, 385], "row 1 has x_sum 385"),
                                ("inv_sqrt", [-1, 1], "row 0 has x_sum 0, inv_sqrt -1"),
                                ("inv_sqrt", [1, 2**33], "inv_sqrt 8589934592"),
                                ("inv_shift", [0, 31], "inv_shift 31")]:
        args = {**good, key: np.asarray(value, good[key].dtype)}
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            raw.int_ops_layer_norm_grad(dy, q, 0, args["x_sum"], args["inv_sqrt"], args["inv_shift"],
                                        np.ones(3, np.int8), 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"per-row inputs must have shape \[2\]"):
        raw.int_ops_layer_norm_grad(dy, q, 0, np.zeros(3, np.int64), good["inv_sqrt"], good["inv_shift"],
                                    np.ones(3, np.int8), 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"per-channel inputs must have shape \[3\]"):
        raw.int_ops_layer_norm_grad(dy, q, 0, good["x_sum"], good["inv_sqrt"], good["inv_shift"],
                                    np.ones(2, np.int8), 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dy has shape"):
        raw.int_ops_layer_norm_grad(np.ones((2, 4), np.float32), q, 0, good["x_sum"], good["inv_sqrt"],
                                    good["inv_shift"], np.ones(3, np.int8), 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="layer_norm_grad: dx_bits must be 8 or 16, got 12"):
        raw.int_ops_layer_norm_grad(dy, q, 0, good["x_sum"], good["inv_sqrt"], good["inv_shift"],
                                    np.ones(3, np.int8), 0, dx_bits=12)

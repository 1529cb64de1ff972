"""Integer batch normalization ops (docs/algorithms.md section 8) against the
NumPy reference (tests/reference.py), bit for bit, and against TensorFlow's
float batch normalization within the quantisation error.

Forward (training and inference), batch statistics, the carrier gradient dx
and the int32 weight gradients dgamma, dbeta, and the moving averages.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops

F = ref.NORM_FRACTION_BITS
MODES = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]
SHAPES = [(1, 3), (5, 7), (2, 3, 3, 5), (3, 1, 1, 2)]
EPSILON = ref.epsilon_pair(1e-3)


def _params(rng, channels, unit_gamma=False):
    if unit_gamma:
        gamma, e_g = ref.quantize(np.ones(channels, np.float32))   # 64 at -6: exactly 1.0
    else:
        gamma, e_g = rng.integers(-127, 128, channels), -7
    beta = rng.integers(-2000, 2001, channels)
    return gamma.astype(np.int8), beta.astype(np.int32), e_g


def _seeds(mode):
    """(op seed, reference seed): stochastic rounding needs one, the others take none."""
    return ([5, 7], (5, 7)) if mode == "stochastic" else (None, None)


def _train(x, gamma, beta, e_g, dy, rounding="nearest", seed=None, epsilon=EPSILON):
    """Runs the training op under a tape; returns (outputs, dx, dgamma, dbeta)."""
    gamma_v, beta_v = tf.Variable(gamma), tf.Variable(beta)
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        out = layer_ops.batch_norm(x_t, gamma_v, beta_v, e_g, epsilon=epsilon, training=True,
                                   rounding=rounding, seed=seed)
        loss = tf.reduce_sum(out["y"] * tf.constant(dy))
    dx, dgamma, dbeta = tape.gradient(loss, [x_t, gamma_v, beta_v])
    return out, dx, dgamma, dbeta


def _check_train(x, gamma, beta, e_g, dy, rounding="nearest", op_seed=None, ref_seed=None,
                 epsilon=EPSILON):
    """Bit-exact forward, statistics and gradients; returns (reference forward, grad)."""
    out, dx, dgamma, dbeta = _train(x, gamma, beta, e_g, dy, rounding, op_seed, epsilon)
    qx, ex = ref.quantize(x)
    want = ref.batch_norm_train(qx, ex, gamma, e_g, beta, *epsilon, rounding=rounding, seed=ref_seed)
    assert out["y"].dtype == tf.float32 and out["y"].shape == x.shape
    np.testing.assert_array_equal(out["y"].numpy(), ref.dequantize(want["y_q"], want["y_exponent"]))
    assert int(out["y_exponent"]) == want["y_exponent"]
    for key in ["batch_mean", "batch_variance"]:
        assert out[key].dtype == tf.int32
        np.testing.assert_array_equal(out[key].numpy(), want[key])
        assert int(out[key + "_exponent"]) == want[key + "_exponent"]

    grad = ref.batch_norm_grad_from_carrier(dy, want["xhat"], ex, want["r"], want["k"], gamma, e_g,
                                            details=True)
    assert dx.dtype == tf.float32 and dx.shape == x.shape
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(grad["dx_q"], grad["dx_exponent"]))
    assert dgamma.dtype == tf.int32 and dbeta.dtype == tf.int32
    np.testing.assert_array_equal(dgamma.numpy(), grad["dgamma"])
    np.testing.assert_array_equal(dbeta.numpy(), grad["dbeta"])
    return want, grad


# ---------------------------------------------------------------- training

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("unit_gamma", [True, False])
def test_training_bit_exact(rng, shape, unit_gamma):
    gamma, beta, e_g = _params(rng, shape[-1], unit_gamma)
    x = _carrier(rng, shape, -5)
    dy = _carrier(rng, shape, -12)
    _check_train(x, gamma, beta, e_g, dy)


def test_training_raw_float_input(rng):
    # Not a carrier: the op quantizes x itself (section 1), as the reference does.
    gamma, beta, e_g = _params(rng, 4)
    x = rng.normal(size=(6, 2, 4)).astype(np.float32) * 3
    dy = rng.normal(size=(6, 2, 4)).astype(np.float32) * 1e-3
    _check_train(x, gamma, beta, e_g, dy)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 3, 5)])
def test_training_rounding_modes(rng, mode, shape):
    gamma, beta, e_g = _params(rng, shape[-1])
    op_seed, ref_seed = _seeds(mode)
    x = _carrier(rng, shape, -7)
    dy = _carrier(rng, shape, -9)
    _check_train(x, gamma, beta, e_g, dy, mode, op_seed, ref_seed)


def test_training_stochastic_is_seeded(rng):
    gamma, beta, e_g = _params(rng, 5)
    x = _carrier(rng, (16, 5), -7)
    dy = np.zeros((16, 5), np.float32)
    y1 = _train(x, gamma, beta, e_g, dy, "stochastic", [3, 1])[0]["y"].numpy()
    y2 = _train(x, gamma, beta, e_g, dy, "stochastic", [3, 1])[0]["y"].numpy()
    _check_train(x, gamma, beta, e_g, dy, "stochastic", [3, 2], (3, 2))
    np.testing.assert_array_equal(y1, y2)


def test_training_batch_one_and_constant_channel(rng):
    gamma, beta, e_g = _params(rng, 3)
    # Batch 1: every channel constant, y = beta, dx = 0.
    x = _carrier(rng, (1, 3), -6)
    want, grad = _check_train(x, gamma, beta, e_g, _carrier(rng, (1, 3), -10))
    assert not want["xhat"].any() and not grad["dx_q"].any()
    # One constant channel among others.
    x = _carrier(rng, (9, 3), -6)
    x[:, 1] = x[0, 1]
    want, _ = _check_train(x, gamma, beta, e_g, _carrier(rng, (9, 3), -10))
    assert not want["xhat"][:, 1].any()
    # All zero input and zero error.
    _check_train(np.zeros((4, 3), np.float32), gamma, beta, e_g, np.zeros((4, 3), np.float32))
    # A constant input far above epsilon's scale: W = 0, r = k = 0.
    x = np.full((4, 2), 2.0**40, np.float32)
    want, _ = _check_train(x, gamma[:2], beta[:2], e_g, _carrier(rng, (4, 2), -3))
    assert list(want["r"]) == [0, 0]


@pytest.mark.parametrize("pattern", ["max", "min", "alternating", "one_outlier"])
def test_training_extreme_values(rng, pattern):
    shape = (8, 3, 4)
    q = {"max": np.full(shape, 127), "min": np.full(shape, -127),
         "alternating": np.where(np.indices(shape).sum(axis=0) % 2, 127, -127),
         "one_outlier": np.where(np.arange(np.prod(shape)).reshape(shape) == 0, 127, -127)}[pattern]
    x = (q * 2.0**-7).astype(np.float32)
    gamma = np.array([127, -127, 127, 1], np.int8)
    beta = np.array([2**31 - 1, -(2**31 - 1), 0, 7], np.int32)
    dy = (np.where(np.indices(shape).sum(axis=0) % 3, 127, -127) * 2.0**-20).astype(np.float32)
    _check_train(x, gamma, beta, -7, dy)
    _check_train(x, gamma, np.zeros(4, np.int32), -7, x.copy())        # dy correlated with x


def test_training_dgamma_common_shift(rng):
    # dy proportional to x over 2**17 rows: B passes 2**31, dgamma shares one shift h > 0.
    rows = 2**17
    q = rng.integers(-127, 128, (rows, 2))
    x = (q * 2.0**-7).astype(np.float32)
    gamma = np.array([100, -3], np.int8)
    _, grad = _check_train(x, gamma, np.zeros(2, np.int32), -7, x.copy())
    assert grad["h"] > 0


def test_training_epsilon_extremes(rng):
    gamma, beta, e_g = _params(rng, 3)
    x = _carrier(rng, (6, 3), -7)
    dy = _carrier(rng, (6, 3), -9)
    for eps in [1e-12, 1e-5, 0.5, 100.0]:
        _check_train(x, gamma, beta, e_g, dy, epsilon=ref.epsilon_pair(eps))
    # Tiny inputs: the epsilon term saturates at 2**60.
    x = _carrier(rng, (300, 2), -40)
    want, _ = _check_train(x, gamma[:2], beta[:2], e_g, _carrier(rng, (300, 2), -9))
    assert want["E"] == 2**60


# ------------------------------------------------ against TensorFlow's float BN

@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 3, 5), (16, 4)])
def test_gradient_against_float_batch_norm(rng, shape):
    """dx within 2**-5 of max|dx| plus one unit (the reference's float test derives
    this budget: xhat's rounding, at most sqrt(n) * 2**-9 here, dominates);
    dbeta exact; dgamma within n * max|dy| * 2**-8 plus its rounding."""
    channels = shape[-1]
    gamma, beta, e_g = _params(rng, channels)
    x = _carrier(rng, shape, -5)
    dy = _carrier(rng, shape, -12)
    out, dx, dgamma, dbeta = _train(x, gamma, beta, e_g, dy)
    qx, ex = ref.quantize(x)
    fwd = ref.batch_norm_train(qx, ex, gamma, e_g, beta, *EPSILON)
    grad = ref.batch_norm_grad_from_carrier(dy, fwd["xhat"], ex, fwd["r"], fwd["k"], gamma, e_g,
                                            details=True)

    eps = float(np.ldexp(EPSILON[0], EPSILON[1]))
    axes = list(range(len(shape) - 1))
    xf = tf.constant(x, tf.float64)
    g = tf.constant(gamma.astype(np.float64) * 2.0**e_g)
    b = tf.constant(beta.astype(np.float64) * 2.0**(e_g - ref.NORM_FRACTION_BITS))
    with tf.GradientTape() as tape:
        tape.watch([xf, g, b])
        mean, var = tf.nn.moments(xf, axes)
        y = tf.nn.batch_normalization(xf, mean, var, b, g, eps)
        loss = tf.reduce_sum(y * tf.constant(dy, tf.float64))
    dx_f, dg_f, db_f = (t.numpy() for t in tape.gradient(loss, [xf, g, b]))

    y_ulp = 2.0 ** int(out["y_exponent"])
    assert np.abs(out["y"].numpy() - y.numpy()).max() <= y_ulp + np.abs(g.numpy()).max() * 2.0**-8
    ulp = 2.0 ** grad["dx_exponent"]
    assert np.abs(dx.numpy() - dx_f).max() <= 2.0**-5 * np.abs(dx_f).max() + ulp
    np.testing.assert_array_equal(dbeta.numpy() * 2.0 ** grad["dbeta_exponent"], db_f)
    n = x.size // channels
    dgamma_value = dgamma.numpy() * 2.0 ** grad["dgamma_exponent"]
    assert np.all(np.abs(dgamma_value - dg_f)
                  <= n * np.abs(dy).max() * 2.0**-8 + 2.0 ** (grad["dgamma_exponent"] - 1))


# --------------------------------------------------------------- inference

def _infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V, rounding="nearest", seed=None, dy=None):
    """The inference op; with dy, also (dx, dgamma, dbeta) of sum(y * dy) through the tape."""
    gamma_v, beta_v, x_t = tf.Variable(gamma), tf.Variable(beta), tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        out = layer_ops.batch_norm(x_t, gamma_v, beta_v, e_g, epsilon=EPSILON, training=False,
                                   moving_mean=tf.constant(np.asarray(m_M, np.int32)),
                                   moving_mean_exponent=e_M,
                                   moving_variance=tf.constant(np.asarray(m_V, np.int32)),
                                   moving_variance_exponent=e_V, rounding=rounding, seed=seed)
        loss = tf.reduce_sum(out["y"] * (0.0 if dy is None else tf.constant(dy)))
    return out, (tape.gradient(loss, [x_t, gamma_v, beta_v]) if dy is not None else None)


def _check_infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V, rounding="nearest", op_seed=None,
                 ref_seed=None):
    """Bit-exact inference forward and its frozen backward (dx only: gamma and beta get none)."""
    dy = _carrier(np.random.default_rng(x.size), x.shape, -9)
    out, (dx, dgamma, dbeta) = _infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V, rounding, op_seed, dy)
    assert set(out) == {"y", "y_exponent"}
    qx, ex = ref.quantize(x)
    info = ref.batch_norm_inference(qx, ex, gamma, e_g, beta, m_M, e_M, m_V, e_V, *EPSILON,
                                    rounding=rounding, seed=ref_seed, details=True)
    np.testing.assert_array_equal(out["y"].numpy(), ref.dequantize(info["y_q"], info["y_exponent"]))
    assert int(out["y_exponent"]) == info["y_exponent"]
    err, e_err = ref.quantize(dy)
    dx_q, dx_e = ref.batch_norm_frozen_grad(err, e_err, info["j"], ex, info["r"], info["k"], gamma, e_g)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))
    assert dgamma is None and dbeta is None


def test_frozen_gradient_against_float(rng):
    """The frozen backward is dy * gamma / sqrt(moving_variance + eps), within the quantisation error."""
    channels = 6
    gamma, beta, e_g = _params(rng, channels)
    x = _carrier(rng, (40, channels), -5)
    dy = _carrier(rng, (40, channels), -9)
    m_M, e_M = rng.integers(-2**29, 2**29, channels), -34
    m_V, e_V = rng.integers(2**28, 2**30, channels), -38
    _, (dx, _, _) = _infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V, dy=dy)
    sigma = np.sqrt(np.asarray(m_V, np.float64) * 2.0**e_V + 1e-3)
    want = dy * (gamma * 2.0**e_g) / sigma
    # dy's quantisation is exact (a carrier); rho's 16-bit rounding and dx's int8 rounding remain.
    scale = np.abs(want).max()
    np.testing.assert_allclose(dx.numpy(), want, atol=scale * (2.0**-7 + 2.0**-15) * 1.01)
    assert scale > 0 and np.abs(dx.numpy()).max() > 0


def test_frozen_gradient_bad_inputs():
    raw = layer_ops._loader.load()
    dy = np.ones((2, 3), np.float32)
    good = dict(count=np.ones(3, np.int64), inv_sqrt=np.ones(3, np.int64), inv_shift=np.zeros(3, np.int32))
    for key, value, message in [("count", [1, 3, 1], "channel 1 has count 3"),
                                ("count", [0, 1, 1], "channel 0 has count 0"),
                                ("count", [1, 1, 2**24], "channel 2 has count 16777216"),
                                ("inv_sqrt", [1, -1, 1], "inv_sqrt -1"),
                                ("inv_shift", [0, 0, 31], "inv_shift 31")]:
        args = {**good, key: np.asarray(value, good[key].dtype)}
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            raw.int_ops_batch_norm_frozen_grad(dy, 0, args["count"], args["inv_sqrt"], args["inv_shift"],
                                               np.ones(3, np.int8), 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="per-channel inputs must have shape \\[3\\]"):
        raw.int_ops_batch_norm_frozen_grad(dy, 0, np.ones(2, np.int64), good["inv_sqrt"], good["inv_shift"],
                                           np.ones(3, np.int8), 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_bit_exact(rng, shape):
    channels = shape[-1]
    gamma, beta, e_g = _params(rng, channels)
    x = _carrier(rng, shape, -5)
    # Keras' initial statistics (0 at 0, 1.0 = 2**29 at -29).
    _check_infer(x, gamma, beta, e_g, np.zeros(channels), 0, np.full(channels, 2**29), -29)
    # Statistics of another batch through the moving averages.
    other = ref.batch_norm_train(rng.integers(-127, 128, (20, channels)), -6, gamma, e_g, beta, *EPSILON)
    p = round(0.99 * 2**16)
    m_M, e_M = ref.moving_average(np.zeros(channels), 0, other["batch_mean"],
                                  other["batch_mean_exponent"], p)
    m_V, e_V = ref.moving_average(np.full(channels, 2**29), -29, other["batch_variance"],
                                  other["batch_variance_exponent"], p)
    _check_infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V)
    # Random 30-bit statistics at various exponents (j clipped at both ends; S1
    # saturated in the last), with W large enough that |xhat| stays below 2**31
    # (test_inference_xhat_saturates has the other case).
    for e_M, e_V in [(-30, -30), (-8, -30), (-60, 0), (10, -10)]:
        m_M = rng.integers(-2**30, 2**30, channels) >> int(rng.integers(0, 30))
        m_V = rng.integers(0, 2**30, channels)
        _check_infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V)


def test_inference_xhat_saturates(rng):
    """A moving mean far from the input and a tiny variance: xhat reaches
    +-(2**31 - 1), where section 8 saturates it (after the 128-bit d * r)."""
    gamma, beta, e_g = _params(rng, 3)
    x = _carrier(rng, (2, 3), -5)
    m_M, e_M = [4923979, 7785957, 7689486], -3
    m_V, e_V = [596588492, 473526717, 273501696], -40
    qx, ex = ref.quantize(x)
    info = ref.batch_norm_inference(qx, ex, gamma, e_g, beta, m_M, e_M, m_V, e_V, *EPSILON,
                                    details=True)
    assert max(abs(int(v)) for v in info["xhat"].ravel()) == 2**31 - 1
    _check_infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V)
    # S1 saturated (|d| near 2**32, d * r past 2**63) and a moderate variance.
    m_M, e_M, m_V, e_V = [2**30 - 1, -(2**30 - 1), 5], 10, [2**29, 2**20, 2**29], -29
    info = ref.batch_norm_inference(qx, ex, gamma, e_g, beta, m_M, e_M, m_V, e_V, *EPSILON,
                                    details=True)
    assert info["S1"][:2] == [2**31 - 1, -(2**31 - 1)]
    assert max(abs(int(v)) for v in info["xhat"].ravel()) == 2**31 - 1
    _check_infer(x, gamma, beta, e_g, m_M, e_M, m_V, e_V)


@pytest.mark.parametrize("mode", MODES)
def test_inference_rounding_modes(rng, mode):
    gamma, beta, e_g = _params(rng, 5)
    op_seed, ref_seed = _seeds(mode)
    x = _carrier(rng, (4, 3, 5), -7)
    m_M = rng.integers(-2**29, 2**29, 5)
    m_V = rng.integers(2**28, 2**30, 5)
    _check_infer(x, gamma, beta, e_g, m_M, -30, m_V, -31, mode, op_seed, ref_seed)


def test_inference_saturation(rng):
    # A moving mean over 2**23 times the input's unit: S1 saturates, |d| reaches 2**32.
    gamma, beta, e_g = _params(rng, 2)
    x = _carrier(rng, (3, 2), -40)
    _check_infer(x, gamma, beta, e_g, [2**30 - 1, -(2**30 - 1)], 0, [2**29, 1], 10)
    # V and E both saturated (W = 2**61).
    _check_infer(_carrier(rng, (3, 2), -60), gamma, beta, e_g, [1, 0], -60, [2**30 - 1, 2**30 - 1], 40)


# ----------------------------------------------------------- moving average

def test_moving_average_bit_exact(rng):
    p = round(0.99 * 2**16)
    cases = [([0, 0, 0], 0, [2**29, -5, 0], -30, p),
             ([2**29] * 3, -29, [3, 2**16, 0], -16, p),
             ([2**29, -2**29], 0, [2**29, 1], -70, 2**15),
             ([3, -5], 7, [1, 1], -100, 0),
             ([3, -5], 7, [1, 1], -100, 2**16),
             ([0], 5, [0], 3, 100),
             ([2**29, -7], -29, [0, 0], 40, p),             # all-zero batch: e = e_m
             ([0, 0], 40, [2**29, -7], -29, p),
             ([2**31 - 1, -(2**31 - 1)], 3, [2**30, -2**30], 3, 1)]
    for _ in range(30):
        c = int(rng.integers(1, 6))
        cases.append((rng.integers(-2**30, 2**30, c) >> int(rng.integers(0, 31)), int(rng.integers(-60, 10)),
                      rng.integers(-2**30, 2**30, c) >> int(rng.integers(0, 31)), int(rng.integers(-60, 10)),
                      int(rng.integers(0, 2**16 + 1))))
    for m, e_m, b, e_b, p in cases:
        new, new_e = layer_ops.moving_average(tf.constant(np.asarray(m, np.int32)), e_m,
                                              tf.constant(np.asarray(b, np.int32)), e_b, p)
        want, want_e = ref.moving_average(m, e_m, b, e_b, p)
        assert new.dtype == tf.int32
        np.testing.assert_array_equal(new.numpy(), want)
        assert int(new_e) == want_e, (m, e_m, b, e_b, p)


def test_moving_average_of_batch_statistics(rng):
    gamma, beta, e_g = _params(rng, 4)
    x = _carrier(rng, (10, 4), -6)
    out = _train(x, gamma, beta, e_g, np.zeros((10, 4), np.float32))[0]
    m, e = tf.zeros([4], tf.int32), 0
    for _ in range(3):
        m, e = layer_ops.moving_average(m, e, out["batch_mean"], out["batch_mean_exponent"], 58982)
    want, want_e = np.zeros(4, np.int32), 0
    for _ in range(3):
        want, want_e = ref.moving_average(want, want_e, out["batch_mean"].numpy(),
                                          int(out["batch_mean_exponent"]), 58982)
    np.testing.assert_array_equal(m.numpy(), want)
    assert int(e) == want_e


def test_epsilon_pair_matches_reference():
    from tf_int_ops.layer_ops import normalization
    for eps in [1e-3, 1e-5, 1e-8, 0.1, 0.5 + 2**-16, 0.5 + 3 * 2**-16, 1 - 2**-20, 1.0, 3.7]:
        assert tuple(normalization.epsilon_pair(eps)) == ref.epsilon_pair(eps), eps


# -------------------------------------------------------------- bad inputs

BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


def test_bad_inputs(rng):
    gamma, beta, e_g = _params(rng, 3)
    g, b = tf.Variable(gamma), tf.Variable(beta)
    x = _carrier(rng, (4, 3), -7)
    with pytest.raises(BAD, match=r"(?i)rank|dimension|shape"):
        layer_ops.batch_norm(tf.constant(x[0]), g, b, e_g, epsilon=EPSILON)
    with pytest.raises(BAD, match=r"(?i)int8|dtype|type"):
        layer_ops.batch_norm(tf.constant(x), tf.Variable(gamma.astype(np.float32)), b, e_g,
                             epsilon=EPSILON)
    with pytest.raises(BAD, match=r"(?i)shape"):
        layer_ops.batch_norm(tf.constant(x), tf.Variable(np.zeros(4, np.int8)), b, e_g,
                             epsilon=EPSILON)
    with pytest.raises(BAD, match=r"(?i)shape"):
        layer_ops.batch_norm(tf.constant(x), g, tf.Variable(np.zeros(4, np.int32)), e_g,
                             epsilon=EPSILON)
    x_nan = x.copy()
    x_nan[1, 2] = np.nan
    with pytest.raises(BAD, match="NaN"):
        layer_ops.batch_norm(tf.constant(x_nan), g, b, e_g, epsilon=EPSILON)
    with pytest.raises(BAD, match=r"(?i)moving|mean|variance"):
        layer_ops.batch_norm(tf.constant(x), g, b, e_g, epsilon=EPSILON, training=False)
    with pytest.raises(BAD, match=r"(?i)seed"):
        layer_ops.batch_norm(tf.constant(x), g, b, e_g, epsilon=EPSILON, rounding="stochastic")


# ---------------------------------------------------------------- randomized sweep

def test_random_cases_bit_exact():
    """Random shapes (1..300 rows, 1..9 channels), input and gamma exponents,
    value ranges (some channels constant), epsilons and roundings: training
    forward, statistics, gradients and inference equal the reference."""
    rng = np.random.default_rng(20261201)
    for case in range(40):
        rows, channels = int(rng.integers(1, 301)), int(rng.integers(1, 10))
        shape = (rows, channels) if case % 2 else (1, rows, 1, channels)
        spread = rng.integers(0, 128, channels)  # 0: a constant channel
        centre = rng.integers(-127, 128, channels)
        q = np.clip(centre + rng.integers(-1, 2, shape) * rng.integers(0, 128, shape) * (spread > 0), -127, 127)
        x = (q * 2.0 ** int(rng.integers(-40, 20))).astype(np.float32)
        dy = (rng.integers(-127, 128, shape) * 2.0 ** int(rng.integers(-30, 5))).astype(np.float32)
        gamma = rng.integers(-127, 128, channels).astype(np.int8)
        beta = rng.integers(-2**20, 2**20, channels).astype(np.int32)
        e_g = int(rng.integers(-10, 0))
        epsilon = ref.epsilon_pair(float(10.0 ** rng.uniform(-8, 1)))
        mode = MODES[case % 4]
        op_seed, ref_seed = _seeds(mode)
        want, _ = _check_train(x, gamma, beta, e_g, dy, mode, op_seed, ref_seed, epsilon)
        # Inference with the batch statistics as the moving ones.
        out = layer_ops.batch_norm(
            tf.constant(x), tf.Variable(gamma), tf.Variable(beta), e_g, epsilon=epsilon, training=False,
            moving_mean=want["batch_mean"], moving_mean_exponent=want["batch_mean_exponent"],
            moving_variance=want["batch_variance"], moving_variance_exponent=want["batch_variance_exponent"],
            rounding=mode, seed=op_seed)
        qx, ex = ref.quantize(x)
        y_q, y_e = ref.batch_norm_inference(qx, ex, gamma, e_g, beta, want["batch_mean"], want["batch_mean_exponent"],
                                            want["batch_variance"], want["batch_variance_exponent"], *epsilon,
                                            rounding=mode, seed=ref_seed)
        np.testing.assert_array_equal(out["y"].numpy(), ref.dequantize(y_q, y_e), err_msg=f"case {case}")

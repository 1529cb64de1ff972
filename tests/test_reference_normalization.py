"""The NumPy reference of integer batch normalization (docs/algorithms.md section 8)
checked against float64 batch normalization, and worked examples by hand.

NumPy only: independent of the C++ ops (tests/test_layer_ops_normalization.py
compares the ops with this reference bit for bit).
"""

import math
from fractions import Fraction

import numpy as np
import pytest

import reference as ref

F = ref.NORM_FRACTION_BITS
EPS = 1e-3
SHAPES = [(1, 5), (7, 3), (2, 5, 5, 4), (64, 10), (3, 1, 1, 2)]


def _gamma_one(channels):
    """gamma = 1.0 quantized as a weight (section 1): 64 at exponent -6, exactly."""
    g, e = ref.quantize(np.ones(channels, np.float32))
    assert e == -6 and np.all(g == 64)
    return g, e


def _float_bn(x, gamma, beta, eps, mean=None, var=None):
    """Float64 batch norm over all axes but the last; returns (y, xhat, sigma)."""
    axes = tuple(range(x.ndim - 1))
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)          # biased, as Keras
    sigma = np.sqrt(var + eps)
    xhat = (x - mean) / sigma
    return gamma * xhat + beta, xhat, sigma


def _float_bn_grad(dy, xhat, sigma, gamma):
    """Analytic gradient of y = gamma * (x - mean) / sqrt(var + eps) + beta."""
    axes = tuple(range(dy.ndim - 1))
    dx = gamma / sigma * (dy - dy.mean(axis=axes) - xhat * (dy * xhat).mean(axis=axes))
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def _eps_value(m_eps, e_eps):
    return math.ldexp(m_eps, e_eps)


def _w_float(n, var, eps, e_x):
    """W = n**2 (var + eps) in units of 2**(2 e_x), in float64."""
    return n * n * (var + eps) * 2.0 ** (-2 * e_x)


def _sigma_error(w_float, roundings=1):
    """Relative error of the integer 1/sigma: the inverse square root (2**-28),
    and W's roundings (half a unit each: E's, and V's at inference), which
    move sqrt(W) by at most roundings / (4 W)."""
    return 2.0**-28 + roundings * 0.25 / w_float


def _forward_bound(y_exponent, gamma_value, xhat_float, rel_sigma, extra=0.0):
    """|y - y_float| for the training/inference forward, from the spec's error budget:
    the final rounding to int8 (< 1 unit of the output: half a unit, or a clip
    from [127.5, 128)), xhat's rounding (half a unit of 2**-F), 1/sigma's
    relative error (times |xhat|) and any error of the mean (extra), all times |gamma|."""
    xhat_error = 2.0 ** -(F + 1) + np.abs(xhat_float) * rel_sigma * 1.01 + extra
    return (2.0**y_exponent + np.abs(gamma_value) * xhat_error) * (1 + 1e-9)


# ------------------------------------------------------------ hand examples

def test_worked_example_by_hand():
    # q = [1, 3] in one channel, e_x = 0, eps = 2**-30 (vanishes: t = -44).
    m_eps, e_eps = 2**14, -44
    out = ref.batch_norm_train(np.array([[1], [3]]), 0, [64], -6, [0], m_eps, e_eps)
    assert out["S1"] == [4] and out["S2"] == [10] and out["V"] == [4] and out["E"] == 0
    # W = 4: L = 3, k = 29, W * 4**29 = 2**60, s = 2**30, r = 2**31.
    assert list(out["r"]) == [2**31] and list(out["k"]) == [29]
    # d = [-2, 2], xhat = round_shift(+-2**32, 61 - 29 - 8 = 24) = +-256 (= +-1.0).
    assert out["xhat"].ravel().tolist() == [-256, 256]
    # acc = 64 * +-256 at exponent -14 (bit length 15): y = +-64 at -6, i.e. +-1.0.
    assert out["y_q"].ravel().tolist() == [-64, 64] and out["y_exponent"] == -6
    # mean 2.0 -> 2 * 2**23 at -23; variance 1.0 -> 2**16 at -16.
    assert list(out["batch_mean"]) == [2**24] and out["batch_mean_exponent"] == -23
    assert list(out["batch_variance"]) == [2**16] and out["batch_variance_exponent"] == -16


def test_batch_statistics_round_half_away_from_zero():
    # S1 = -1 over n = 3: -2**23 / 3 = -2796202.67 -> -2796203.
    out = ref.batch_norm_train(np.array([[0], [0], [-1]]), 0, [1], 0, [0], 2**14, -30)
    assert list(out["batch_mean"]) == [-2796203]
    # V = 3 * 1 - 1 = 2: 2 * 2**16 / 9 = 14563.56 -> 14564.
    assert list(out["batch_variance"]) == [14564]


def test_epsilon_pair():
    assert ref.epsilon_pair(1e-3) == (16777, -24)                 # 0.512 * 2**-9
    assert ref.epsilon_pair(1.0) == (2**14, -14)
    assert ref.epsilon_pair(0.75) == (24576, -15)
    # f * 2**15 rounds up to 2**15: renormalised.
    assert ref.epsilon_pair(1 - 2**-20) == (2**14, -14)
    # exactly half: Python's round, to even.
    assert ref.epsilon_pair(0.5 + 2**-16) == (16384, -15)       # 16384.5 -> 16384
    assert ref.epsilon_pair(0.5 + 3 * 2**-16) == (16386, -15)   # 16385.5 -> 16386
    for eps in [1e-3, 1e-5, 1e-8, 0.1, 3.7, 1e-30]:
        m, e = ref.epsilon_pair(eps)
        assert 2**14 <= m < 2**15
        assert abs(math.ldexp(m, e) / eps - 1) <= 2.0**-15
    for bad in [0.0, -1e-3, float("nan"), float("inf")]:
        with pytest.raises(ValueError):
            ref.epsilon_pair(bad)


def test_epsilon_term():
    exact = lambda m, e, n, ex: Fraction(m) * n * n * Fraction(2) ** (e - 2 * ex)  # noqa: E731
    m, e = ref.epsilon_pair(1e-3)
    for n in [1, 3, 64, 1000, 2**23]:
        for e_x in [-40, -20, -12, -7, 0, 5, 30]:
            got = ref.norm_epsilon_term(m, e, n, e_x)
            want = exact(m, e, n, e_x)
            if want >= 2**60:
                assert got == 2**60                   # saturated (t >= 0 only)
            else:
                assert abs(got - want) <= Fraction(1, 2)
            assert 0 <= got <= 2**60
    # -t >= 64: 0 even though the value is not below half a unit... never is:
    assert ref.norm_epsilon_term(2**15 - 1, -64, 2**23, 0) == 0
    assert ref.norm_epsilon_term(2**15 - 1, -60, 2**23, 0) == (((2**15 - 1) * 2**46) + 2**59) >> 60
    assert ref.norm_epsilon_term(2**14, 0, 1, 0) == 2**14
    assert ref.norm_epsilon_term(2**14, 1000, 1, 0) == 2**60


# ------------------------------------------------------- inverse square root

def _check_inverse_sqrt(W):
    r, k = ref.norm_inverse_sqrt(W)
    # The spec's "r < 2**31.5" is off by the floor of isqrt: s >= isqrt(2**59)
    # = floor(2**29.5), so r <= 2**61 // 759250124 = 3037000503 = 2**31.5 + 3.03.
    # r > 2**31 - 1 happens (W = 1: r = 2**31): r needs int64 (or uint32).
    assert 0 <= k <= 30 and 0 < r <= 3037000503
    if W < 2**61:
        assert (W << 2 * k).bit_length() in (60, 61)
    # |r * 2**(k - 61) * sqrt(W) - 1| < 2**-28, exactly in integers:
    # (2**28 - 1)**2 * 2**122 < r**2 * W * 4**k * 2**56 < (2**28 + 1)**2 * 2**122.
    x = r * r * W << (2 * k + 56)
    assert (2**28 - 1) ** 2 << 122 < x < (2**28 + 1) ** 2 << 122, W


def test_inverse_sqrt_error_bound():
    rng = np.random.default_rng(7)
    edges = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 2**60, 2**60 - 1, 2**60 + 1, 2**61 - 1, 2**61,
             3 * 2**59, 10**18, 4**30, 4**30 - 1, 2**59 + 12345]
    for b in range(1, 62):
        edges += [2**(b - 1), 2**b - 1, (2**(b - 1) + 2**b) // 2]
    randoms = []
    for _ in range(4000):
        bits = int(rng.integers(1, 62))
        randoms.append(int(rng.integers(2**(bits - 1), 2**bits, dtype=np.uint64)) if bits < 64 else 1)
    for W in edges + randoms:
        _check_inverse_sqrt(W)
    assert ref.norm_inverse_sqrt(0) == (0, 0)
    with pytest.raises(ValueError):
        ref.norm_inverse_sqrt(-1)


# ----------------------------------------------------------- forward (train)

@pytest.mark.parametrize("shape", SHAPES)
def test_forward_against_float_batch_norm(shape):
    rng = np.random.default_rng(sum(shape))
    channels = shape[-1]
    q = rng.integers(-127, 128, shape)
    e_x = -5
    gamma, e_g = _gamma_one(channels)
    beta = np.zeros(channels, np.int64)
    m_eps, e_eps = ref.epsilon_pair(EPS)
    out = ref.batch_norm_train(q, e_x, gamma, e_g, beta, m_eps, e_eps)
    x = q * 2.0**e_x
    eps = _eps_value(m_eps, e_eps)
    y_float, xhat_float, _ = _float_bn(x, 1.0, 0.0, eps)
    axes = tuple(range(q.ndim - 1))
    rel_sigma = _sigma_error(_w_float(q.size // channels, x.var(axis=axes), eps, e_x))
    y = out["y_q"] * 2.0 ** out["y_exponent"]
    assert np.all(np.abs(out["y_q"]) <= 127)
    assert np.all(np.abs(y - y_float) <= _forward_bound(out["y_exponent"], 1.0, xhat_float, rel_sigma))
    # xhat itself: half a unit of 2**-F plus 1/sigma's error.
    xhat = out["xhat"] * 2.0**-F
    assert out["xhat"].dtype == np.int32 and out["xhat"].shape == q.shape
    assert np.all(np.abs(xhat - xhat_float) <= 2.0 ** -(F + 1) + np.abs(xhat_float) * rel_sigma * 1.01)
    # batch statistics: half a unit of their exponents.
    mean = out["batch_mean"] * 2.0 ** out["batch_mean_exponent"]
    var = out["batch_variance"] * 2.0 ** out["batch_variance_exponent"]
    assert np.all(np.abs(mean - x.mean(axis=axes)) <= 2.0 ** (out["batch_mean_exponent"] - 1))
    assert np.all(np.abs(var - x.var(axis=axes)) <= 2.0 ** (out["batch_variance_exponent"] - 1))
    assert out["batch_mean"].dtype == np.int32 and out["batch_variance"].dtype == np.int32


@pytest.mark.parametrize("shape", [(7, 3), (2, 5, 5, 4), (64, 10)])
def test_forward_random_gamma_beta(shape):
    rng = np.random.default_rng(11 + sum(shape))
    channels = shape[-1]
    q = rng.integers(-127, 128, shape)
    e_x, e_g = -9, -7
    gamma = rng.integers(-127, 128, channels)
    beta = rng.integers(-300, 301, channels)
    m_eps, e_eps = ref.epsilon_pair(1e-5)
    out = ref.batch_norm_train(q, e_x, gamma, e_g, beta, m_eps, e_eps)
    g, b = gamma * 2.0**e_g, beta * 2.0**(e_g - ref.NORM_FRACTION_BITS)
    x, eps = q * 2.0**e_x, _eps_value(m_eps, e_eps)
    y_float, xhat_float, _ = _float_bn(x, g, b, eps)
    axes = tuple(range(q.ndim - 1))
    rel_sigma = _sigma_error(_w_float(q.size // channels, x.var(axis=axes), eps, e_x))
    y = out["y_q"] * 2.0 ** out["y_exponent"]
    assert np.all(np.abs(y - y_float) <= _forward_bound(out["y_exponent"], g, xhat_float, rel_sigma))


def test_forward_constant_channel_and_batch_one():
    m_eps, e_eps = ref.epsilon_pair(EPS)
    gamma, e_g = _gamma_one(3)
    beta = np.array([0, 5, -3])
    # Channel 0 constant, 1 and 2 not.
    q = np.array([[40, 1, -127], [40, 2, 127], [40, 3, 0], [40, 4, 9]])
    out = ref.batch_norm_train(q, -7, gamma, e_g, beta, m_eps, e_eps)
    assert np.all(out["xhat"][:, 0] == 0) and out["V"][0] == 0
    y = out["y_q"] * 2.0 ** out["y_exponent"]
    assert np.all(y[:, 0] == 0.0)
    # Batch 1: every channel is constant, y = beta (exactly: beta << F is exact).
    out = ref.batch_norm_train(np.array([[3, -100, 127]]), -7, gamma, e_g, beta, m_eps, e_eps)
    assert np.all(out["xhat"] == 0)
    np.testing.assert_array_equal(out["y_q"] * 2.0 ** out["y_exponent"], [beta * 2.0**(e_g - ref.NORM_FRACTION_BITS)])
    assert list(out["batch_variance"]) == [0, 0, 0]
    # All zero and beta 0: y = 0 at exponent 0.
    out = ref.batch_norm_train(np.zeros((4, 2)), 0, [64, 64], -6, [0, 0], m_eps, e_eps)
    assert np.all(out["y_q"] == 0) and out["y_exponent"] == 0


def test_forward_vanishing_epsilon_constant_channel():
    # Input exponent so large that E rounds to 0: W = 0 for a constant channel, r = k = 0.
    m_eps, e_eps = ref.epsilon_pair(EPS)
    out = ref.batch_norm_train(np.full((5, 1), 7), 40, [64], -6, [2], m_eps, e_eps)
    assert out["E"] == 0 and out["W"] == [0] and list(out["r"]) == [0] and list(out["k"]) == [0]
    assert np.all(out["xhat"] == 0)
    np.testing.assert_array_equal(out["y_q"] * 2.0 ** out["y_exponent"], np.full((5, 1), 2 * 2.0**(-6 - ref.NORM_FRACTION_BITS)))


def test_forward_extreme_values_stay_in_bounds():
    m_eps, e_eps = ref.epsilon_pair(EPS)
    gamma = np.array([127, -127, 127])
    beta = np.array([2**31 - 1, -(2**31 - 1), 0])
    rows = 2**12
    q = np.where(np.arange(rows * 3).reshape(rows, 3) % 2, 127, -127)
    q[0, 2] = 127                                                  # one outlier of n
    out = ref.batch_norm_train(q, -7, gamma, -7, beta, m_eps, e_eps)
    assert np.all(np.abs(out["xhat"].astype(np.int64)) < 2**20)
    assert np.all(np.abs(out["y_q"]) <= 127)
    # With small e_x the epsilon term saturates at 2**60; V + E stays < 2**61.
    out = ref.batch_norm_train(q, -60, gamma, -7, beta, m_eps, e_eps)
    assert out["E"] == 2**60 and max(out["W"]) < 2**61


@pytest.mark.parametrize("mode", ["nearest", "pseudo_stochastic", "stochastic", "truncate"])
def test_forward_rounding_modes(mode):
    rng = np.random.default_rng(5)
    q = rng.integers(-127, 128, (16, 4))
    gamma, e_g = rng.integers(-127, 128, 4), -7
    beta = rng.integers(-1000, 1000, 4)
    m_eps, e_eps = ref.epsilon_pair(EPS)
    out = ref.batch_norm_train(q, -7, gamma, e_g, beta, m_eps, e_eps, mode, seed=(3, 9))
    near = ref.batch_norm_train(q, -7, gamma, e_g, beta, m_eps, e_eps, "nearest")
    assert out["y_exponent"] == near["y_exponent"]
    # Every mode is within one unit of nearest (clip aside).
    assert np.abs(out["y_q"] - near["y_q"]).max() <= 1
    if mode == "stochastic":
        again = ref.batch_norm_train(q, -7, gamma, e_g, beta, m_eps, e_eps, mode, seed=(3, 9))
        np.testing.assert_array_equal(out["y_q"], again["y_q"])
        with pytest.raises(ValueError):
            ref.batch_norm_train(q, -7, gamma, e_g, beta, m_eps, e_eps, mode)


def test_forward_rejects_bad_shapes():
    with pytest.raises(ValueError):
        ref.batch_norm_train(np.zeros(5), 0, [1], 0, [0], 2**14, -20)
    with pytest.raises(ValueError):
        ref.batch_norm_train(np.zeros((2, 3)), 0, [1, 1, 1, 1], 0, [0, 0, 0, 0], 2**14, -20)


# ----------------------------------------------------------------- backward

@pytest.mark.parametrize("shape", SHAPES + [(16, 3)])
@pytest.mark.parametrize("unit_gamma", [True, False])
def test_backward_against_float_gradient(shape, unit_gamma):
    """dx, dgamma, dbeta against the analytic float64 gradient.

    Error budget of dx (bracket in units u = 2**(e_err - F)): a's rounding
    (u/2), the rounding of xhat * b (u/2), xhat's error eps_x (2**-(F+1)
    plus the inverse sqrt) entering the xhat * mean(dy xhat) term directly
    (eps_x * max|dy|, as |mean(dy xhat)| <= max|dy|) and through b
    (max|xhat| * (eps_x * max|dy| + u/2)); then the multiplier rho
    (relative 2**-16) and the final rounding (< 1 unit of dx's exponent).
    """
    rng = np.random.default_rng(3 * sum(shape) + unit_gamma)
    channels = shape[-1]
    q = rng.integers(-127, 128, shape)
    e_x = -6
    if unit_gamma:
        gamma, e_g = _gamma_one(channels)
    else:
        gamma, e_g = rng.integers(-127, 128, channels), -7
    beta = rng.integers(-50, 50, channels)
    m_eps, e_eps = ref.epsilon_pair(EPS)
    eps = _eps_value(m_eps, e_eps)
    fwd = ref.batch_norm_train(q, e_x, gamma, e_g, beta, m_eps, e_eps)

    e_err = -11
    err = rng.integers(-127, 128, shape)
    err.flat[0] = 127                                   # the carrier quantizes exactly
    dy = (err * 2.0**e_err).astype(np.float32)
    got = ref.batch_norm_grad_from_carrier(dy, fwd["xhat"], e_x, fwd["r"], fwd["k"], gamma, e_g,
                                           details=True)
    assert got["dbeta_exponent"] == e_err
    direct = ref.batch_norm_grad(err, e_err, fwd["xhat"], e_x, fwd["r"], fwd["k"], gamma, e_g)
    np.testing.assert_array_equal(direct[0], got["dx_q"])
    assert direct[1] == got["dx_exponent"]

    g = gamma * 2.0**e_g
    _, xhat_f, sigma = _float_bn(q * 2.0**e_x, g, 0.0, eps)
    dy64 = dy.astype(np.float64)
    dx_f, dgamma_f, dbeta_f = _float_bn_grad(dy64, xhat_f, sigma, g)

    axes = tuple(range(q.ndim - 1))
    n = q.size // channels
    u = 2.0 ** (e_err - F)
    max_dy = np.abs(dy64).max(axis=axes)
    max_xhat = np.abs(xhat_f).max(axis=axes)
    rel_sigma = _sigma_error(_w_float(n, (q * 2.0**e_x).var(axis=axes), eps, e_x)) * 1.01
    eps_x = 2.0 ** -(F + 1) + max_xhat * rel_sigma
    bracket_err = u + eps_x * max_dy + (max_xhat + eps_x) * (eps_x * max_dy + u / 2)
    bracket = dy64 - dy64.mean(axis=axes) - xhat_f * (dy64 * xhat_f).mean(axis=axes)
    bound = (np.abs(g) / sigma * (bracket_err + np.abs(bracket) * (2.0**-16 + rel_sigma))
             + 2.0 ** got["dx_exponent"]) * (1 + 1e-9)
    dx = got["dx_q"] * 2.0 ** got["dx_exponent"]
    assert np.all(np.abs(got["dx_q"]) <= 127)
    assert np.all(np.abs(dx - dx_f) <= bound)
    # And the coarser check: within 2**-5 of max|dx| (n <= 64 here, so the
    # max|xhat| * eps_x term, at most sqrt(n) * 2**-9, stays below 2**-6).
    assert np.abs(dx - dx_f).max() <= 2.0**-5 * np.abs(dx_f).max() + 2.0 ** got["dx_exponent"]

    # dbeta = sum(dy) exactly; dgamma within xhat's error and its own rounding.
    assert got["dbeta"].dtype == np.int32 and got["dgamma"].dtype == np.int32
    np.testing.assert_array_equal(got["dbeta"] * 2.0**e_err, dbeta_f)
    dgamma = got["dgamma"] * 2.0 ** got["dgamma_exponent"]
    dgamma_bound = n * max_dy * eps_x + 2.0 ** (got["dgamma_exponent"] - 1)
    assert np.all(np.abs(dgamma - dgamma_f) <= dgamma_bound * (1 + 1e-9))


def test_backward_zero_error_and_constant_channel():
    m_eps, e_eps = ref.epsilon_pair(EPS)
    q = np.array([[5, 1], [5, -3], [5, 100]])
    fwd = ref.batch_norm_train(q, -7, [64, 64], -6, [0, 0], m_eps, e_eps)
    dx_q, dx_e, dgamma, dbeta = ref.batch_norm_grad_from_carrier(
        np.zeros((3, 2), np.float32), fwd["xhat"], -7, fwd["r"], fwd["k"], [64, 64], -6)
    assert np.all(dx_q == 0) and dx_e == 0 and np.all(dgamma == 0) and np.all(dbeta == 0)
    # Constant channel 0: xhat = 0, so the gradient reduces to gamma / sigma * (dy - mean dy).
    err = np.array([[3, 1], [-6, 2], [0, -5]])
    got = ref.batch_norm_grad(err, -4, fwd["xhat"], -7, fwd["r"], fwd["k"], [64, 64], -6, details=True)
    assert got["B"][0] == 0 and got["dgamma"][0] == 0 and got["dbeta"][0] == -3
    # W = 0 (vanishing epsilon, constant channel): r = 0, the channel's dx is 0.
    fwd = ref.batch_norm_train(np.array([[7, 1], [7, 2]]), 40, [64, 64], -6, [0, 0], m_eps, e_eps)
    assert fwd["r"][0] == 0
    dx_q, _, _, _ = ref.batch_norm_grad(np.array([[3, 1], [-6, 2]]), -4, fwd["xhat"], 40,
                                        fwd["r"], fwd["k"], [64, 64], -6)
    assert np.all(dx_q[:, 0] == 0)


def test_backward_dgamma_is_shifted_to_int32():
    # Large B: n = 2**14 rows of err = 127 against xhat near +-2**19 would not fit int32.
    rows = 2**14
    xhat = np.full((rows, 2), 2**19 - 1)
    xhat[:, 1] = 3
    err = np.full((rows, 2), 127)
    got = ref.batch_norm_grad(err, 0, xhat, 0, [2**30, 2**30], [0, 0], [1, 1], 0, details=True)
    B = got["B"]
    assert B[0] == 127 * (2**19 - 1) * rows and B[0].bit_length() > 31
    h = B[0].bit_length() - 31
    assert got["h"] == h
    assert got["dgamma"][0] == (B[0] + 2**(h - 1)) >> h
    assert got["dgamma"][1] == (B[1] + 2**(h - 1)) >> h        # the same shift for every channel
    assert got["dgamma_exponent"] == -F + h


# ------------------------------------------------------- requantize_channels

def test_requantize_channels_all_zero_and_one_channel():
    q, e = ref.requantize_channels(np.zeros((3, 2), np.int64), [5, -100], "nearest")
    assert e == 0 and q.shape == (3, 2) and not q.any()
    # One channel, values larger than 7 bits: section 2's requantize, every mode.
    rng = np.random.default_rng(1)
    v = rng.integers(-2**40, 2**40, (37, 1))
    for mode in ["nearest", "pseudo_stochastic", "stochastic", "truncate"]:
        q, e = ref.requantize_channels(v, [3], mode, seed=(42, 3))
        want_q, want_e = ref.requantize(v, 3, mode, seed=(42, 3))
        np.testing.assert_array_equal(q, want_q)
        assert e == want_e
    # Small values are scaled up (section 2's requantize keeps them).
    q, e = ref.requantize_channels(np.array([[3], [-1]]), [5], "nearest")
    assert q.ravel().tolist() == [96, -32] and e == 0
    q, e = ref.requantize_channels(np.array([[127], [-1]]), [5], "nearest")
    assert q.ravel().tolist() == [127, -1] and e == 5


def test_requantize_channels_per_channel_exponents():
    # Channel 0: 255 at 0 (8 bits, P = 8); channel 1: 3 at 4 (P = 6). e = 1.
    q, e = ref.requantize_channels(np.array([[255, 3], [-254, -1]]), [0, 4], "nearest")
    assert e == 1
    assert q[:, 0].tolist() == [127, -127]                      # 127.5 -> 128 clipped; -127
    assert q[:, 1].tolist() == [24, -8]                         # exact left shifts by 3
    # Exponents differing by more than 64: the finer channel rounds to 0.
    q, e = ref.requantize_channels(np.array([[100, 100], [-2**62, 1]]), [0, 70], "nearest")
    assert e == 70 and q[:, 1].tolist() == [100, 1] and q[:, 0].tolist() == [0, 0]
    q, e = ref.requantize_channels(np.array([[100, 100]]), [-70, 0], "truncate")
    assert e == 0 and q.tolist() == [[0, 100]]
    # An all-zero channel's exponent is ignored, however extreme.
    q, e = ref.requantize_channels(np.array([[0, 5]]), [10**6, 0], "nearest")
    assert e == -4 and q.tolist() == [[0, 80]]
    # Value is preserved within half a unit of the common exponent.
    rng = np.random.default_rng(2)
    v = rng.integers(-2**50, 2**50, (9, 4))
    e_c = np.array([-3, 10, 0, 7])
    q, e = ref.requantize_channels(v, e_c, "nearest")
    exact = [[Fraction(int(x)) * Fraction(2) ** int(ec) for x, ec in zip(row, e_c)] for row in v]
    for row_q, row_x in zip(q, exact):
        for a, b in zip(row_q, row_x):
            assert abs(Fraction(int(a)) * Fraction(2) ** e - b) <= Fraction(2) ** (e - 1) or abs(a) == 127


def test_requantize_channels_stochastic_uses_flat_index():
    v = np.arange(1, 25).reshape(2, 3, 4) * 1000 + 7
    e_c = [0, 2, 0, 1]
    q1, e1 = ref.requantize_channels(v, e_c, "stochastic", seed=(9, 4))
    q2, e2 = ref.requantize_channels(v, e_c, "stochastic", seed=9)
    q3, _ = ref.requantize_channels(v, e_c, "stochastic", seed=(9, 4))
    np.testing.assert_array_equal(q1, q3)
    assert e1 == e2
    words = ref.random_words(9, 4, v.size).reshape(v.shape)
    for c in range(4):
        s = e1 - e_c[c]
        want = np.clip(ref.round_shift(v[..., c], s, "stochastic", words[..., c]), -127, 127)
        np.testing.assert_array_equal(q1[..., c], want)


# ---------------------------------------------------------- moving average

def _ema_check(m, e_m, b, e_b, p):
    new, e = ref.moving_average(m, e_m, b, e_b, p)
    assert new.dtype == np.int32
    m, b = np.asarray(m, np.int64), np.asarray(b, np.int64)
    w = p / 2**16
    want = w * (m * 2.0**e_m) + (1 - w) * (b * 2.0**e_b)
    top = int(np.abs(new.astype(np.int64)).max())
    if top == 0:
        assert e == 0
        return new, e
    assert top.bit_length() in (30, 31) and top <= 2**30
    e_align = e_b if not m.any() else e_m if not b.any() else max(e_m, e_b)
    bound = 2.0**e_align + 2.0 ** (e - 1)                        # alignment + m' rounding, normalise
    assert np.all(np.abs(new * 2.0**e - want) <= bound * (1 + 1e-12))
    return new, e


def test_moving_average_against_float_ema():
    rng = np.random.default_rng(4)
    for _ in range(300):
        c = int(rng.integers(1, 6))
        m = rng.integers(-2**30, 2**30, c) >> int(rng.integers(0, 30))
        b = rng.integers(-2**30, 2**30, c) >> int(rng.integers(0, 30))
        p = int(rng.choice([0, 1, 2**15, 64881, 65535, 65536, int(rng.integers(0, 65537))]))
        _ema_check(m, int(rng.integers(-60, 10)), b, int(rng.integers(-60, 10)), p)


def test_moving_average_cases():
    p = round(0.99 * 2**16)
    # Keras' initial moving variance, 1.0 = 2**29 at -29, and a batch variance.
    new, e = _ema_check([2**29], -29, [3 * 2**16], -16, p)
    w = p / 2**16
    assert new[0] * 2.0**e == w + (1 - w) * 3                   # exact here
    # All-zero moving mean takes the batch exponent (and 1 - p of it).
    new, e = _ema_check([0, 0], 0, [2**29, -2**28], -30, p)
    # p = 2**16: the moving statistic, renormalised; p = 0: the batch statistic.
    new, e = ref.moving_average([3, -5], 7, [1, 1], -100, 2**16)
    assert new.tolist() == [3 * 2**27, -5 * 2**27] and e == 7 - 27
    new, e = ref.moving_average([3, -5], 7, [1, 1], -100, 0)
    assert new.tolist() == [0, 0] and e == 0                    # b rounds to 0 at exponent 7
    new, e = ref.moving_average([0], 0, [1], -100, 0)
    assert new.tolist() == [2**29] and e == -129
    # An all-zero batch keeps the moving exponent (its own does not count).
    new, e = _ema_check([2**29, -7], -29, [0, 0], 40, p)
    # p * 2**29 / 2**16 = p * 2**13 has 29 bits: one exact left shift to 30.
    assert new.tolist() == [p * 2**14, -2 * ((p * 7 + 2**15) >> 16)] and e == -30
    # Both zero: exponent 0.
    assert ref.moving_average([0], 5, [0], 3, 100)[1] == 0
    # Exponents more than 63 apart: the finer one is 0.
    new, e = ref.moving_average([2**29], 0, [2**29], -70, 2**15)
    assert new.tolist() == [2**29] and e == -1
    with pytest.raises(ValueError):
        ref.moving_average([1], 0, [1], 0, 65537)


# --------------------------------------------------------------- inference

def _inference_check(q, e_x, gamma, e_g, beta, m_M, e_M, m_V, e_V, eps):
    m_eps, e_eps = ref.epsilon_pair(eps)
    info = ref.batch_norm_inference(q, e_x, gamma, e_g, beta, m_M, e_M, m_V, e_V, m_eps, e_eps,
                                    details=True)
    g, b = np.asarray(gamma) * 2.0**e_g, np.asarray(beta) * 2.0**(e_g - ref.NORM_FRACTION_BITS)
    mean = np.asarray(m_M, np.float64) * 2.0**e_M
    var = np.asarray(m_V, np.float64) * 2.0**e_V
    x = np.asarray(q) * 2.0**e_x
    y_f, xhat_f, sigma = _float_bn(x, g, b, _eps_value(m_eps, e_eps), mean, var)
    y = info["y_q"] * 2.0 ** info["y_exponent"]
    # The forward budget with S1's rounding (half a unit of 2**e_x / n, an
    # error of the mean) and V's (a second rounding of W).
    n = 2.0 ** np.array(info["j"])
    rel_sigma = _sigma_error(_w_float(n, var, _eps_value(m_eps, e_eps), e_x), roundings=2)
    mean_err = 0.5 * 2.0**e_x / n / sigma
    bound = _forward_bound(info["y_exponent"], g, xhat_f, rel_sigma, mean_err)
    assert np.all(np.abs(info["y_q"]) <= 127)
    assert np.all(np.abs(y - y_f) <= bound)
    return info


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_against_float_batch_norm(shape):
    rng = np.random.default_rng(100 + sum(shape))
    channels = shape[-1]
    q = rng.integers(-127, 128, shape)
    gamma, e_g = rng.integers(-127, 128, channels), -7
    beta = rng.integers(-100, 100, channels)
    # Statistics of another batch, through the moving averages.
    other = rng.integers(-127, 128, (32, channels)) // int(rng.integers(1, 4))
    m_eps, e_eps = ref.epsilon_pair(EPS)
    stats = ref.batch_norm_train(other, -6, gamma, e_g, beta, m_eps, e_eps)
    p = round(0.9 * 2**16)
    m_M, e_M = ref.moving_average(np.zeros(channels), 0, stats["batch_mean"],
                                  stats["batch_mean_exponent"], p)
    m_V, e_V = ref.moving_average(np.full(channels, 2**29), -29, stats["batch_variance"],
                                  stats["batch_variance_exponent"], p)
    _inference_check(q, -6, gamma, e_g, beta, m_M, e_M, m_V, e_V, EPS)
    # The batch's own statistics: the same as training, up to rounding.
    stats = ref.batch_norm_train(q, -6, gamma, e_g, beta, m_eps, e_eps)
    _inference_check(q, -6, gamma, e_g, beta, stats["batch_mean"], stats["batch_mean_exponent"],
                     stats["batch_variance"], stats["batch_variance_exponent"], EPS)


def test_inference_virtual_count():
    q = np.array([[1, -1, 100], [2, 50, -100]])
    gamma, beta = [64, 64, 64], [0, 0, 0]
    # Mean 0 at exponent 0 (Keras' initial moving mean): j = clip(30 + e_x) = 23.
    info = _inference_check(q, -7, gamma, -6, beta, [0, 0, 0], 0, [2**29] * 3, -29, EPS)
    assert info["j"] == [23, 23, 23] and info["S1"] == [0, 0, 0]
    # j per channel: a mean far above the input's scale clips j to 0; below it, to 23.
    info = _inference_check(q, -7, gamma, -6, beta, [2**29, 2**20, 5], -7, [2**29] * 3, -29, EPS)
    assert info["j"] == [0, 9, 23] and info["S1"] == [2**29, 2**29, 5 * 2**23]


def test_inference_saturation_and_overflow_free():
    # The mean is over 2**23 times the input's unit: S1 saturates, |d| reaches 2**32.
    m_eps, e_eps = ref.epsilon_pair(EPS)
    q = np.array([[127], [-127]])
    info = ref.batch_norm_inference(q, -40, [127], -7, [2**31 - 1], [2**30 - 1], 0, [2**29], 10,
                                    m_eps, e_eps, details=True)
    assert info["S1"] == [2**31 - 1] and info["j"] == [0] and info["V"] == [2**60]
    assert np.all(np.abs(info["y_q"]) <= 127)
    # V and E both saturated: W = 2**61 (k = 0).
    info = ref.batch_norm_inference(q, -60, [127], -7, [0], [1], -60, [2**30 - 1], 40,
                                    m_eps, e_eps, details=True)
    assert info["W"] == [2**61] and info["k"] == [0]
    # xhat saturates at +-(2**31 - 1): the mean 2**23 standard deviations away.
    q = np.array([[3, -100], [127, 5]])
    info = ref.batch_norm_inference(q, -5, [100, -7], -7, [-1000, 3], [4923979, 0], -3,
                                    [596588492, 2**29], -40, m_eps, e_eps, details=True)
    assert info["xhat"][:, 0].tolist() == [-(2**31 - 1)] * 2
    assert abs(info["xhat"][1, 1]) < 2**31 - 1
    acc = 100 * -(2**31 - 1) + (-1000 << F)
    want_q, want_e = ref.requantize_channels(
        np.array([[acc, 0], [acc, 0]]) + np.array([[0, 1], [0, 1]]) * np.array(
            [[-7 * int(info["xhat"][0, 1]) + (3 << F)], [-7 * int(info["xhat"][1, 1]) + (3 << F)]]),
        [-7 - F] * 2)
    np.testing.assert_array_equal(info["y_q"], want_q)
    assert info["y_exponent"] == want_e
    with pytest.raises(ValueError):
        ref.batch_norm_inference(q, 0, [1, 1], 0, [0, 0], [0, 0], 0, [-1, 1], 0, m_eps, e_eps)


def test_inference_rounding_modes_with_seed():
    rng = np.random.default_rng(8)
    q = rng.integers(-127, 128, (6, 3))
    m_eps, e_eps = ref.epsilon_pair(EPS)
    args = (q, -7, [100, -20, 64], -7, [5, 0, -5], [2**28, -2**29, 0], -30, [2**29] * 3, -30,
            m_eps, e_eps)
    near = ref.batch_norm_inference(*args)
    for mode in ["pseudo_stochastic", "stochastic", "truncate"]:
        y_q, y_e = ref.batch_norm_inference(*args, rounding=mode, seed=(1, 2))
        assert y_e == near[1] and np.abs(y_q - near[0]).max() <= 1

"""Worked examples from docs/algorithms.md, checked by hand, pin the reference itself."""

import numpy as np

import reference as ref


def test_bit_length():
    assert ref.bit_length([0, 0]) == 0
    assert ref.bit_length([127, -3]) == 7
    assert ref.bit_length([-128]) == 8
    assert ref.bit_length([-(2**31)]) == 32


def test_round_shift_modes_by_hand():
    # 13 = 0b1101, s = 2: t = 3, r = 0b01
    assert ref.round_shift([13], 2, "nearest")[0] == 3      # 3.25 -> 3
    assert ref.round_shift([14], 2, "nearest")[0] == 4      # 3.5 -> 4 (half away)
    assert ref.round_shift([-14], 2, "nearest")[0] == -4
    assert ref.round_shift([-13], 2, "truncate")[0] == -3   # towards zero, not floor
    # pseudo-stochastic, s = 2: h = 1, P = r >> 1, R = (r & 1) * 2 (odd? no: s even)
    # r = 0b10: P = 1, R = 0 -> up; r = 0b01: P = 0, R = 1 -> down
    assert ref.round_shift([14], 2, "pseudo_stochastic")[0] == 4
    assert ref.round_shift([13], 2, "pseudo_stochastic")[0] == 3
    # s = 1: R is always 0, every odd value rounds away from zero
    assert list(ref.round_shift([3, -3, 4], 1, "pseudo_stochastic")) == [2, -2, 2]
    # s = 3 (odd): r = 0b101, h = 1, P = 0b10 = 2, R = (1) * 2 = 2 -> not up
    assert ref.round_shift([0b1101], 3, "pseudo_stochastic")[0] == 1


def test_requantize_never_scales_up():
    q, e = ref.requantize([100, -5], 3)
    assert list(q) == [100, -5] and e == 3
    q, e = ref.requantize([1000, -3], 0)   # b = 10, s = 3
    assert list(q) == [125, 0] and e == 3


def test_quantize_images_and_carriers():
    q, e = ref.quantize(np.array([0.0, 0.3, 1.0], np.float32))
    assert e == -7 and list(q) == [0, 38, 127]     # 1.0 clamps to 127 (spec)
    q, e = ref.quantize(np.array([64 * 2.0**-5, -3 * 2.0**-5], np.float32))
    assert e == -5 and list(q) == [64, -3]          # exact carrier: no clamp
    q, e = ref.quantize(np.zeros(3, np.float32))
    assert e == 0 and not q.any()


def test_philox_known_answer():
    # Random123's known-answer vector for philox4x32-10 with zero counter and key.
    out = ref.philox4x32(np.zeros((1, 4), np.uint64), 0)[0]
    assert [hex(int(v)) for v in out] == ["0x6627e8d5", "0xe169c58d", "0xbc57ac4c", "0x9b00dbd8"]


def test_cross_entropy_grad_is_softmax_minus_onehot():
    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (64, 10))
    labels = np.arange(64) % 10
    # The second-order form (e <= -7) is close; the base-2 form rounds the
    # exponent to whole bits, so a probability can be off by up to 2x.
    for exponent, max_error, mean_error in ((-12, 0.02, 0.005), (-7, 0.03, 0.006),
                                            (-5, 0.2, 0.03), (-3, 0.2, 0.03), (0, 0.2, 0.01)):
        err, e = ref.softmax_cross_entropy_grad(q, exponent, labels)
        z = q * 2.0**exponent
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(64), labels] -= 1
        error = np.abs(err * 2.0**e - p)
        assert error.max() < max_error and error.mean() < mean_error, exponent
        assert np.all(err[np.arange(64), labels] <= 0)


def test_conv_reference_agrees_with_matmul_for_1x1():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 3, 4, 5))
    w = rng.integers(-128, 128, (1, 1, 5, 6))
    out = ref.conv2d(x, w, (1, 1), "VALID")
    assert np.array_equal(out, (x.reshape(-1, 5) @ w.reshape(5, 6)).reshape(2, 3, 4, 6))

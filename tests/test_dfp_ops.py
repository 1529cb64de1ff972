"""quantize / dequantize / requantize / round_shift / int_add, bit-exact against the reference."""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
import tf_int_ops as ops

MODES = ["nearest", "pseudo_stochastic", "stochastic", "truncate"]


def _acc_samples(rng):
    yield np.array([0, 0, 0], np.int32)                       # all zero
    yield np.array([127, -127, 5], np.int32)                  # fits: no shift
    yield np.array([128, -128, 1, -1], np.int32)              # the NITI 128 -> -128 bug
    yield np.array([2**31 - 1, -(2**31), 0, -1], np.int32)    # int32 extremes
    yield rng.integers(-(2**20), 2**20, 1000).astype(np.int32)
    yield rng.integers(-(2**31), 2**31, 777, dtype=np.int64).astype(np.int32)
    yield (rng.integers(-3, 4, 500) * 2**13 + rng.integers(-5, 6, 500)).astype(np.int32)  # ties


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bits", [8, 16])
def test_requantize_matches_reference(rng, mode, bits):
    for acc in _acc_samples(rng):
        for exponent in (-20, 0, 7):
            q, e = ops.requantize(acc, exponent, mode, bits, seed=[42, 3])
            want_q, want_e = ref.requantize(acc, exponent, mode, bits, seed=(42, 3))
            assert q.dtype == (tf.int8 if bits == 8 else tf.int16)
            np.testing.assert_array_equal(q.numpy(), want_q)
            assert int(e) == want_e
            if bits == 8:
                assert np.abs(q.numpy()).max(initial=0) <= 127


def test_requantize_negative_values_round_on_magnitude():
    acc = np.array([-13, -14, -15, 13, 14, 15], np.int32) * 2**5
    q, _ = ops.requantize(acc, 0, "truncate")
    np.testing.assert_array_equal(q.numpy()[:3], -q.numpy()[3:])


def test_stochastic_rounding_is_seeded_and_unbiased():
    acc = np.full(20000, 0b1_0100_0000 * 3 + 1, np.int32)  # 961: 1.87... of a unit at s = 3
    q1, _ = ops.requantize(acc, 0, "stochastic", seed=[7, 1])
    q2, _ = ops.requantize(acc, 0, "stochastic", seed=[7, 1])
    q3, _ = ops.requantize(acc, 0, "stochastic", seed=[7, 2])
    np.testing.assert_array_equal(q1.numpy(), q2.numpy())
    assert not np.array_equal(q1.numpy(), q3.numpy())
    assert abs(q1.numpy().mean() - 961 / 8) < 0.02


@pytest.mark.parametrize("bits", [8, 16])
def test_quantize_matches_reference(rng, bits):
    samples = [
        rng.random((4, 28, 28)).astype(np.float32),                  # images in [0, 1)
        np.concatenate([rng.random(99), [1.0]]).astype(np.float32),  # max exactly 1.0 -> clamp
        (rng.integers(-127, 128, 300) * 2.0**-9).astype(np.float32),  # carrier
        np.array([64, -3, 0], np.float32) * 2.0**4,                  # carrier with power-of-two max
        rng.standard_normal(1000).astype(np.float32) * 1e3,
        np.zeros(5, np.float32),
        np.array([-0.5, 0.25], np.float32),
        rng.standard_normal(100).astype(np.float32) * 1e-30,
    ]
    for x in samples:
        q, e = ops.quantize(x, bits)
        want_q, want_e = ref.quantize(x, bits)
        np.testing.assert_array_equal(q.numpy(), want_q)
        assert int(e) == want_e


def test_carrier_round_trip_is_lossless(rng):
    for exponent in (-30, -7, 0, 12):
        q = rng.integers(-127, 128, 500).astype(np.int8)
        q[0] = 64  # a power-of-two maximum
        q[1:] = np.clip(q[1:], -64, 64)
        x = ops.dequantize(q, exponent)
        q2, e2 = ops.quantize(x)
        np.testing.assert_array_equal(ops.dequantize(q2, e2).numpy(), x.numpy())


def test_dequantize_is_exact(rng):
    q = rng.integers(-32767, 32768, 100).astype(np.int16)
    for e in (-120, -7, 0, 100):
        np.testing.assert_array_equal(ops.dequantize(q, e).numpy(), ref.dequantize(q, e))


@pytest.mark.parametrize("mode", MODES)
def test_round_shift_matches_reference(rng, mode):
    x = rng.integers(-(2**31), 2**31, 500, dtype=np.int64).astype(np.int32)
    for shift in (0, 1, 2, 7, 8, 24, 31, 40):
        got = ops.round_shift(x, shift, mode, seed=[1, 2]).numpy()
        rand = ref.random_words(1, 2, x.size) if mode == "stochastic" else None
        np.testing.assert_array_equal(got, ref.round_shift(x, shift, mode, rand))


def test_round_shift_limit_clips():
    got = ops.round_shift(np.array([1000, -1000, 5], np.int32), 0, limit=127).numpy()
    np.testing.assert_array_equal(got, [127, -127, 5])


def test_int8_weights_from_16_bit(rng):
    w16 = rng.integers(-32767, 32768, 300).astype(np.int16)
    want = np.clip(ref.round_shift(w16, 8, "pseudo_stochastic"), -127, 127)
    np.testing.assert_array_equal(ops.int8_weights(w16).numpy(), want)


@pytest.mark.parametrize("exponents", [(0, 0), (-3, 2), (5, -7), (0, -40), (-60, 0)])
def test_int_add_matches_reference(rng, exponents):
    a = rng.integers(-128, 128, (3, 7)).astype(np.int8)
    b = rng.integers(-128, 128, (3, 7)).astype(np.int8)
    ea, eb = exponents
    acc, acc_e = ref.aligned_add(a, ea, b, eb)
    want_q, want_e = ref.requantize(acc, acc_e, "nearest")
    q, e = ops.int_add(a, ea, b, eb)
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e
    if abs(ea - eb) <= 23:  # exact alignment: the sum is right to within one rounding
        value = a * 2.0**ea + b * 2.0**eb
        assert np.abs(q.numpy() * 2.0**int(e) - value).max() <= 2.0 ** (int(e) - 1)


def test_bit_length_matches_reference(rng):
    for x in ([0, 0], [1], [-128, 127], [-(2**31)], [2**31 - 1, 5], rng.integers(-999, 999, 50)):
        x = np.asarray(x, np.int32)
        assert int(ops.bit_length(x)) == ref.bit_length(x)

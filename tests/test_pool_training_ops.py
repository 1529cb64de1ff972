"""Pooling, the integer cross-entropy gradient and integer SGD against the reference."""

import numpy as np
import pytest

import reference as ref
import tf_int_ops as ops

POOL_CASES = [
    ((1, 4, 4, 1), (2, 2), (2, 2), "VALID"),
    ((2, 7, 5, 3), (2, 2), (2, 2), "SAME"),
    ((2, 7, 5, 3), (3, 3), (2, 2), "SAME"),   # overlapping windows
    ((1, 9, 9, 2), (3, 3), (1, 1), "VALID"),
    ((3, 6, 8, 4), (3, 2), (3, 1), "SAME"),
    ((1, 1, 1, 5), (1, 1), (1, 1), "VALID"),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool_forward_and_grad(rng, case):
    shape, pool, strides, padding = case
    # A narrow value range forces ties: the first maximum must win.
    x = rng.integers(-3, 3, shape).astype(np.int8)
    y = ops.int_max_pool2d(x, list(pool), list(strides), padding).numpy()
    np.testing.assert_array_equal(y, ref.max_pool(x, pool, strides, padding))
    dy = rng.integers(-128, 128, y.shape).astype(np.int8)
    dx = ops.int_max_pool2d_grad(x, dy, list(pool), list(strides), padding).numpy()
    np.testing.assert_array_equal(dx, ref.max_pool_grad(x, dy, pool, strides, padding))


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_avg_pool_forward_and_grad(rng, case):
    shape, pool, strides, padding = case
    x = rng.integers(-128, 128, shape).astype(np.int8)
    q, e = ops.int_avg_pool2d(x, -3, list(pool), list(strides), padding)
    want_q, want_e = ref.requantize(ref.avg_pool_acc(x, pool, strides, padding), -3 - 16)
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e
    # Close to the true mean, including SAME borders that average fewer elements.
    mean = ref.avg_pool_acc(np.ones(shape), pool, strides, padding) / 2.0**16
    assert np.abs(mean - 1).max() < 2**-8

    dy = rng.integers(-128, 128, q.shape).astype(np.int8)
    dx, dx_e = ops.int_avg_pool2d_grad(list(shape), dy, 2, list(pool), list(strides), padding)
    want_dx, want_dx_e = ref.requantize(ref.avg_pool_grad_acc(shape, dy, pool, strides, padding), 2 - 16)
    np.testing.assert_array_equal(dx.numpy(), want_dx)
    assert int(dx_e) == want_dx_e


@pytest.mark.parametrize("exponent", [-30, -12, -7, -6, -4, -1, 0, 3, 20])
@pytest.mark.parametrize("mode", ["pseudo_stochastic", "stochastic"])
def test_cross_entropy_grad_matches_reference(rng, exponent, mode):
    logits = rng.integers(-128, 128, (33, 10)).astype(np.int8)
    logits[0] = 127
    logits[1] = -128
    labels = rng.integers(0, 10, 33)
    err, e = ops.int_softmax_cross_entropy_grad(logits, exponent, labels, mode, seed=[5, 9])
    want, want_e = ref.softmax_cross_entropy_grad(logits, exponent, labels, mode, seed=(5, 9))
    np.testing.assert_array_equal(err.numpy(), want)
    assert int(e) == want_e == ops.CROSS_ENTROPY_ERROR_EXPONENT


def test_cross_entropy_grad_int32_labels_and_many_classes(rng):
    logits = rng.integers(-128, 128, (4, 1000)).astype(np.int8)
    labels = np.array([0, 999, 500, 3], np.int32)
    err, _ = ops.int_softmax_cross_entropy_grad(logits, -3, labels)
    np.testing.assert_array_equal(err.numpy(), ref.softmax_cross_entropy_grad(logits, -3, labels)[0])


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("mu", [1, 3, 5, 8])
@pytest.mark.parametrize("momentum,weight_decay", [(0, 0), (0, 1), (8, 0), (15, 3)])
def test_sgd_update_matches_reference(rng, bits, mu, momentum, weight_decay):
    dtype = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    limit = {8: 127, 16: 32767, 32: 2**31 - 1}[bits]
    w = rng.integers(-limit, limit + 1, 400, dtype=np.int64).astype(dtype)
    w[:5] = [limit, -limit, limit, -limit, 0]
    buffer = rng.integers(-limit, limit + 1, 400, dtype=np.int64).astype(dtype) if momentum else None
    for g in (rng.integers(-(2**20), 2**20, 400), rng.integers(-3, 4, 400),
              np.full(400, -(2**31)), rng.integers(-(2**31), 2**31, 400, dtype=np.int64)):
        g = g.astype(np.int32)
        new_w, new_buffer = ops.integer_sgd_update(w, g, mu, momentum, buffer, weight_decay)
        want_w, want_buffer = ref.sgd_update(w, g, mu, momentum, buffer, weight_decay, bits)
        np.testing.assert_array_equal(new_w.numpy(), want_w)
        if momentum:
            np.testing.assert_array_equal(new_buffer.numpy(), want_buffer)


def test_sgd_zero_gradient_changes_nothing(rng):
    w = rng.integers(-127, 128, 50).astype(np.int8)
    new_w, _ = ops.integer_sgd_update(w, np.zeros(50, np.int32), 5)
    np.testing.assert_array_equal(new_w.numpy(), w)


def test_sgd_step_is_normalised_to_mu_bits(rng):
    w = np.zeros(1000, np.int8)
    for scale in (2**3, 2**12, 2**25):
        g = (rng.standard_normal(1000) * scale).astype(np.int32)
        new_w, _ = ops.integer_sgd_update(w, g, 4)
        step = -new_w.numpy().astype(np.int64)
        assert 8 <= np.abs(step).max() <= 16 or scale == 2**3
        assert np.all(np.sign(step) * np.sign(g) >= 0)

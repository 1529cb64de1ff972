"""Carrier op of the loss family (tf_int_ops/layer_ops/losses.py) and its integer gradient.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("batch", [8, 6])
def test_softmax_cross_entropy_gradient(rng, batch):
    logits = tf.constant(_carrier(rng, (batch, 10), -4))
    labels = rng.integers(0, 10, batch)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(layer_ops.softmax_cross_entropy(labels, logits))
        loss_float = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grad, grad_float = tape.gradient(loss, logits), tape.gradient(loss_float, logits)
    np.testing.assert_allclose(loss.numpy(), loss_float.numpy(), rtol=1e-6)  # display value
    q, e = ref.quantize(logits.numpy())
    err, err_e = ref.softmax_cross_entropy_grad(q, e, labels)
    if batch == 8:  # 1/8 is a power of two: the scaling is exact
        np.testing.assert_array_equal(grad.numpy(), err * 2.0 ** (err_e - 3))
    assert np.abs(grad.numpy() - grad_float.numpy()).max() < 0.2 / batch


@pytest.mark.parametrize("batch, logit_exponent", [(8, -4), (6, -2), (5, -9)])
def test_dynamic_error_exponent_matches_the_reference(rng, batch, logit_exponent):
    """error_exponent="dynamic" (section 4): the 16-bit gradient of the logits widened
    exactly (q << 8 at e - 8), times the upstream factor, requantized to int8 with the
    loss's rounding, bit for bit."""
    logits = tf.constant(_carrier(rng, (batch, 10), logit_exponent))
    labels = rng.integers(0, 10, batch)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(layer_ops.softmax_cross_entropy(labels, logits, error_exponent="dynamic"))
    grad = tape.gradient(loss, logits).numpy()
    q, e = ref.quantize(logits.numpy())
    err, err_e = ref.softmax_cross_entropy_grad(q * 256, e - 8, labels, bits=16)
    scale, scale_e = ref.quantize(np.full(batch, 1.0 / batch, np.float32))
    want, want_e = ref.requantize(err * scale[:, None], err_e + scale_e, "pseudo_stochastic")
    np.testing.assert_array_equal(grad, want * 2.0**want_e)
    assert np.abs(want).max() > 63  # requantized on its largest magnitude


def test_dynamic_error_keeps_the_small_errors_of_a_confident_batch():
    """Every |softmax - onehot| is below 2**-8 here: the fixed exponent (-7) rounds the error
    to +-1 units of 2**-9 or zero; the dynamic one keeps it within 5 % of float's."""
    logits = tf.constant(np.where(np.eye(3, dtype=bool)[[0, 1, 2, 0]], 5.0, 0.0).astype(np.float32))
    labels = np.array([0, 1, 2, 0])
    grads = {}
    for mode in ("fixed", "dynamic"):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = tf.reduce_mean(layer_ops.softmax_cross_entropy(labels, logits, error_exponent=mode))
        grads[mode] = tape.gradient(loss, logits).numpy()
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    float_grad = tape.gradient(loss, logits).numpy()
    np.testing.assert_allclose(grads["dynamic"], float_grad, rtol=0.05)
    assert np.abs(grads["fixed"] - float_grad).max() > 0.3 * np.abs(float_grad).max()


def test_error_exponent_must_be_fixed_or_dynamic():
    import keras_int
    with pytest.raises(ValueError, match=r"error_exponent must be one of \('fixed', 'dynamic'\), got 'auto'"):
        layer_ops.softmax_cross_entropy([0], tf.zeros((1, 3)), error_exponent="auto")
    with pytest.raises(ValueError, match=r"IntegerCrossEntropy: error_exponent must be one of"):
        keras_int.losses.IntegerCrossEntropy(error_exponent=-7)
    loss = keras_int.losses.IntegerCrossEntropy(error_exponent="dynamic")
    assert keras_int.losses.IntegerCrossEntropy.from_config(loss.get_config()).error_exponent == "dynamic"


def fingerprint(labels, logits):
    """docs/algorithms.md 4, the stochastic error's step word."""
    w = np.ascontiguousarray(logits, np.float32).view(np.uint32).ravel().astype(np.int64)
    h = (w & 0xFFFF) ^ ((w >> 16) & 0xFFFF)
    i = np.arange(w.size, dtype=np.int64)
    b = np.arange(1, len(labels) + 1, dtype=np.int64)
    return int((h * (i % 65521 + 1)).sum() + (np.asarray(labels, np.int64) * b).sum())


@pytest.mark.parametrize("rounding", ["stochastic", "pseudo_stochastic"])
def test_integer_cross_entropy_rounds_the_error_as_asked(rng, rounding):
    """IntegerCrossEntropy(rounding=...): the fixed-exponent error of the reference with that
    rounding (stochastic: keyed by the seed and the batch's fingerprint), bit for bit
    (batch 8: the 1/8 factor is exact)."""
    import keras_int
    logits = tf.constant(_carrier(rng, (8, 10), -3))
    labels = rng.integers(0, 10, 8)
    loss = keras_int.losses.IntegerCrossEntropy(rounding=rounding, seed=7)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    q, e = ref.quantize(logits.numpy())
    seed = (7, fingerprint(labels, logits.numpy())) if rounding == "stochastic" else (0, 0)
    err, err_e = ref.softmax_cross_entropy_grad(q, e, labels, rounding, seed)
    np.testing.assert_array_equal(tape.gradient(value, logits).numpy(), err * 2.0 ** (err_e - 3))
    other = {"stochastic": "pseudo_stochastic", "pseudo_stochastic": "stochastic"}[rounding]
    assert not np.array_equal(err, ref.softmax_cross_entropy_grad(q, e, labels, other, (7, 1))[0])  # it matters
    clone = keras_int.losses.IntegerCrossEntropy.from_config(loss.get_config())
    assert (clone.rounding, clone.seed) == (rounding, 7)


def test_integer_cross_entropy_refuses_bad_roundings():
    import keras_int
    with pytest.raises(ValueError, match=r"IntegerCrossEntropy: rounding must be one of "
                                         r"\('pseudo_stochastic', 'stochastic'\), got 'nearest'"):
        keras_int.losses.IntegerCrossEntropy(rounding="nearest")
    with pytest.raises(ValueError, match="IntegerCrossEntropy: stochastic rounding needs a seed"):
        keras_int.losses.IntegerCrossEntropy(rounding="stochastic")

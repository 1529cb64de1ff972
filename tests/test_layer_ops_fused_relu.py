"""The ReLU the dense and convolution layer ops apply in their requantize pass
(``relu=True``; Keras layers' ``activation="relu"``), against the NumPy
reference: requantize on every value, then ReLU; the error masked by the
positive outputs before it is quantized."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
import reference as ref
from conftest import carrier as _carrier
from keras_int import layers as L
from tf_int_ops import layer_ops


def _mask_words(positive):
    """Bit i % 32 of word i / 32 set where element i is positive (the ReLU mask's layout)."""
    flat = positive.reshape(-1)
    padded = np.zeros(-(-flat.size // 32) * 32, bool)
    padded[:flat.size] = flat
    return np.packbits(padded, bitorder="little").view("<u4").view(np.int32)


def _raw_layer_op(kind, x, w, w_exp, rounding="nearest", seed=(0, 0), relu=True):
    lib = layer_ops._loader.load()
    seed = tf.constant(seed, tf.int64)
    if kind == "dense":
        return lib.int_ops_dense(x, w.handle, [], w_exp, seed, [], T=w.dtype, rounding=rounding, relu=relu)
    return lib.int_ops_conv2d_layer(x, w.handle, [], w_exp, seed, [], T=w.dtype, rounding=rounding, relu=relu,
                                    padding="SAME")


def _reference_accumulator(kind, qx, w_np):
    if kind == "dense":
        return qx.astype(np.int64) @ w_np.astype(np.int64)
    return ref.conv2d(qx, w_np)


# Shapes with an output size that is not a multiple of 32, and ones large
# enough to be split across threads in shards of whole mask words.
CASES = [("dense", (3, 7), (7, 5)), ("dense", (300, 64), (64, 70)),
         ("conv", (2, 5, 5, 3), (3, 3, 3, 5)), ("conv", (8, 16, 16, 4), (3, 3, 4, 16))]


@pytest.mark.parametrize("kind,x_shape,w_shape", CASES)
@pytest.mark.parametrize("rounding", ["nearest", "pseudo_stochastic", "truncate", "stochastic"])
@pytest.mark.parametrize("bits", [8, 16])
def test_fused_relu_is_requantize_then_relu(rng, kind, x_shape, w_shape, rounding, bits):
    limit = 2 ** (bits - 1) - 1
    dtype = np.int8 if bits == 8 else np.int16
    x = rng.normal(size=x_shape).astype(np.float32)
    w_np = rng.integers(-limit, limit + 1, w_shape).astype(dtype)
    w, w_exp, seed = tf.Variable(w_np), -7, (11, 5)
    out = _raw_layer_op(kind, tf.constant(x), w, w_exp, rounding, seed)

    qx, ex = ref.quantize(x, bits=bits)
    want_q, want_e = ref.requantize(_reference_accumulator(kind, qx, w_np), ex + w_exp, rounding, bits=bits,
                                    seed=seed)
    assert (want_q < 0).any() and (want_q > 0).any()
    np.testing.assert_array_equal(out.y.numpy(), ref.dequantize(np.maximum(want_q, 0), want_e))
    assert int(out.y_exponent) == want_e
    np.testing.assert_array_equal(out.mask.numpy(), _mask_words(want_q > 0))


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_without_relu_the_mask_is_empty_and_the_output_signed(rng, kind):
    x_shape, w_shape = {"dense": ((4, 6), (6, 3)), "conv": ((1, 4, 4, 2), (3, 3, 2, 3))}[kind]
    w = tf.Variable(rng.integers(-127, 128, w_shape).astype(np.int8))
    out = _raw_layer_op(kind, tf.constant(rng.normal(size=x_shape).astype(np.float32)), w, -7, relu=False)
    assert out.mask.shape == (0,)
    assert out.y.numpy().min() < 0


def test_small_accumulators_are_kept_exactly_and_relud(rng):
    """Products below 2**7 are not shifted (the requantize's exact path), ReLU still applies."""
    # One +-1 per row (mantissa +-64 after quantize) times weights in [-1, 1].
    x = np.zeros((40, 3), np.float32)
    x[np.arange(40), rng.integers(0, 3, 40)] = rng.choice([-1.0, 1.0], 40)
    w_np = rng.integers(-1, 2, (3, 9)).astype(np.int8)
    out = _raw_layer_op("dense", tf.constant(x), tf.Variable(w_np), -4)
    qx, ex = ref.quantize(x)
    acc = qx.astype(np.int64) @ w_np
    assert np.abs(acc).max() < 128
    np.testing.assert_array_equal(out.y.numpy(), ref.dequantize(np.maximum(acc, 0), ex - 4))
    np.testing.assert_array_equal(out.mask.numpy(), _mask_words(acc > 0))


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_gradient_masks_the_error_before_quantizing_it(rng, kind):
    x_shape, w_shape = {"dense": ((8, 20), (20, 6)), "conv": ((2, 6, 6, 3), (3, 3, 3, 4))}[kind]
    x = rng.normal(size=x_shape).astype(np.float32)
    w_np = rng.integers(-127, 128, w_shape).astype(np.int8)
    w, w_exp = tf.Variable(w_np), -7
    with tf.GradientTape() as tape:
        x_t = tf.constant(x)
        tape.watch(x_t)
        if kind == "dense":
            y, _ = layer_ops.dense(x_t, w, w_exp, relu=True)
        else:
            y, _ = layer_ops.conv2d(x_t, w, w_exp, relu=True)
        dy = _carrier(rng, tuple(y.shape), -9)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])

    qx, ex = ref.quantize(x)
    acc = _reference_accumulator(kind, qx, w_np)
    positive = ref.requantize(acc, ex + w_exp)[0] > 0
    err, ee = ref.quantize(np.where(positive, dy, 0.0).astype(np.float32))
    if kind == "dense":
        want_dw, dx_acc = qx.T.astype(np.int64) @ err, err @ w_np.T.astype(np.int64)
    else:
        want_dw = ref.conv2d_backprop_filter(qx, w_shape, err)
        dx_acc = ref.conv2d_backprop_input(x_shape, w_np, err)
    np.testing.assert_array_equal(dw.numpy(), want_dw)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(*ref.requantize(dx_acc, ee + w_exp)))


def _twins(fused_first, seed):
    """(A model whose layers ReLU in their op, the same model with separate IntReLU layers)."""
    keras.utils.set_random_seed(seed)
    fused = keras.Sequential([keras.Input((8, 8, 1)), L.IntConv2D(6, 3, activation="relu", name="conv"),
                              L.IntMaxPooling2D(2), L.IntFlatten(), L.IntDense(16, activation="relu", name="hidden"),
                              L.IntDense(4, name="logits")])
    separate = keras.Sequential([keras.Input((8, 8, 1)), L.IntConv2D(6, 3, name="conv"), L.IntReLU(),
                                 L.IntMaxPooling2D(2), L.IntFlatten(), L.IntDense(16, name="hidden"), L.IntReLU(),
                                 L.IntDense(4, name="logits")])
    for model in (fused, separate):
        model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu=4), loss=keras_int.losses.IntegerCrossEntropy())
    for name in ("conv", "hidden", "logits"):
        for a, b in zip(fused.get_layer(name).weights, separate.get_layer(name).weights):
            b.assign(a)
    return fused, separate


def test_a_fused_relu_trains_bit_identically_to_a_separate_int_relu(rng):
    fused, separate = _twins(True, 3)
    x = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    for model in (fused, separate):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for name in ("conv", "hidden", "logits"):
        for a, b in zip(fused.get_layer(name).weights, separate.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}/{a.name}")
    np.testing.assert_array_equal(fused.predict(x, verbose=0), separate.predict(x, verbose=0))


def test_the_traced_step_has_no_separate_relu_op(rng):
    fused, _ = _twins(True, 4)
    x = tf.constant(rng.normal(size=(4, 8, 8, 1)).astype(np.float32))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = fused(x, training=True)
            loss = tf.reduce_sum(y)
        return tape.gradient(loss, fused.trainable_weights)

    types = [op.type for op in step.get_concrete_function(x).graph.get_operations()]
    assert "IntOps>Relu" not in types
    assert types.count("IntOps>ReluGrad") == 2  # the error through each fused ReLU's mask

"""Configs, serialisation and argument checks of every public keras_int class."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
from keras_models import compile_integer, digits, digits_cnn

L = keras_int.layers

LAYERS = [
    (L.IntDense(7, rounding="pseudo_stochastic", seed=3), (2, 5)),
    (L.IntDense(3, use_bias=True), (2, 4, 5)),
    (L.IntDense(2, error_bits=8), (3, 4)),
    (L.IntConv2D(2, 1, error_bits=16), (1, 3, 3, 2)),
    (L.IntConv2D(4, (3, 2), strides=2, padding="same", dilation_rate=1, seed=1), (2, 7, 6, 3)),
    (L.IntReLU(), (2, 5)),
    (L.IntMaxPool2D(3, strides=2, padding="same"), (2, 7, 6, 3)),
    (L.IntAveragePooling2D(2, rounding="stochastic", seed=9), (2, 6, 6, 3)),
    (L.IntGlobalAveragePooling2D(), (2, 4, 4, 3)),
    (L.IntFlatten(), (2, 3, 3, 2)),
    (L.IntDropout(0.75, seed=4), (2, 5)),
    (L.IntBatchNormalization(momentum=0.9, epsilon=1e-5, center=False, rounding="truncate", seed=2), (3, 4, 4, 5)),
    (L.IntBatchNormalization(gamma_initializer="glorot_uniform", moving_variance_initializer="zeros"), (6, 3)),
    (L.IntLayerNormalization(epsilon=1e-5, center=False, rounding="stochastic", seed=6), (2, 7, 12)),
    (L.IntLayerNormalization(gamma_initializer="glorot_uniform", beta_initializer="ones"), (5,)),
    (L.IntLayerNormalization(error_bits=8), (3, 6)),
    (L.IntGELU(rounding="pseudo_stochastic", seed=5), (2, 3, 7)),
    (L.IntGlobalAveragePooling1D(rounding="truncate"), (2, 6, 5)),
    (L.IntPositionEmbedding(9, initializer="uniform", seed=1), (2, 6, 5)),
]


@pytest.mark.parametrize("layer,shape", LAYERS, ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "")
def test_layer_config_round_trip_and_output_shape(layer, shape):
    x = keras.random.uniform(shape, seed=0)
    y = layer(x)
    assert tuple(y.shape) == tuple(layer.compute_output_shape(shape))
    config = keras.saving.serialize_keras_object(layer)
    assert config["module"] == "keras_int.layers" or config.get("registered_name", "").startswith("keras_int>")
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


def test_int_add_config_and_shape():
    layer = L.IntAdd(rounding="truncate")
    a, b = keras.random.uniform((2, 4), seed=1), keras.random.uniform((2, 4), seed=2)
    assert layer([a, b]).shape == (2, 4)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).rounding == "truncate"


@pytest.mark.parametrize("error_bits", [8, 16])
def test_layer_norm_passes_back_errors_of_error_bits(error_bits):
    """IntLayerNormalization's input gradient has error_bits mantissas (one
    exponent): 16 by default; the op's tests check the values bit for bit."""
    layer = L.IntLayerNormalization(**({} if error_bits == 16 else {"error_bits": error_bits}))
    x = tf.constant(np.random.default_rng(0).integers(-127, 128, (6, 16)) * 2.0**-7, tf.float32)
    dy = tf.constant(np.random.default_rng(1).integers(-127, 128, (6, 16)) * 2.0**-9, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x, training=True) * dy)
    dx = tape.gradient(loss, x).numpy()
    e = int(np.frexp(np.abs(dx).max())[1]) - (error_bits - 1)  # the largest mantissa has error_bits - 1 bits
    mantissas = dx / 2.0**e
    assert np.array_equal(mantissas, np.round(mantissas)) and np.abs(mantissas).max() < 2**(error_bits - 1)
    assert np.abs(mantissas).max() >= 2**(error_bits - 3)  # the width is used, not a coarser grid
    if error_bits == 16:
        assert np.any(mantissas % 2**8 != 0)  # not 8-bit values shifted up


def test_error_bits_defaults_and_attention_projections():
    """IntDense quantizes its error to 16 bits by default (docs/algorithms.md 5), IntConv2D to 8
    (NITI's); attention hands its error_bits to its four projections; the width reaches dx."""
    assert L.IntDense(3).error_bits == 16 and L.IntConv2D(3, 1).error_bits == 8
    attention = L.IntMultiHeadAttention(2, 4, error_bits=8)
    x = keras.random.uniform((2, 3, 8), seed=0)
    attention(x, x)
    assert {d.error_bits for d in (attention._query_dense, attention._key_dense, attention._value_dense,
                                   attention._output_dense)} == {8}
    assert L.IntMultiHeadAttention(2, 4).get_config()["error_bits"] == 16
    for error_bits in (8, 16):
        layer = L.IntDense(4, error_bits=error_bits)
        x = tf.constant(np.random.default_rng(0).integers(-127, 128, (6, 5)) * 2.0**-7, tf.float32)
        dy = tf.constant(np.random.default_rng(1).integers(-127, 128, (6, 4)) * 2.0**-9, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * dy)
        dx, dkernel = tape.gradient(loss, [x, layer.kernel])
        assert dkernel.dtype == tf.int32
        e = int(np.frexp(np.abs(dx.numpy()).max())[1]) - (error_bits - 1)
        assert np.abs(dx.numpy() / 2.0**e).max() >= 2**(error_bits - 3)  # dx has error_bits mantissas


def test_outputs_are_exact_carriers():
    layer = L.IntDense(6)
    y = layer(keras.random.uniform((3, 9), seed=0)).numpy()
    e = int(layer.output_exponent.numpy())
    q = y / 2.0**e
    assert np.array_equal(q, np.round(q)) and np.abs(q).max() <= 127


def test_loss_optimizer_callback_configs():
    loss = keras_int.losses.IntegerCrossEntropy(sparse=False)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).sparse is False
    schedule = keras_int.optimizers.niti_mu_schedule(100)
    optimizer = keras_int.optimizers.IntegerSGD(mu=4, mu_schedule=schedule, momentum=8,
                                                weight_decay=1, weight_bits=16)
    clone = keras_int.optimizers.IntegerSGD.from_config(optimizer.get_config())
    assert (clone.mu, clone.momentum, clone.integer_weight_decay, clone.weight_bits) == (4, 8, 1, 16)
    assert [int(clone.mu_schedule(s)) for s in (0, 60, 90)] == [5, 4, 3]
    tracker = keras_int.callbacks.ExponentTracker(every_n_batches=3, csv_path="x.csv")
    assert keras_int.callbacks.ExponentTracker(**tracker.get_config()).every_n_batches == 3


def test_one_hot_labels_give_the_same_training():
    (x, y), _ = digits()
    results = []
    for sparse in (True, False):
        keras.utils.set_random_seed(0)
        model = digits_cnn()
        model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                      loss=keras_int.losses.IntegerCrossEntropy(sparse=sparse))
        labels = y[:128] if sparse else keras.utils.to_categorical(y[:128], 10)
        model.fit(x[:128], labels, epochs=1, batch_size=32, shuffle=False, verbose=0)
        results.append([w.numpy() for w in model.weights])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_mu_schedule_and_16_bit_weights_are_applied():
    (x, y), _ = digits()
    keras.utils.set_random_seed(0)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [6, 2])
    model = compile_integer(digits_cnn(), mu_schedule=schedule, weight_bits=16)
    tracker = keras_int.callbacks.ExponentTracker(every_n_batches=1)
    model.fit(x[:128], y[:128], epochs=1, batch_size=32, shuffle=False, verbose=0, callbacks=[tracker])
    assert [r["exp/mu"] for r in tracker.batch_records] == [6, 6, 6, 2]
    optimizer = model.optimizer
    for layer in (model.layers[0], model.layers[-1]):
        master = optimizer._masters[optimizer._get_variable_index(layer.kernel)]
        assert master.dtype == "int16"
        np.testing.assert_array_equal(layer.kernel.numpy(), tf_int8(master.numpy()))


def tf_int8(w16):
    import tf_int_ops

    return tf_int_ops.int8_weights(w16).numpy()


@pytest.mark.parametrize("make,pattern", [
    (lambda: L.IntDense(0), "units must be a positive int"),
    (lambda: L.IntDense(3, rounding="up"), "rounding must be one of"),
    (lambda: L.IntConv2D(4, 3, padding="full"), "padding must be 'same' or 'valid'"),
    (lambda: L.IntConv2D(4, 0), "kernel_size must be >= 1"),
    (lambda: L.IntConv2D(4, 3, strides=(1, 0)), "strides must be >= 1"),
    (lambda: L.IntMaxPool2D(0), "pool_size must be >= 1"),
    (lambda: L.IntDropout(0.3), "rate must be 1 - 2\\*\\*-k"),
    (lambda: keras_int.optimizers.IntegerSGD(mu=0), "mu must be an int in \\[1, 30\\]"),
    (lambda: keras_int.optimizers.IntegerSGD(momentum=0.9), "momentum must be an int in \\[0, 16\\]"),
    (lambda: keras_int.optimizers.IntegerSGD(weight_bits=32), "weight_bits must be 8 or 16"),
    (lambda: keras_int.optimizers.IntegerSGD(weight_decay=-1), "weight_decay must be an int"),
    (lambda: keras_int.callbacks.ExponentTracker(every_n_batches=0), "every_n_batches must be a positive int"),
    (lambda: L.IntBatchNormalization(momentum=1.5), "momentum must be a number in \\[0, 1\\]"),
    (lambda: L.IntBatchNormalization(epsilon=0), "epsilon must be a finite number > 0"),
    (lambda: L.IntBatchNormalization(epsilon=float("nan")), "epsilon must be a finite number > 0"),
    (lambda: L.IntBatchNormalization(axis=True), "axis must be an int"),
    (lambda: L.IntLayerNormalization(epsilon=-1.0), "epsilon must be a finite number > 0"),
    (lambda: L.IntLayerNormalization(axis=[1, 2]), "axis must be an int"),
    (lambda: L.IntLayerNormalization(error_bits=12), "error_bits: bits must be 8 or 16, got 12"),
    (lambda: L.IntDense(3, error_bits=32), "IntDense: error_bits: bits must be 8 or 16, got 32"),
    (lambda: L.IntConv2D(3, 1, error_bits=0), "IntConv2D: error_bits: bits must be 8 or 16, got 0"),
    (lambda: L.IntMultiHeadAttention(2, 4, error_bits=24), "IntMultiHeadAttention: error_bits: bits must be 8 or 16"),
    (lambda: L.IntLayerNormalization(axis=1).build((2, 3, 4)), "only the last axis is supported"),
    (lambda: L.IntLayerNormalization().build((2, None)), "the last dimension must be known"),
])
def test_bad_arguments_are_named(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_bad_inputs_to_layers_are_named():
    with pytest.raises(ValueError, match="IntConv2D: input must be NHWC"):
        L.IntConv2D(4, 3)(keras.random.uniform((2, 5)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        L.IntDense(2)(tf.constant([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="float32 carrier"):
        L.IntReLU()(tf.constant([[1, 2]], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="12 is out of range|label value of 12"):
        model = compile_integer(digits_cnn())
        model.fit(np.zeros((4, 8, 8, 1), np.float32), np.array([12, 1, 2, 3]), verbose=0)


def test_integer_gradient_for_a_float_variable_is_rejected():
    optimizer = keras_int.optimizers.IntegerSGD()
    variable = keras.Variable(np.zeros(3, np.int8), dtype="int8")
    optimizer.build([variable])
    with pytest.raises(ValueError, match="integer variables need int32 or int64 gradients"):
        optimizer.apply([tf.zeros(3, tf.float32)], [variable])


def test_mu_scheduler_sets_mu_per_epoch():
    (x, y), _ = digits()
    model = compile_integer(digits_cnn(), mu=5)
    model.optimizer.build(model.trainable_variables)
    tracker = keras_int.callbacks.ExponentTracker()
    history = model.fit(x[:64], y[:64], epochs=3, batch_size=32, verbose=0,
                        callbacks=[keras_int.callbacks.MuScheduler(lambda epoch: 5 - epoch), tracker])
    assert history.history["exp/mu"] == [5, 4, 3]
    with pytest.raises(ValueError, match="must be an int in \\[1, 30\\]"):
        model.fit(x[:64], y[:64], epochs=1, verbose=0,
                  callbacks=[keras_int.callbacks.MuScheduler(lambda epoch: 0.5)])

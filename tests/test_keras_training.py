"""keras_int with the stock model.fit: learning, mixing, determinism, saving."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
import tf_int_ops
from keras_models import compile_integer, digits, digits_cnn

L = keras_int.layers


def _weights(model):
    return [v.numpy().copy() for v in model.weights]


def test_integer_cnn_learns_digits_and_float_twin_is_close():
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(0)
    steps = 15 * (len(x) // 32 + 1)
    model = compile_integer(digits_cnn(), mu_schedule=keras_int.optimizers.niti_mu_schedule(steps))
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert all(v.dtype == "int8" for v in model.trainable_weights)

    keras.utils.set_random_seed(0)
    twin = digits_cnn(integer=False)
    twin.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    twin.fit(x, y, epochs=15, batch_size=32, verbose=0)
    float_accuracy = twin.evaluate(x_test, y_test, verbose=0)[1]
    print(f"digits test accuracy: integer {accuracy:.4f}, float32 {float_accuracy:.4f}")
    assert accuracy >= 0.90
    assert float_accuracy - accuracy < 0.05


def test_mixed_float_and_integer_layers_train():
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        L.IntConv2D(16, 3, padding="same"), L.IntReLU(), L.IntFlatten(),
        keras.layers.Dense(32, activation="relu"),   # a float layer between integer ones
        L.IntDense(10),
    ])
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu=4, learning_rate=0.05),
                  loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    before = _weights(model)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.8
    changed = [not np.array_equal(a, b) for a, b in zip(before, _weights(model))]
    assert all(changed[i] for i, v in enumerate(model.weights) if v.trainable)


def _train(seed, rounding="nearest", run_eagerly=False, epochs=2):
    (x, y), _ = digits()
    keras.utils.set_random_seed(seed)
    model = compile_integer(digits_cnn(rounding=rounding), mu=5, momentum=4)
    model.compile(optimizer=model.optimizer, loss=model.loss, run_eagerly=run_eagerly)
    model.fit(x[:512], y[:512], epochs=epochs, batch_size=64, shuffle=False, verbose=0)
    return _weights(model)


@pytest.mark.parametrize("rounding", ["pseudo_stochastic", "stochastic"])
def test_same_seed_gives_bit_identical_weights(rounding):
    first, second = _train(3, rounding), _train(3, rounding)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = _train(4, rounding)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_eager_and_graph_training_are_bit_identical():
    for a, b in zip(_train(5, run_eagerly=False, epochs=1), _train(5, run_eagerly=True, epochs=1)):
        np.testing.assert_array_equal(a, b)


def test_residual_functional_model_trains_and_round_trips(tmp_path):
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 1))
    h = L.IntReLU()(L.IntConv2D(16, 3, padding="same")(inputs))
    r = L.IntReLU()(L.IntConv2D(16, 3, padding="same")(h))
    h = L.IntAdd()([h, r])
    h = L.IntAveragePooling2D(2)(h)
    h = L.IntGlobalAveragePooling2D()(L.IntConv2D(32, 3, padding="same")(h))
    outputs = L.IntDense(10)(L.IntDropout(0.5)(h))
    model = compile_integer(keras.Model(inputs, outputs), mu=4)
    model.summary()
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    # It learns (this test is about the functional API, IntAdd, pooling and
    # dropout; test_integer_cnn_learns_digits... holds the accuracy bar).
    assert history.history["loss"][-1] < 0.85 * history.history["loss"][0]
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.3  # chance: 0.1

    path = str(tmp_path / "residual.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    for a, b in zip(model.weights, restored.weights):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(model.predict(x_test, verbose=0), restored.predict(x_test, verbose=0))


def test_save_and_load_restore_weights_exponents_and_optimizer(tmp_path):
    (x, y), (x_test, _) = digits()
    keras.utils.set_random_seed(6)
    model = compile_integer(digits_cnn(), mu=4, momentum=8, weight_bits=16)
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, keras_int.optimizers.IntegerSGD)
    assert restored.optimizer.get_config()["weight_bits"] == 16
    assert restored.layers[0].kernel.dtype == "int8"
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(model.predict(x_test, verbose=0), restored.predict(x_test, verbose=0))
    # Training on from both gives the same weights.
    model.fit(x[:128], y[:128], epochs=1, batch_size=64, shuffle=False, verbose=0)
    restored.fit(x[:128], y[:128], epochs=1, batch_size=64, shuffle=False, verbose=0)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_tf_data_input_and_keras_callbacks(tmp_path):
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(7)
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(500, seed=1).batch(64)
    model = compile_integer(digits_cnn(), mu=4)
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras_int.callbacks.ExponentTracker(every_n_batches=5, csv_path=str(tmp_path / "exp.csv"),
                                            log_dir=str(tmp_path / "tb_exp")),
    ]
    history = model.fit(train, epochs=2, validation_data=(x_test, y_test), callbacks=callbacks, verbose=0)
    assert f"exp/{model.layers[-1].name}/output_exponent" in history.history
    assert f"exp/{model.layers[0].name}/error_exponent" in history.history
    assert len(history.history["exp/mu"]) == 2
    assert os.path.getsize(tmp_path / "log.csv") > 0
    assert open(tmp_path / "exp.csv").readline().startswith("step,")
    assert os.listdir(tmp_path / "tb_exp")
    reloaded = keras.models.load_model(str(tmp_path / "best.keras"))
    np.testing.assert_array_equal(reloaded.layers[-1].kernel.numpy(), model.layers[-1].kernel.numpy())
    png = keras_int.plot_exponents(history, str(tmp_path / "exp.png"))
    assert os.path.getsize(png) > 1000
    png = keras_int.plot_exponents(callbacks[-1].batch_records, str(tmp_path / "exp_batches.png"))
    assert os.path.getsize(png) > 1000


def test_import_under_another_backend_fails_clearly():
    # No other backend (JAX, PyTorch) is installed here: pretend Keras runs one.
    code = "import keras; keras.backend.backend = lambda: 'jax'; import keras_int"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "TensorFlow backend" in result.stderr and "KERAS_BACKEND=tensorflow" in result.stderr


def test_layers_with_bias_train_and_save(tmp_path):
    (x, y), (x_test, _) = digits()
    keras.utils.set_random_seed(8)
    model = compile_integer(keras.Sequential([
        keras.Input((8, 8, 1)), L.IntConv2D(16, 3, padding="same", use_bias=True), L.IntReLU(),
        L.IntFlatten(), L.IntDense(10, use_bias=True)]), mu=4, weight_bits=16, momentum=4)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    biases = [model.layers[0].bias, model.layers[-1].bias]
    assert all(b.dtype == "int32" and b.trainable and np.abs(b.numpy()).max() > 0 for b in biases)
    path = str(tmp_path / "bias.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.layers[-1].bias.numpy(), biases[1].numpy())
    np.testing.assert_array_equal(model.predict(x_test, verbose=0), restored.predict(x_test, verbose=0))


def test_layer_normalization_trains_deterministically_and_saves(tmp_path):
    """gamma and beta move under IntegerSGD, the same seed gives the same
    weights, and a saved model predicts bit for bit as the original."""
    (x, y), (x_test, y_test) = digits()

    def train():
        keras.utils.set_random_seed(3)
        model = compile_integer(keras.Sequential([
            keras.Input((8, 8, 1)), L.IntFlatten(), L.IntDense(64), L.IntLayerNormalization(), L.IntReLU(),
            L.IntDense(10)]), mu=3)
        history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        return model, history

    model, history = train()
    trained = _weights(model)  # before predict, which records output exponents of the test set
    assert history.history["loss"][-1] < history.history["loss"][0]
    norm = model.layers[2]
    assert np.any(norm.gamma.numpy() != 64) and np.any(norm.beta.numpy() != 0)
    accuracy = np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test)
    assert accuracy > 0.85, accuracy
    again, _ = train()
    for a, b in zip(trained, _weights(again)):
        np.testing.assert_array_equal(a, b)
    path = str(tmp_path / "layer_norm.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.layers[2], L.IntLayerNormalization)
    np.testing.assert_array_equal(model.predict(x_test, verbose=0), restored.predict(x_test, verbose=0))


@pytest.mark.parametrize("graph", [False, True])
def test_error_exponent_is_the_exponent_of_the_error_reaching_the_layer(rng, graph):
    conv, dense = L.IntConv2D(4, 3, padding="same"), L.IntDense(10)
    x = tf.constant(rng.random((8, 6, 6, 1), dtype=np.float32))
    labels = tf.constant(rng.integers(0, 10, 8))
    loss_fn = keras_int.losses.IntegerCrossEntropy()

    def step():
        with tf.GradientTape() as tape:
            h = conv(x, training=True)
            tape.watch(h)
            y = dense(L.IntFlatten()(L.IntReLU()(h)), training=True)
            tape.watch(y)
            loss = loss_fn(labels, y)
        dh, dy, _, _ = tape.gradient(loss, [h, y, conv.kernel, dense.kernel])
        # Each at the width its layer quantizes the error to (IntDense: 16, IntConv2D: 8).
        return (tf_int_ops.quantize(dh, bits=conv.error_bits)[1], tf_int_ops.quantize(dy, bits=dense.error_bits)[1])

    want_conv, want_dense = (tf.function(step) if graph else step)()
    assert int(conv.error_exponent.numpy()) == int(want_conv)
    assert int(dense.error_exponent.numpy()) == int(want_dense)
    assert int(want_conv) != 0 and int(want_dense) != 0

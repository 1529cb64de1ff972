"""DFP16 in Keras: bits=16 layers, set_default_bits, IntegerSGD on int16 weights,
the 16-bit LeNet example against its float32 twin, determinism, saving."""

import argparse

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
import reference as ref
from keras_models import compile_integer, digits

L = keras_int.layers


@pytest.fixture(autouse=True)
def _restore_default_bits():
    yield
    keras_int.set_default_bits(8)


def _cnn(bits_conv=16, bits_dense=16):
    return keras.Sequential([keras.Input((8, 8, 1)), L.IntConv2D(16, 3, padding="same", bits=bits_conv),
                             L.IntReLU(), L.IntMaxPool2D(2), L.IntFlatten(), L.IntDense(10, bits=bits_dense)])


def test_bits_argument_default_switch_and_config():
    assert keras_int.default_bits() == 8
    assert L.IntDense(3).bits == 8
    keras_int.set_default_bits(16)
    dense, conv, loss = L.IntDense(3), L.IntConv2D(2, 3), keras_int.losses.IntegerCrossEntropy()
    assert (dense.bits, conv.bits, loss.bits) == (16, 16, 16)
    assert L.IntDense(3, bits=8).bits == 8  # an explicit width wins over the default
    dense.build((None, 4))
    assert dense.kernel.dtype == "int16"
    keras_int.set_default_bits(8)
    # The width is resolved when the layer is made and saved in its config.
    clone = L.IntDense.from_config(dense.get_config())
    assert clone.bits == 16
    assert keras_int.losses.IntegerCrossEntropy.from_config(loss.get_config()).bits == 16


@pytest.mark.parametrize("make", [lambda: keras_int.set_default_bits(12), lambda: L.IntDense(3, bits=4),
                                  lambda: L.IntConv2D(2, 3, bits=True),
                                  lambda: keras_int.losses.IntegerCrossEntropy(bits=32)])
def test_other_widths_are_refused(make):
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        make()


def test_16_bit_kernels_are_16_bit_and_sgd_steps_them_by_mu_plus_8():
    (x, y), _ = digits()
    keras.utils.set_random_seed(1)
    model = compile_integer(_cnn(), mu=5)
    model(x[:2])
    kernel = model.layers[-1].kernel
    assert kernel.dtype == "int16"
    assert np.abs(kernel.numpy()).max() > 2**14  # quantized to 16 bits, not 8
    before = kernel.numpy().astype(np.int64)
    with tf.GradientTape() as tape:
        loss = model.loss(y[:32], model(x[:32], training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g.dtype == tf.int64 for g in grads)
    model.optimizer.apply(grads, model.trainable_variables)
    want, _ = ref.sgd_update(before, grads[-1].numpy(), 5 + 8, bits=16)
    np.testing.assert_array_equal(kernel.numpy(), want)


def test_mixed_8_and_16_bit_layers_train_and_round_trip(tmp_path):
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(0)
    model = compile_integer(_cnn(bits_conv=16, bits_dense=8), mu=5)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert [v.dtype for v in model.trainable_weights] == ["int16", "int8"]
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.8, accuracy
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.bits for layer in loaded.layers if hasattr(layer, "kernel")] == [16, 8]
    np.testing.assert_array_equal(loaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0))


def test_same_seed_gives_bit_identical_16_bit_weights():
    (x, y), _ = digits()

    def run():
        keras.utils.set_random_seed(3)
        keras_int.set_default_bits(16)
        model = compile_integer(_cnn(), mu=5)
        model.fit(x[:256], y[:256], epochs=2, batch_size=32, verbose=0)
        return [v.numpy() for v in model.weights]

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_integer_adam_steps_16_bit_kernels_8_bits_wider():
    (x, y), _ = digits()
    keras.utils.set_random_seed(2)
    model = _cnn()
    model.compile(optimizer=keras_int.optimizers.IntegerAdam(step_bits=1),
                  loss=keras_int.losses.IntegerCrossEntropy(bits=16))
    model(x[:2])
    kernel = model.layers[-1].kernel
    before = kernel.numpy()
    with tf.GradientTape() as tape:
        loss = model.loss(y[:32], model(x[:32], training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    model.optimizer.apply(grads, model.trainable_variables)
    zeros = np.zeros(before.shape, np.int32)
    want, _, _ = ref.adam_update(before, grads[-1].numpy(), zeros, zeros, 1, step_shift=1 + 8, bits=16)
    np.testing.assert_array_equal(kernel.numpy(), want)
    assert np.abs(kernel.numpy().astype(int) - before).max() > 256  # steps in 16-bit units


def _example_args(seed):
    return argparse.Namespace(seed=seed, batch_size=64, data_dir=None, epochs=20, bn_momentum=None, optimizer="sgd",
                              mu=5, niti_schedule=False, model="lenet")


def test_16_bit_lenet_on_the_digits_reaches_its_float32_twin():
    # The example's own path (keras_int/examples/train.py). Measured over
    # seeds 0-2, 20 epochs: int16 0.973 / ... , float32 0.960 / ... (README).
    from keras_int.examples.train import train_one

    int16 = train_one(_example_args(0), True, "digits", bits=16)
    float32 = train_one(_example_args(0), False, "digits")
    assert int16["model"] == "lenet_int16" and float32["model"] == "lenet_float32"
    print(f"digits LeNet: int16 {int16['test_accuracy']:.4f}, float32 {float32['test_accuracy']:.4f}")
    assert int16["test_accuracy"] >= float32["test_accuracy"] - 0.02

"""Small models and data shared by the Keras tests."""

import keras
import numpy as np

import keras_int


def digits(seed=0):
    """scikit-learn's real 8x8 digits in [0, 1], shuffled, split 1350 / 447."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., np.newaxis]
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], data.target[order]
    return (x[:1350], y[:1350]), (x[1350:], y[1350:])


def digits_cnn(integer=True, rounding="nearest"):
    L = keras_int.layers
    if integer:
        stack = [L.IntConv2D(32, 3, padding="same", rounding=rounding), L.IntReLU(), L.IntMaxPool2D(2),
                 L.IntFlatten(), L.IntDense(10, rounding=rounding)]
    else:
        stack = [keras.layers.Conv2D(32, 3, padding="same"), keras.layers.ReLU(),
                 keras.layers.MaxPool2D(2), keras.layers.Flatten(), keras.layers.Dense(10)]
    return keras.Sequential([keras.Input((8, 8, 1)), *stack])


def compile_integer(model, **optimizer_args):
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(**optimizer_args),
                  loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    return model

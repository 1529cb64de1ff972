"""keras_int: train Keras models with integer-only arithmetic (NITI-style int8 DFP).

>>> import keras, keras_int
>>> model = keras.Sequential([
...     keras.Input((28, 28, 1)),
...     keras_int.layers.IntConv2D(32, 3, padding="same"),
...     keras_int.layers.IntReLU(),
...     keras_int.layers.IntMaxPool2D(2),
...     keras_int.layers.IntFlatten(),
...     keras_int.layers.IntDense(10),
... ])
>>> model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu=5),
...               loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
"""

import tf_int_ops  # noqa: F401  (first: it loads TensorFlow without its start-up lines)

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_int runs on the TensorFlow backend of Keras only (its integer ops are "
        f"TensorFlow custom ops), but the active backend is {keras.backend.backend()!r}. "
        "Set KERAS_BACKEND=tensorflow before importing keras."
    )

from keras_int import callbacks, layers, losses, optimizers  # noqa: E402
from keras_int.conversion import integerize, to_float  # noqa: E402
from keras_int.export import export_tflite  # noqa: E402
from keras_int.plotting import plot_exponents  # noqa: E402
from keras_int.precision import default_bits, set_default_bits  # noqa: E402

__version__ = "0.1.0"

__all__ = ["callbacks", "default_bits", "export_tflite", "integerize", "layers", "losses", "optimizers", "plot_exponents",
           "set_default_bits", "to_float"]

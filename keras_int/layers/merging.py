"""Integer merging layers."""

import keras

from keras_int.layers.base import PACKAGE, IntLayer
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntAdd(IntLayer):
    """Residual add of two carriers: exponents aligned exactly, one rounding.

    >>> a, b = keras.random.uniform((2, 4)), keras.random.uniform((2, 4))
    >>> IntAdd()([a, b]).shape  # (2, 4)
    """

    def build(self, input_shape):
        self._build_step_counter()

    def call(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"IntAdd: expects a list of 2 inputs, got {len(inputs)}")
        return layer_ops.add(inputs[0], inputs[1], self.rounding, self._rounding_seed())

    def compute_output_shape(self, input_shape):
        return input_shape[0]

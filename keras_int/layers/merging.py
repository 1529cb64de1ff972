"""Integer merging layers."""

import keras

from keras_int.layers.base import PACKAGE, QuantizingIntLayer
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntAdd(QuantizingIntLayer):
    """Residual add of two carriers: exponents aligned exactly, one rounding.

    The inputs broadcast as in Keras' ``Add`` (the error of a broadcast input
    is the integer sum of the error over the broadcast axes). ``bits=16``
    (DFP16) adds 16-bit mantissas, aligned exactly in int64.

    >>> a, b = keras.random.uniform((2, 4)), keras.random.uniform((2, 4))
    >>> IntAdd()([a, b]).shape  # (2, 4)
    """

    def build(self, input_shape):
        self._build_step_counter()

    def call(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"IntAdd: expects a list of 2 inputs, got {len(inputs)}")
        return layer_ops.add(inputs[0], inputs[1], self.rounding, self._rounding_seed(), self.bits)

    def compute_output_shape(self, input_shape):
        a, b = (tuple(shape) for shape in input_shape)
        rank = max(len(a), len(b))
        a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
        return tuple(y if x == 1 else x if y == 1 or y is None else x for x, y in zip(a, b))

"""Integer activation layers."""

import keras

from keras_int.layers.base import PACKAGE
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntReLU(keras.layers.Layer):
    """ReLU on int8 mantissas; the exponent is unchanged.

    >>> IntReLU()(keras.ops.convert_to_tensor([[-0.5, 0.25]]))  # [[0.0, 0.25]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_jit = False

    def call(self, inputs):
        return layer_ops.relu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

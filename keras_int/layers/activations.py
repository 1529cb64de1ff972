"""Integer activation layers."""

import keras

from keras_int.layers.base import PACKAGE, IntLayer
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntGELU(IntLayer):
    """GELU in integers: I-BERT's second-order polynomial for erf in 16-bit
    fixed point (docs/algorithms.md section 11), requantized; the backward
    pass multiplies the int8 error by the polynomial's derivative.

    Its largest deviation from the exact GELU is the polynomial's (below
    0.02 * |x|, at most 0.016 absolute for |x| <= 3; the spec states the
    measured bound) plus the output's int8 rounding.

    Args:
      rounding, seed: of the output requantisation (see IntDense).

    >>> IntGELU()(keras.ops.convert_to_tensor([[-1.0, 0.5, 2.0]]))
    """

    def build(self, input_shape):
        self.output_exponent = self._exponent("output_exponent")
        self._build_step_counter()

    def call(self, inputs):
        y, exponent = layer_ops.gelu(inputs, self.rounding, self._rounding_seed())
        self.output_exponent.assign(exponent)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

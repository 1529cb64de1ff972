"""Fully connected integer layer."""

import keras

from keras_int.layers.base import PACKAGE, WeightedIntLayer
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntDense(WeightedIntLayer):
    """Fully connected layer with an int8 kernel: ``requantize(quantize(x) @ kernel)``.

    Args:
      units: output features.
      kernel_initializer: float initialiser, quantised once to int8.
      use_bias: add an int32 bias kept at the kernel's exponent (NITI has
        none, hence off by default).
      activation: None (or "linear"), or "relu": an integer ReLU on the
        output, as ``Dense(activation="relu")``.
      rounding: rounding of the output requantisation ("nearest", as NITI,
        "pseudo_stochastic", "stochastic" or "truncate").
      seed: key of stochastic rounding (an int64; drawn when None).
      bits: mantissa width, 8 or 16 (DFP16: int16 kernel, input, output and
        error mantissas, exact int64 sums); None takes
        ``keras_int.default_bits()``.
      error_bits: 16 (default) or 8, the mantissa width of the error the
        backward pass quantizes (docs/algorithms.md 5). With one exponent
        for the whole batch, 8 bits round away the error of rows (tokens)
        far below the largest; 16 keeps it: int16 products, a 16-bit
        input error, and kernel and bias gradients summed before their one
        rounding to the int32 gradients of an 8-bit error. 8 is NITI's
        scheme, and a quarter of the backward products' work.

    >>> layer = IntDense(10)
    >>> y = layer(keras.random.uniform((4, 64)))   # float32 carrier, values q * 2**e
    >>> layer.kernel.dtype                          # 'int8'
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", use_bias=False, activation=None,
                 rounding="nearest", seed=None, bits=None, error_bits=16, **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, use_bias=use_bias, activation=activation,
                         rounding=rounding, seed=seed, bits=bits, error_bits=error_bits, **kwargs)
        self.units = check.positive_int(units, "units", "IntDense")

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"IntDense: the last input dimension must be known, got {input_shape}")
        self._build_kernel((int(input_shape[-1]), self.units))

    def call(self, inputs, training=False):
        y, exponent = layer_ops.dense(inputs, self.kernel, self.kernel_exponent, self.rounding,
                                      self._rounding_seed(), self.bias, self._error_exponent(training), relu=self._relu,
                                      error_bits=self.error_bits)
        return self._finish(y, exponent)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

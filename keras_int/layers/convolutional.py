"""Integer convolution layers."""

import keras

from keras_int.layers.base import PACKAGE, WeightedIntLayer
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntConv2D(WeightedIntLayer):
    """2-D convolution (NHWC) with an int8 kernel, any stride, 'same'/'valid' padding,
    an optional int32 bias (``use_bias=True``) at the kernel's exponent, and an
    optional integer ReLU on the output (``activation="relu"``).
    ``error_bits``: 8 (default, NITI's scheme) or 16, the width of the error
    the backward pass quantizes (see IntDense).

    >>> layer = IntConv2D(32, 3, padding="same")
    >>> y = layer(keras.random.uniform((2, 28, 28, 1)))  # shape (2, 28, 28, 32)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 kernel_initializer="glorot_uniform", use_bias=False, activation=None, rounding="nearest",
                 seed=None, bits=None, error_bits=8, **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, use_bias=use_bias, activation=activation,
                         rounding=rounding, seed=seed, bits=bits, error_bits=error_bits, **kwargs)
        fn = "IntConv2D"
        self.filters = check.positive_int(filters, "filters", fn)
        self.kernel_size = tuple(check.int_pair(kernel_size, "kernel_size", fn))
        self.strides = tuple(check.int_pair(strides, "strides", fn))
        self.dilation_rate = tuple(check.int_pair(dilation_rate, "dilation_rate", fn))
        self.padding = check.padding(padding, fn).lower()

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"IntConv2D: input must be NHWC with known channels, got {input_shape}")
        self._build_kernel((*self.kernel_size, int(input_shape[-1]), self.filters))

    def call(self, inputs, training=False):
        y, exponent = layer_ops.conv2d(inputs, self.kernel, self.kernel_exponent, self.strides,
                                       self.padding, self.dilation_rate, self.rounding,
                                       self._rounding_seed(), self.bias, self._error_exponent(training),
                                       relu=self._relu, error_bits=self.error_bits)
        return self._finish(y, exponent)

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, k, s, d in zip(input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // s))
            else:
                spatial.append((size - (k - 1) * d - 1) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation_rate}

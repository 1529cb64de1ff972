"""Integer pooling layers."""

import keras
import tensorflow as tf

from keras_int.layers.base import PACKAGE, QuantizingIntLayer
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops


class IntPool(QuantizingIntLayer):
    def __init__(self, pool_size=2, strides=None, padding="valid", rounding="nearest", seed=None, bits=None,
                 **kwargs):
        super().__init__(rounding=rounding, seed=seed, bits=bits, **kwargs)
        name = type(self).__name__
        self.pool_size = tuple(check.int_pair(pool_size, "pool_size", name))
        self.strides = (self.pool_size if strides is None
                        else tuple(check.int_pair(strides, "strides", name)))
        self.padding = check.padding(padding, name).lower()

    def build(self, input_shape):
        self._build_step_counter()

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, k, s in zip(input_shape[1:3], self.pool_size, self.strides):
            if size is None:
                spatial.append(None)
            else:
                spatial.append(-(-size // s) if self.padding == "same" else (size - k) // s + 1)
        return (input_shape[0], *spatial, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntMaxPool2D(IntPool):
    """Max pooling; the backward pass routes the errors in integers.

    Windows that do not overlap compare the carriers' bit patterns (any
    width); overlapping ones pool ``bits``-bit mantissas (8, or 16 for
    DFP16).

    >>> IntMaxPool2D(2)(keras.random.uniform((1, 4, 4, 3))).shape  # (1, 2, 2, 3)
    """

    def call(self, inputs):
        return layer_ops.max_pool2d(inputs, self.pool_size, self.strides, self.padding, self.bits)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntAveragePooling2D(IntPool):
    """Average pooling: integer window sums times round(2**16 / n), requantised
    to ``bits`` (8, or 16 for DFP16: int64 sums).

    >>> IntAveragePooling2D(2)(keras.random.uniform((1, 4, 4, 3))).shape  # (1, 2, 2, 3)
    """

    def call(self, inputs):
        return layer_ops.avg_pool2d(inputs, self.pool_size, self.strides, self.padding,
                                    self.rounding, self._rounding_seed(), self.bits)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntGlobalAveragePooling2D(QuantizingIntLayer):
    """Mean over height and width of an NHWC carrier, in integers: output ``[N, C]``.

    >>> IntGlobalAveragePooling2D()(keras.random.uniform((2, 4, 4, 3))).shape  # (2, 3)
    """

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:3]):
            raise ValueError("IntGlobalAveragePooling2D: needs NHWC input with known height and "
                             f"width, got {input_shape}")
        self._window = (int(input_shape[1]), int(input_shape[2]))
        self._build_step_counter()

    def call(self, inputs):
        y = layer_ops.avg_pool2d(inputs, self._window, self._window, "valid", self.rounding,
                                 self._rounding_seed(), self.bits)
        return tf.reshape(y, [-1, y.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3])


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntGlobalAveragePooling1D(QuantizingIntLayer):
    """Mean over the sequence axis of a ``[N, steps, C]`` carrier, in integers: output ``[N, C]``.

    The integer sum over the steps, then average pooling's multiply-and-shift
    by the step count (docs/algorithms.md section 3) and one rounding. The
    number of steps must be known when the layer is built; masks are not
    supported (the mean is over every step).

    >>> IntGlobalAveragePooling1D()(keras.random.uniform((2, 6, 3))).shape  # (2, 3)
    """

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError("IntGlobalAveragePooling1D: needs [batch, steps, channels] input with a known number "
                             f"of steps, got {input_shape}")
        self._window = (int(input_shape[1]), 1)
        self._build_step_counter()

    def call(self, inputs):
        steps = tf.expand_dims(inputs, 2)  # [N, steps, 1, C]: a one-column image
        y = layer_ops.avg_pool2d(steps, self._window, self._window, "valid", self.rounding, self._rounding_seed(),
                                 self.bits)
        return tf.reshape(y, [-1, y.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


# The names Keras also gives these layers (keras.layers.MaxPooling2D/AvgPool2D).
IntMaxPooling2D = IntMaxPool2D
IntAvgPool2D = IntAveragePooling2D

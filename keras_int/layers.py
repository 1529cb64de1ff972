"""Integer Keras layers.

Each layer passes float32 *carriers* (values exactly ``q * 2**e``, int8 ``q``)
to the next, so integer and float Keras layers can be mixed; inside, all
arithmetic is integer (see tf_int_ops.layer_ops). The first integer layer
quantises raw float input exactly as docs/algorithms.md section 1 says.

Weights are int8 variables (trainable), exponents are int32 variables
(non-trainable): ``kernel_exponent`` (fixed after initialisation, as in
NITI), ``output_exponent`` (updated by every forward pass) and, for layers
with weights, ``error_exponent`` (updated by every backward pass).
"""

import keras
import numpy as np
import tensorflow as tf

import tf_int_ops
from keras_int import _checkpoint
from tf_int_ops import layer_ops

_PACKAGE = "keras_int"
_INT32_MAX = 2**31 - 1
_INT64 = np.iinfo(np.int64)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_or_pair(value, name, layer):
    """A pair of ints in [1, 2**31 - 1] (the ops' int32 attributes) from an int or a pair."""
    try:
        pair = (value, value) if _is_int(value) else tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and 1 <= v <= _INT32_MAX for v in pair):
        raise ValueError(f"{layer}: {name} must be a positive int or a pair of them, each at most "
                         f"{_INT32_MAX}, got {value!r}")
    return tuple(int(v) for v in pair)


def _padding(padding, layer):
    if not isinstance(padding, str) or padding.lower() not in ("same", "valid"):
        raise ValueError(f"{layer}: padding must be 'same' or 'valid', got {padding!r}")
    return padding.lower()


class _IntLayer(keras.layers.Layer):
    """Shared behaviour: rounding, seeds, exponent variables, no XLA."""

    def __init__(self, rounding="nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        if rounding not in tf_int_ops.ROUNDINGS:
            raise ValueError(f"{type(self).__name__}: rounding must be one of "
                             f"{tf_int_ops.ROUNDINGS}, got {rounding!r}")
        self.rounding = rounding
        if seed is not None and (not _is_int(seed) or not _INT64.min <= seed <= _INT64.max):
            raise ValueError(f"{type(self).__name__}: seed must be None or an int in "
                             f"[{_INT64.min}, {_INT64.max}] (int64), got {seed!r}")
        # A fixed seed keeps stochastic rounding reproducible, also after
        # saving; keras.utils.set_random_seed makes the drawn one reproducible.
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)
        # Custom ops have no XLA kernels.
        self.supports_jit = False

    def _exponent(self, name, value=0):
        return self.add_weight(name=name, shape=(), dtype="int32", trainable=False,
                               initializer=keras.initializers.Constant(value))

    def _build_step_counter(self):
        """A per-call counter for stochastic rounding (or dropout masks) only."""
        if self.rounding != "stochastic" and not isinstance(self, IntDropout):
            return
        self._step = self.add_weight(name="rounding_step", shape=(), dtype="int64",
                                     trainable=False, initializer="zeros")

    def _next_seed(self):
        """[seed, step], a fresh step per call, for stochastic rounding."""
        step = self._step.assign_add(1)
        return tf.stack([tf.constant(self.seed, tf.int64), tf.convert_to_tensor(step)])

    def _rounding_seed(self):
        return self._next_seed() if self.rounding == "stochastic" else None

    def _value_range(self, variable):
        """The values `variable` may hold: what loading weights checks."""
        if variable.name.endswith("exponent"):
            return tf_int_ops.MIN_EXPONENT, tf_int_ops.MAX_EXPONENT
        if variable.name == "rounding_step":
            return _checkpoint.nonnegative_range(variable.dtype)
        # int8 kernels saturate at +-127, int32 biases at +-(2**31 - 1).
        return _checkpoint.symmetric_range(variable.dtype)

    def load_own_variables(self, store):
        """Keras' loading, refusing data of the wrong type or out of range (see _checkpoint)."""
        super().load_own_variables(_checkpoint.CheckedStore(
            store, f"{type(self).__name__} '{self.name}'",
            self._trainable_variables + self._non_trainable_variables, self._value_range))

    def get_config(self):
        return {**super().get_config(), "rounding": self.rounding, "seed": self.seed}


class _WeightedIntLayer(_IntLayer):
    """A layer with an int8 kernel, quantised once from a float initialiser."""

    def __init__(self, kernel_initializer="glorot_uniform", use_bias=False, rounding="nearest",
                 seed=None, **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.use_bias = bool(use_bias)

    def _build_kernel(self, shape):
        with tf.init_scope():
            q, e = tf_int_ops.quantize(
                tf.convert_to_tensor(self.kernel_initializer(shape, dtype="float32")))
        self.kernel = self.add_weight(name="kernel", shape=shape, dtype="int8", trainable=True,
                                      initializer=lambda shape, dtype=None: q)
        self.kernel_exponent = self._exponent("kernel_exponent", int(e))
        # The bias is a weight on a constant input of 1: int32, at the
        # kernel's exponent, starting at zero.
        self.bias = (self.add_weight(name="bias", shape=shape[-1:], dtype="int32", trainable=True,
                                     initializer="zeros") if self.use_bias else None)
        self.output_exponent = self._exponent("output_exponent")
        self.error_exponent = self._exponent("error_exponent")
        self._build_step_counter()

    def _error_exponent(self, training):
        """The variable the layer op's gradient records the error's exponent in (training only)."""
        return self.error_exponent if training else None

    def _finish(self, y, exponent):
        self.output_exponent.assign(exponent)
        return y

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntDense(_WeightedIntLayer):
    """Fully connected layer with an int8 kernel: ``requantize(quantize(x) @ kernel)``.

    Args:
      units: output features.
      kernel_initializer: float initialiser, quantised once to int8.
      use_bias: add an int32 bias kept at the kernel's exponent (NITI has
        none, hence off by default).
      rounding: rounding of the output requantisation ("nearest", as NITI,
        "pseudo_stochastic", "stochastic" or "truncate").
      seed: key of stochastic rounding (an int64; drawn when None).

    >>> layer = IntDense(10)
    >>> y = layer(keras.random.uniform((4, 64)))   # float32 carrier, values q * 2**e
    >>> layer.kernel.dtype                          # 'int8'
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", use_bias=False, rounding="nearest",
                 seed=None, **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, use_bias=use_bias, rounding=rounding,
                         seed=seed, **kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"IntDense: units must be a positive int, got {units!r}")
        self.units = units

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"IntDense: the last input dimension must be known, got {input_shape}")
        self._build_kernel((int(input_shape[-1]), self.units))

    def call(self, inputs, training=False):
        y, exponent = layer_ops.dense(inputs, self.kernel, self.kernel_exponent, self.rounding,
                                      self._rounding_seed(), self.bias, self._error_exponent(training))
        return self._finish(y, exponent)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntConv2D(_WeightedIntLayer):
    """2-D convolution (NHWC) with an int8 kernel, any stride, 'same'/'valid' padding,
    and an optional int32 bias (``use_bias=True``) at the kernel's exponent.

    >>> layer = IntConv2D(32, 3, padding="same")
    >>> y = layer(keras.random.uniform((2, 28, 28, 1)))  # shape (2, 28, 28, 32)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 kernel_initializer="glorot_uniform", use_bias=False, rounding="nearest", seed=None,
                 **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, use_bias=use_bias, rounding=rounding,
                         seed=seed, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"IntConv2D: filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = _int_or_pair(kernel_size, "kernel_size", "IntConv2D")
        self.strides = _int_or_pair(strides, "strides", "IntConv2D")
        self.dilation_rate = _int_or_pair(dilation_rate, "dilation_rate", "IntConv2D")
        self.padding = _padding(padding, "IntConv2D")

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"IntConv2D: input must be NHWC with known channels, got {input_shape}")
        self._build_kernel((*self.kernel_size, int(input_shape[-1]), self.filters))

    def call(self, inputs, training=False):
        y, exponent = layer_ops.conv2d(inputs, self.kernel, self.kernel_exponent, self.strides,
                                       self.padding, self.dilation_rate, self.rounding,
                                       self._rounding_seed(), self.bias, self._error_exponent(training))
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
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


class _IntPool(_IntLayer):
    def __init__(self, pool_size=2, strides=None, padding="valid", rounding="nearest", seed=None,
                 **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        name = type(self).__name__
        self.pool_size = _int_or_pair(pool_size, "pool_size", name)
        self.strides = self.pool_size if strides is None else _int_or_pair(strides, "strides", name)
        self.padding = _padding(padding, name)

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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntMaxPool2D(_IntPool):
    """Max pooling on int8 mantissas; the backward pass routes int8 errors in integers.

    >>> IntMaxPool2D(2)(keras.random.uniform((1, 4, 4, 3))).shape  # (1, 2, 2, 3)
    """

    def call(self, inputs):
        return layer_ops.max_pool2d(inputs, self.pool_size, self.strides, self.padding)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntAveragePooling2D(_IntPool):
    """Average pooling: integer window sums times round(2**16 / n), requantised.

    >>> IntAveragePooling2D(2)(keras.random.uniform((1, 4, 4, 3))).shape  # (1, 2, 2, 3)
    """

    def call(self, inputs):
        return layer_ops.avg_pool2d(inputs, self.pool_size, self.strides, self.padding,
                                    self.rounding, self._rounding_seed())


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntGlobalAveragePooling2D(_IntLayer):
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
                                 self._rounding_seed())
        return tf.reshape(y, [-1, y.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntFlatten(keras.layers.Flatten):
    """Flattens a carrier (a reshape: no arithmetic, exponents unchanged).

    >>> IntFlatten()(keras.random.uniform((2, 3, 3, 4))).shape  # (2, 36)
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntDropout(_IntLayer):
    """Integer dropout with rate ``1 - 2**-k`` (0.5, 0.75, 0.875, ...).

    Kept mantissas are unchanged and the exponent grows by ``k``: the
    ``1 / (1 - rate)`` scaling is exact. The mask is drawn by an integer,
    counter-based generator from ``seed`` and a step counter.

    >>> layer = IntDropout(0.5)
    >>> y = layer(keras.random.uniform((4, 8)), training=True)
    """

    def __init__(self, rate=0.5, seed=None, **kwargs):
        super().__init__(rounding="nearest", seed=seed, **kwargs)
        keep_bits = -np.log2(1.0 - rate) if 0 < rate < 1 else None
        if keep_bits is None or keep_bits != round(keep_bits):
            raise ValueError(f"IntDropout: rate must be 1 - 2**-k (0.5, 0.75, 0.875, ...) so that "
                             f"the rescaling is an exact exponent shift, got {rate!r}")
        self.rate = rate
        self.keep_bits = int(round(keep_bits))

    def build(self, input_shape):
        self._build_step_counter()

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return layer_ops.dropout(inputs, self.keep_bits, self._next_seed())

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("rounding")
        return {**config, "rate": self.rate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntAdd(_IntLayer):
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

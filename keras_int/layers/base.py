"""Shared base classes of the integer layers: rounding, seeds, exponent variables, no XLA.

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
from keras_int.precision import resolve_bits
from tf_int_ops import _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import replicas

PACKAGE = "keras_int"


class IntLayer(keras.layers.Layer):
    """Shared behaviour: rounding, seeds, exponent variables, no XLA."""

    # A layer that needs the per-call step counter whatever its rounding
    # (IntDropout draws its masks from it).
    _counts_steps = False

    def __init__(self, rounding="nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rounding = check.rounding(rounding, type(self).__name__)
        seed = check.seed_key(seed, type(self).__name__)
        # A fixed seed keeps stochastic rounding reproducible, also after
        # saving; keras.utils.set_random_seed makes the drawn one reproducible.
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)
        # Custom ops have no XLA kernels.
        self.supports_jit = False

    def _integer_weight(self, name, shape, dtype, trainable, initializer):
        """An int8/int16 weight: what add_weight makes, in a way the strategy can make it."""
        with replicas.integer_variable_scope():
            return self.add_weight(name=name, shape=shape, dtype=dtype, trainable=trainable, initializer=initializer)

    def _exponent(self, name, value=0):
        return self.add_weight(name=name, shape=(), dtype="int32", trainable=False,
                               initializer=keras.initializers.Constant(value))

    def _build_step_counter(self):
        """A per-call counter for stochastic rounding (or dropout masks) only."""
        if self.rounding != "stochastic" and not self._counts_steps:
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
            _tf_internal.layer_own_variables(self), self._value_range))

    def get_config(self):
        return {**super().get_config(), "rounding": self.rounding, "seed": self.seed}


class QuantizingIntLayer(IntLayer):
    """A layer whose op quantizes its input and requantizes its output: ``bits``
    is the width of those mantissas (8, or 16 for DFP16; None takes
    ``keras_int.default_bits()``, resolved here and saved in the config)."""

    def __init__(self, rounding="nearest", seed=None, bits=None, **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        self.bits = resolve_bits(bits, type(self).__name__)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}


# The activations a layer with weights applies to its output itself (Keras'
# `activation` argument): ReLU keeps the exponent, so the layer op applies it
# in its requantize pass (relu=True), exactly as a ReLU after it would.
ACTIVATIONS = (None, "linear", "relu")


class WeightedIntLayer(QuantizingIntLayer):
    """A layer with an int8 (``bits=16``: int16) kernel, quantised once from a float initialiser,
    and an optional ReLU on its output (``activation="relu"``, as Keras' ``Dense(activation=...)``)."""

    def __init__(self, kernel_initializer="glorot_uniform", use_bias=False, activation=None, rounding="nearest",
                 seed=None, bits=None, error_bits=8, **kwargs):
        super().__init__(rounding=rounding, seed=seed, bits=bits, **kwargs)
        check.bits(error_bits, type(self).__name__ + ": error_bits")
        # The width of the error the gradient quantizes (docs/algorithms.md
        # 5): 16 keeps the error of rows far below the batch's largest.
        self.error_bits = error_bits
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.use_bias = bool(use_bias)
        if activation not in ACTIVATIONS:
            raise ValueError(f"{type(self).__name__}: activation must be one of {ACTIVATIONS} (an integer ReLU; "
                             f"other activations are layers of their own, e.g. IntGELU), got {activation!r}")
        self.activation = None if activation == "linear" else activation

    @property
    def weight_dtype(self):
        """The one place the layers take their weights' mantissa type from: the
        kernel variable's dtype, the bits it is quantised to, and through the
        variable the layer op's T (and with it the width of its input, output
        and error mantissas)."""
        return "int16" if self.bits == 16 else "int8"

    def _build_kernel(self, shape):
        with tf.init_scope():
            q, e = tf_int_ops.quantize(
                tf.convert_to_tensor(self.kernel_initializer(shape, dtype="float32")),
                bits=tf.as_dtype(self.weight_dtype).size * 8)
        self.kernel = self._integer_weight("kernel", shape, self.weight_dtype, True,
                                           lambda shape, dtype=None: q)
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

    @property
    def _relu(self):
        """Whether the layer op applies the ReLU in its requantize pass."""
        return self.activation == "relu"

    def _finish(self, y, exponent):
        self.output_exponent.assign(exponent)
        return y

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias, "activation": self.activation,
                "error_bits": self.error_bits,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}

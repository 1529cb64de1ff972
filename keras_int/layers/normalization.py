"""Integer batch and layer normalization (docs/algorithms.md sections 8 and 9)."""

import math

import keras
import numpy as np
import tensorflow as tf

import tf_int_ops
from keras_int import optimizers
from keras_int.layers.base import PACKAGE, IntLayer
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops
from tf_int_ops.layer_ops import normalization as norm_ops


def _statistic(values):
    """Float initial values -> (int32 mantissas of at most 30 bits, exponent); all zero -> exponent 0.

    Runs once when the layer is built (a boundary conversion, like a
    kernel's quantize), never in a training step.
    """
    values = np.asarray(values, np.float64)
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0:
        return np.zeros(values.shape, np.int32), 0
    exponent = math.frexp(largest)[1] - tf_int_ops.NORM_STATISTIC_BITS
    return np.round(values * 2.0**-exponent).astype(np.int32), exponent


def _scale_and_offset(layer, shape):
    """gamma (int8, quantised once from the initialiser, or 1 when not scaled) and its exponent,
    and beta (int32 at gamma's exponent minus F, 0 when not centred), as int weights of `layer`."""
    with tf.init_scope():
        gamma_float = (layer.gamma_initializer(shape, dtype="float32") if layer.scale
                       else tf.ones(shape, tf.float32))
        gamma_q, gamma_e = tf_int_ops.quantize(tf.convert_to_tensor(gamma_float))
        gamma_q, gamma_e = gamma_q.numpy(), int(gamma_e)
        beta_float = (layer.beta_initializer(shape, dtype="float32") if layer.center
                      else tf.zeros(shape, tf.float32))
        beta_exponent = gamma_e - tf_int_ops.NORM_FRACTION_BITS
        beta_q = np.clip(np.round(np.asarray(beta_float, np.float64) * 2.0**-beta_exponent),
                         -(2**31 - 1), 2**31 - 1).astype(np.int32)
    layer.gamma = layer._integer_weight("gamma", shape, "int8", layer.scale, lambda shape, dtype=None: gamma_q)
    layer.gamma_exponent = layer._exponent("gamma_exponent", gamma_e)
    layer.beta = layer.add_weight(name="beta", shape=shape, dtype="int32", trainable=layer.center,
                                  initializer=lambda shape, dtype=None: beta_q)


def _last_axis_features(layer, input_shape, min_rank):
    """The size of the last axis, the only normalised/channel axis supported."""
    name = type(layer).__name__
    rank = len(input_shape)
    if rank < min_rank:
        raise ValueError(f"{name}: the input must have rank >= {min_rank}, got shape {input_shape}")
    if layer.axis not in (-1, rank - 1):
        raise ValueError(f"{name}: only the last axis is supported (axis=-1 or {rank - 1}), got axis={layer.axis}")
    if input_shape[-1] is None:
        raise ValueError(f"{name}: the last dimension must be known, got {input_shape}")
    return int(input_shape[-1])


def _check_axis(axis, name):
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"{name}: axis must be an int (the last axis), got {axis!r}")
    return axis


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntBatchNormalization(IntLayer):
    """Batch normalization in integers, with the arguments of ``keras.layers.BatchNormalization``.

    Training (``training=True``, as in ``fit``) normalises each channel with
    the batch's statistics: exact int64 sums, an integer inverse square root
    (relative error below 2**-28), ``gamma * xhat + beta`` requantized to an
    int8 carrier, and an integer backward pass; it also updates the moving
    mean and variance (int32 mantissas with exponents) with the integer
    momentum ``round(momentum * 2**16) / 2**16``. Inference (``evaluate``,
    ``predict``) uses the moving statistics.

    ``gamma`` is an int8 weight (quantised once from ``gamma_initializer``,
    exponent fixed, as kernels are); ``beta`` is int32 at gamma's exponent
    minus 8 (the accumulator's). IntegerSGD updates both.

    Args:
      axis: the channel axis; only the last axis (-1 or rank - 1) is supported.
      momentum: of the moving averages, in [0, 1].
      epsilon: added to the variance, > 0 (kept as a 15-bit integer pair).
      center: learn beta (else beta stays 0).
      scale: learn gamma (else gamma stays 1).
      rounding, seed: of the output requantisation (see IntDense).

    As in Keras, a frozen layer (``trainable=False``) runs in inference mode
    with its moving statistics even inside ``fit``, and passes the error
    back (``dy * gamma / sigma``, in integers) to the layers before it.

    Limits: a training batch has at most 2**23 rows per channel.

    >>> layer = IntBatchNormalization()
    >>> y = layer(keras.random.uniform((8, 4, 4, 16)), training=True)
    >>> layer.moving_mean.dtype            # 'int32'
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", rounding="nearest", seed=None, **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        name = type(self).__name__
        self.axis = _check_axis(axis, name)
        self.momentum = check.fraction(momentum, "momentum", name)
        self.epsilon = check.positive_float(epsilon, "epsilon", name)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self._epsilon_pair = norm_ops.epsilon_pair(self.epsilon, name)
        self._momentum_q16 = norm_ops.momentum_fraction(self.momentum, name)

    def build(self, input_shape):
        shape = (_last_axis_features(self, input_shape, 2),)
        _scale_and_offset(self, shape)
        with tf.init_scope():
            mean_q, mean_e = _statistic(self.moving_mean_initializer(shape, dtype="float32"))
            variance_q, variance_e = _statistic(self.moving_variance_initializer(shape, dtype="float32"))
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, dtype="int32", trainable=False,
                                           initializer=lambda shape, dtype=None: mean_q)
        self.moving_mean_exponent = self.add_weight(
            name="moving_mean_exponent", shape=(), dtype="int32", trainable=False,
            initializer=keras.initializers.Constant(mean_e))
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape, dtype="int32", trainable=False,
                                               initializer=lambda shape, dtype=None: variance_q)
        self.moving_variance_exponent = self.add_weight(
            name="moving_variance_exponent", shape=(), dtype="int32", trainable=False,
            initializer=keras.initializers.Constant(variance_e))
        self.output_exponent = self._exponent("output_exponent")
        self.error_exponent = self._exponent("error_exponent")
        self._build_step_counter()

    def call(self, inputs, training=None):
        common = {"epsilon": self._epsilon_pair, "rounding": self.rounding, "seed": self._rounding_seed()}
        # As keras.layers.BatchNormalization: a frozen layer (trainable=False)
        # runs in inference mode even in fit, and passes the error back.
        if training and self.trainable:
            out = layer_ops.batch_norm(inputs, self.gamma, self.beta, self.gamma_exponent, training=True,
                                       error_exponent=self.error_exponent, **common)
            for moving, exponent, key in ((self.moving_mean, self.moving_mean_exponent, "batch_mean"),
                                          (self.moving_variance, self.moving_variance_exponent, "batch_variance")):
                new, new_exponent = layer_ops.moving_average(
                    moving, exponent, out[key], out[key + "_exponent"], self._momentum_q16)
                moving.assign(new)
                exponent.assign(new_exponent)
        else:
            out = layer_ops.batch_norm(
                inputs, self.gamma, self.beta, self.gamma_exponent, training=False,
                moving_mean=self.moving_mean, moving_mean_exponent=self.moving_mean_exponent,
                moving_variance=self.moving_variance, moving_variance_exponent=self.moving_variance_exponent,
                **common)
        self.output_exponent.assign(out["y_exponent"])
        return out["y"]

    def _value_range(self, variable):
        if variable.name in ("moving_mean_exponent", "moving_variance_exponent"):
            limit = tf_int_ops.NORM_STATISTIC_EXPONENT_LIMIT
            return -limit, limit
        if variable.name == "moving_variance":
            return 0, 2**31 - 1
        return super()._value_range(variable)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            "beta_initializer": keras.initializers.serialize(self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": keras.initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": keras.initializers.serialize(self.moving_variance_initializer),
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntLayerNormalization(IntLayer):
    """Layer normalization in integers, with the arguments of ``keras.layers.LayerNormalization``.

    Each row (all axes but the last) is normalised over its last axis:
    exact int64 sums, the integer inverse square root of batch norm
    (relative error below 2**-28), ``gamma * xhat + beta`` requantized to an
    int8 carrier, and an integer backward pass (docs/algorithms.md section
    9). Training and inference compute the same thing.

    ``gamma`` is an int8 weight (quantised once from ``gamma_initializer``,
    exponent fixed); ``beta`` is int32 at gamma's exponent minus 8.
    IntegerSGD and IntegerAdam update both; IntegerAdam with step offsets
    -4 (gamma) and +4 (beta), so that both move by ``2**(e_g - 4)`` in
    value per full step (``optimizers.set_step_bits_offset``).

    Args:
      axis: the normalised axis; only the last axis (-1 or rank - 1).
      epsilon: added to the variance, > 0 (kept as a 15-bit integer pair).
      center: learn beta (else beta stays 0).
      scale: learn gamma (else gamma stays 1).
      rounding, seed: of the output requantisation (see IntDense).
      error_bits: 16 (default) or 8, the mantissa width of the error the
        backward pass hands to the layer before. One exponent serves the
        whole batch, and at 8 bits the error of a row with a large spread
        (small ``1 / sigma``) rounds away; in a pre-norm transformer that
        is the residual stream's error. Measured (benchmarks/README.md):
        the example ViT on Fashion-MNIST 0.796 with 16 bits, 0.770 with 8
        (5 seeds); with IntegerSGD on the digits 16 bits were 2 points lower.

    Limits: at most 2**23 features per row and 2**23 rows.

    >>> layer = IntLayerNormalization()
    >>> y = layer(keras.random.uniform((8, 16, 32)))
    >>> layer.gamma.dtype                  # 'int8'
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", rounding="nearest", seed=None, error_bits=16, **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        name = type(self).__name__
        check.bits(error_bits, name + ": error_bits")
        self.error_bits = error_bits
        self.axis = _check_axis(axis, name)
        self.epsilon = check.positive_float(epsilon, "epsilon", name)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self._epsilon_pair = norm_ops.epsilon_pair(self.epsilon, name)

    def build(self, input_shape):
        _scale_and_offset(self, (_last_axis_features(self, input_shape, 1),))
        # IntegerAdam steps gamma and beta by 2**(e_g - 4) in value (2**-10
        # for gamma's 1.0 at -6), not by gamma's int8 unit (2**-6) and
        # beta's (2**-14): measured, docs/algorithms.md 14.
        optimizers.set_step_bits_offset(self.gamma, -4)
        optimizers.set_step_bits_offset(self.beta, 4)
        self.output_exponent = self._exponent("output_exponent")
        self.error_exponent = self._exponent("error_exponent")
        self._build_step_counter()

    def call(self, inputs, training=None):
        y, exponent = layer_ops.layer_norm(inputs, self.gamma, self.beta, self.gamma_exponent, self._epsilon_pair,
                                           self.rounding, self._rounding_seed(),
                                           self.error_exponent if training else None, self.error_bits)
        self.output_exponent.assign(exponent)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
            "error_bits": self.error_bits,
            "scale": self.scale, "beta_initializer": keras.initializers.serialize(self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
        }

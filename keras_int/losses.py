"""The integer cross-entropy loss."""

import keras
import tensorflow as tf

from keras_int.precision import resolve_bits
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops
from tf_int_ops.layer_ops.losses import checked_error_exponent


_NAME = "IntegerCrossEntropy"
ERROR_ROUNDINGS = ("pseudo_stochastic", "stochastic")


def _sparse_labels(y_true, y_pred):
    """Class indices [batch] as int64 from labels of shape [batch] or [batch, 1].

    Keras hands labels over as floats: they must be whole numbers (the class
    range is checked by the gradient op).
    """
    shape = y_true.shape
    if shape.rank is not None and not (shape.rank == 1 or (shape.rank == 2 and shape[-1] in (1, None))):
        hint = "; for one-hot labels pass sparse=False" if shape.rank == 2 else ""
        raise ValueError(f"{_NAME}: sparse labels must be class indices of shape [batch] or "
                         f"[batch, 1], got shape {shape}{hint}")
    labels = tf.reshape(y_true, [-1])
    if labels.shape[0] is not None and y_pred.shape[0] is not None and labels.shape[0] != y_pred.shape[0]:
        raise ValueError(f"{_NAME}: {labels.shape[0]} labels for {y_pred.shape[0]} rows of logits")
    checks = [tf.debugging.assert_equal(
        tf.size(labels), tf.shape(y_pred)[0],
        message=f"{_NAME}: the number of labels (first) must match the rows of logits (second)")]
    if labels.dtype.is_floating:
        checks.append(tf.debugging.assert_equal(
            labels, tf.round(labels),
            message=f"{_NAME}: sparse labels must be whole class indices (no NaN or fractions)"))
    with tf.control_dependencies(checks):
        return tf.cast(labels, tf.int64)


def _one_hot_labels(y_true, y_pred):
    """Class indices [batch] as int64 from one-hot labels [batch, classes].

    The integer gradient knows hard labels only: each row must hold a single
    1 and zeros (soft labels, NaN are errors).
    """
    if y_true.shape.rank is not None and y_true.shape.rank != 2:
        raise ValueError(f"{_NAME}: one-hot labels must have shape [batch, classes], got shape "
                         f"{y_true.shape}")
    width, classes = y_true.shape[-1], y_pred.shape[-1]
    if width is not None and classes is not None and width != classes:
        raise ValueError(f"{_NAME}: one-hot labels have width {width} but the logits have {classes} "
                         f"classes (shapes {y_true.shape} and {y_pred.shape})")
    if y_true.shape[0] is not None and y_pred.shape[0] is not None and y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"{_NAME}: {y_true.shape[0]} one-hot labels for {y_pred.shape[0]} rows of "
                         "logits")
    zero_or_one = tf.logical_or(tf.equal(y_true, 0), tf.equal(y_true, 1))
    checks = [
        tf.debugging.assert_equal(
            tf.shape(y_true), tf.shape(y_pred),
            message=f"{_NAME}: one-hot labels (first: [batch, width]) and logits (second: "
                    "[batch, classes]) must have the same shape"),
        tf.debugging.assert_equal(
            tf.logical_and(tf.reduce_all(zero_or_one, axis=-1),
                           tf.equal(tf.reduce_sum(y_true, axis=-1), 1)),
            True,
            message=f"{_NAME}: one-hot labels must hold a single 1 and zeros in each row (rows "
                    "marked False are not; for soft labels there is no integer gradient)"),
    ]
    with tf.control_dependencies(checks):
        return tf.argmax(y_true, axis=-1)


def batch_fingerprint(labels, logits):
    """The step word of a stochastic error's key (docs/algorithms.md 4): with w the
    float32 bits of the logits, row-major, and h(w) = (w & 0xFFFF) ^ ((w >> 16) & 0xFFFF),
    sum_i h(w_i) * (i mod 65521 + 1) + sum_b labels_b * (b + 1), in int64 (no wrap:
    each term is below 2**32)."""
    words = tf.cast(tf.reshape(tf.bitcast(logits, tf.int32), [-1]), tf.int64)
    halves = tf.bitwise.bitwise_xor(tf.bitwise.bitwise_and(words, 0xFFFF),
                                    tf.bitwise.bitwise_and(tf.bitwise.right_shift(words, 16), 0xFFFF))
    weights = tf.math.floormod(tf.range(tf.size(words, out_type=tf.int64), dtype=tf.int64), 65521) + 1
    labels = tf.cast(labels, tf.int64)
    return (tf.reduce_sum(halves * weights)
            + tf.reduce_sum(labels * tf.range(1, tf.size(labels, out_type=tf.int64) + 1, dtype=tf.int64)))


@keras.saving.register_keras_serializable(package="keras_int")
class IntegerCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy whose gradient is NITI's integer one (docs/algorithms.md 4).

    The loss *values* Keras shows are computed in float32 for display only;
    training uses the integer gradient (pseudo-stochastic rounding, so it is
    bit-reproducible). Labels are class indices by default, like
    ``SparseCategoricalCrossentropy``; pass ``sparse=False`` for one-hot labels.
    ``bits=16`` (DFP16) reads the logits as int16 mantissas and gives an
    int16 error at exponent -15; None takes ``keras_int.default_bits()``.
    ``error_exponent="fixed"`` is NITI's int8 error at exponent -7, in which
    errors below ``2**-8`` are zero; ``"dynamic"`` computes the error with 15
    fraction bits and requantizes it to 8 bits on its largest magnitude, so a
    confident batch keeps its small errors (docs/algorithms.md 4).
    ``rounding`` rounds the error: "pseudo_stochastic" (NITI's, the default)
    or "stochastic" (Philox bits keyed by ``seed`` and a fingerprint of the
    batch, since a loss keeps no step counter: docs/algorithms.md 4).

    >>> model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
    ...               loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    """

    def __init__(self, sparse=True, reduction="sum_over_batch_size", name="integer_cross_entropy",
                 dtype=None, bits=None, error_exponent="fixed", rounding="pseudo_stochastic", seed=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.sparse = bool(sparse)
        self.bits = resolve_bits(bits, _NAME)
        self.error_exponent = checked_error_exponent(error_exponent, _NAME)
        self.rounding = check.rounding(rounding, _NAME, ERROR_ROUNDINGS)
        self.seed = check.seed_key(seed, _NAME)
        if self.rounding == "stochastic" and self.seed is None:
            raise ValueError(f"{_NAME}: stochastic rounding needs a seed (an int)")

    def call(self, y_true, y_pred):
        y_true, y_pred = tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred)
        if y_pred.shape.rank is not None and y_pred.shape.rank != 2:
            raise ValueError(f"{_NAME}: y_pred must be logits of shape [batch, classes], got shape "
                             f"{y_pred.shape}")
        labels = _sparse_labels(y_true, y_pred) if self.sparse else _one_hot_labels(y_true, y_pred)
        seed = None
        if self.rounding == "stochastic":
            seed = tf.stack([tf.constant(self.seed, tf.int64), batch_fingerprint(labels, y_pred)])
        return layer_ops.softmax_cross_entropy(labels, y_pred, rounding=self.rounding, seed=seed, bits=self.bits,
                                               error_exponent=self.error_exponent)

    def get_config(self):
        return {**super().get_config(), "sparse": self.sparse, "bits": self.bits,
                "error_exponent": self.error_exponent, "rounding": self.rounding, "seed": self.seed}

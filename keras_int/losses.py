"""The integer cross-entropy loss."""

import keras
import tensorflow as tf

from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package="keras_int")
class IntegerCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy whose gradient is NITI's integer one (ALGORITHMS.md 4).

    The loss *values* Keras shows are computed in float32 for display only;
    training uses the integer gradient (pseudo-stochastic rounding, so it is
    bit-reproducible). Labels are class indices by default, like
    ``SparseCategoricalCrossentropy``; pass ``sparse=False`` for one-hot labels.

    >>> model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
    ...               loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    """

    def __init__(self, sparse=True, reduction="sum_over_batch_size", name="integer_cross_entropy",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.sparse = bool(sparse)

    def call(self, y_true, y_pred):
        if self.sparse:
            # Keras hands labels over as floats; they are whole numbers.
            labels = tf.cast(tf.reshape(y_true, [-1]), tf.int64)
        else:
            labels = tf.argmax(y_true, axis=-1)
        return layer_ops.softmax_cross_entropy(labels, y_pred)

    def get_config(self):
        return {**super().get_config(), "sparse": self.sparse}

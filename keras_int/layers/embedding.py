"""Integer embedding layers: token and position tables of int8 rows (docs/algorithms.md section 12)."""

import keras
import tensorflow as tf

import tf_int_ops
from keras_int.layers.base import PACKAGE, IntLayer
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops


class _Table(IntLayer):
    """An int8 table quantised once from a float initialiser, exponent fixed (as a kernel)."""

    def _build_table(self, shape, initializer):
        with tf.init_scope():
            q, e = tf_int_ops.quantize(tf.convert_to_tensor(initializer(shape, dtype="float32")))
        self.embeddings = self._integer_weight("embeddings", shape, "int8", True, lambda shape, dtype=None: q)
        self.embeddings_exponent = self._exponent("embeddings_exponent", int(e))
        self.error_exponent = self._exponent("error_exponent")

    def _lookup(self, ids, training):
        y, _ = layer_ops.embedding(ids, self.embeddings, self.embeddings_exponent,
                                   self.error_exponent if training else None)
        return y


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntEmbedding(_Table):
    """Token embedding with an int8 table, as ``keras.layers.Embedding``.

    The lookup copies int8 rows into a float32 carrier (exact); the table's
    gradient is int32, the integer errors of the looked-up rows added into
    their ids' rows, and IntegerSGD updates the table like a kernel.

    Args:
      input_dim: vocabulary size (ids in ``[0, input_dim)``; others are an error).
      output_dim: embedding width.
      embeddings_initializer: float initialiser, quantised once to int8. Its
        largest value fixes the table's exponent for good, so the table can
        never hold more than about that value (127 units): Keras' "uniform"
        (+-0.05) caps it at 127 * 2**-11 = 0.062 with steps of 2**-11, where a
        float table may grow. Pick the scale the trained table needs (the
        example text model measured both; benchmarks/README.md).
      mask_zero: whether id 0 is padding: the layer then returns a mask
        (``compute_mask``), which attention layers take.

    >>> layer = IntEmbedding(1000, 32)
    >>> y = layer(keras.ops.convert_to_tensor([[4, 20, 7]]))    # (1, 3, 32) carrier
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.input_dim = check.positive_int(input_dim, "input_dim", name)
        self.output_dim = check.positive_int(output_dim, "output_dim", name)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)

    def build(self, input_shape):
        self._build_table((self.input_dim, self.output_dim), self.embeddings_initializer)

    def call(self, inputs, training=False):
        ids = tf.convert_to_tensor(inputs)
        if not ids.dtype.is_integer:
            ids = tf.cast(ids, tf.int32)  # Keras feeds float ids when a model's input is float
        elif ids.dtype not in (tf.int32, tf.int64):
            ids = tf.cast(ids, tf.int64)
        return self._lookup(ids, training)

    def compute_mask(self, inputs, mask=None):
        return keras.ops.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntPositionEmbedding(_Table):
    """A learned position table (int8), as keras_hub's ``PositionEmbedding``.

    Called on a ``[batch, steps, dim]`` carrier, it returns the table's first
    ``steps`` rows broadcast to that shape (``steps <= sequence_length``), to
    be added: ``h = IntAdd()([h, IntPositionEmbedding(n)(h)])``. The gradient
    sums the integer errors of every batch entry into the positions' rows.

    Args:
      sequence_length: the most positions.
      initializer: float initialiser of the table, quantised once to int8.

    >>> h = keras.random.uniform((2, 10, 16))
    >>> p = IntPositionEmbedding(32)(h)    # (2, 10, 16)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check.positive_int(sequence_length, "sequence_length", type(self).__name__)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"IntPositionEmbedding: needs [..., steps, dim] input with a known dim, got {input_shape}")
        self._build_table((self.sequence_length, int(input_shape[-1])), self.initializer)

    def call(self, inputs, training=False):
        shape = tf.shape(inputs)
        steps = shape[-2]
        tf.debugging.assert_less_equal(steps, self.sequence_length,
                                       message=f"IntPositionEmbedding: more steps than sequence_length "
                                               f"{self.sequence_length}")
        ids = tf.broadcast_to(tf.range(steps), shape[:-1])
        return self._lookup(ids, training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer)}

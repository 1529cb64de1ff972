"""Integer multi-head attention (docs/algorithms.md section 13)."""

import keras
import tensorflow as tf

from keras_int.layers.base import PACKAGE, IntLayer
from keras_int.layers.core import IntDense
from keras_int.layers.regularization import IntDropout
from tf_int_ops import _validation as check
from tf_int_ops.layer_ops import attention as attention_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntMultiHeadAttention(IntLayer):
    """Multi-head attention in integers, with the arguments and call of ``keras.layers.MultiHeadAttention``.

    The query, key, value and output projections are ``IntDense`` layers;
    ``Q K^T`` and the attention-weighted sum ``P V`` are exact int8 x int8 ->
    int32 products of two activation tensors, requantized; the softmax is
    integer (base-2 exponentials from an 8-bit fraction table, integer
    normalisation) with ``1 / sqrt(key_dim)`` folded in exactly (a power of
    two, times a 15-bit integer where key_dim is not a power of 4) and
    masks applied in integers. The backward pass of every step is integer.

    Args:
      num_heads, key_dim, value_dim (default key_dim), output_shape (default:
        the query's last dimension), use_bias, kernel_initializer: as in Keras.
      dropout: on the attention probabilities; 0 or ``1 - 2**-k``
        (IntDropout's exact rates).
      rounding, seed: of every requantisation (see IntDense).
      error_bits: of the four projections' backward passes (see IntDense;
        16 by default).

    Call: ``layer(query, value, key=None, attention_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)``;
    ``attention_mask`` is a boolean ``[batch, T_query, T_value]`` (True:
    attend). Keras' implicit query/value masks are not read.

    >>> layer = IntMultiHeadAttention(num_heads=2, key_dim=16)
    >>> x = keras.random.uniform((4, 8, 32))
    >>> y = layer(x, x, use_causal_mask=True)     # (4, 8, 32)
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=False, output_shape=None,
                 kernel_initializer="glorot_uniform", rounding="nearest", seed=None, error_bits=16, **kwargs):
        super().__init__(rounding=rounding, seed=seed, **kwargs)
        name = type(self).__name__
        check.bits(error_bits, name + ": error_bits")
        self.error_bits = error_bits
        self.num_heads = check.positive_int(num_heads, "num_heads", name)
        self.key_dim = check.positive_int(key_dim, "key_dim", name)
        self.value_dim = self.key_dim if value_dim is None else check.positive_int(value_dim, "value_dim", name)
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is not None and not isinstance(output_shape, int):
            output_shape = tuple(output_shape)
            if len(output_shape) != 1:
                raise ValueError(f"{name}: output_shape must be an int (the output's last dimension), "
                                 f"got {output_shape!r}")
            output_shape = output_shape[0]
        self.output_shape_ = None if output_shape is None else check.positive_int(output_shape, "output_shape",
                                                                                   name)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._scale = attention_ops.attention_scale(self.key_dim)
        self._dropout_layer = IntDropout(self.dropout, seed=(self.seed + 5) % (2**31 - 1)) if self.dropout else None

    def _dense(self, units, name, index):
        # Each projection its own stochastic-rounding key (seed + index), so
        # that their rounding draws differ.
        return IntDense(units, kernel_initializer=keras.initializers.get(keras.initializers.serialize(
            self.kernel_initializer)), use_bias=self.use_bias, rounding=self.rounding,
            seed=(self.seed + index) % (2**31 - 1), error_bits=self.error_bits, name=name)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for shape, what in ((query_shape, "query"), (value_shape, "value"), (key_shape, "key")):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f"IntMultiHeadAttention: {what} must be [batch, steps, dim] with a known dim, "
                                 f"got {shape}")
        heads = self.num_heads
        self._query_dense = self._dense(heads * self.key_dim, "query", 1)
        self._key_dense = self._dense(heads * self.key_dim, "key", 2)
        self._value_dense = self._dense(heads * self.value_dim, "value", 3)
        self._output_dense = self._dense(self.output_shape_ or int(query_shape[-1]), "attention_output", 4)
        self._query_dense.build(query_shape)
        self._key_dense.build(key_shape)
        self._value_dense.build(value_shape)
        self._output_dense.build((*query_shape[:-1], heads * self.value_dim))
        if self._dropout_layer is not None:
            self._dropout_layer.build(None)
        self.attention_exponent = self._exponent("attention_exponent")
        self._build_step_counter()

    def _heads(self, x, size):
        """[B, T, H * size] -> [B, H, T, size]."""
        shape = tf.shape(x)
        return tf.transpose(tf.reshape(x, [shape[0], shape[1], self.num_heads, size]), [0, 2, 1, 3])

    def _mask(self, attention_mask, use_causal_mask, query, value):
        """The boolean [B, 1, Tq, Tv] mask (True: attend), or None."""
        mask = None
        if attention_mask is not None:
            mask = tf.convert_to_tensor(attention_mask)
            if mask.dtype != tf.bool:
                mask = tf.not_equal(mask, tf.zeros_like(mask))
            if mask.shape.rank == 2:
                mask = mask[:, tf.newaxis, :]  # [B, Tv]: every query
            expected = (query.shape[1], value.shape[1])
            if mask.shape.rank != 3 or any(m is not None and e is not None and m not in (e, 1)
                                           for m, e in zip(mask.shape[1:], expected)):
                raise ValueError(f"IntMultiHeadAttention: attention_mask must be [batch, T_query, T_value] = "
                                 f"[batch, {expected[0]}, {expected[1]}] (or [batch, T_value]), got {mask.shape}")
            mask = mask[:, tf.newaxis]
        if use_causal_mask:
            tq, tv = tf.shape(query)[1], tf.shape(value)[1]
            causal = tf.range(tq)[:, tf.newaxis] >= tf.range(tv)[tf.newaxis, :]
            causal = causal[tf.newaxis, tf.newaxis]
            mask = causal if mask is None else tf.logical_and(mask, causal)
        return mask

    def call(self, query, value, key=None, attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        key = value if key is None else key
        q = self._heads(self._query_dense(query, training=training), self.key_dim)
        k = self._heads(self._key_dense(key, training=training), self.key_dim)
        v = self._heads(self._value_dense(value, training=training), self.value_dim)
        seed = self._rounding_seed()
        # The scores, the softmax and the weighted sum each draw with their own key.
        seeds = [None] * 3 if seed is None else [seed + tf.constant([i, 0], tf.int64) for i in range(3)]
        scores, _ = attention_ops.matmul(q, k, transpose_b=True, rounding=self.rounding, seed=seeds[0])
        mask = self._mask(attention_mask, use_causal_mask, query, value)
        if mask is not None:
            mask = tf.broadcast_to(mask, tf.shape(scores))
        probabilities, exponent = attention_ops.softmax(scores, mask, self._scale, self.rounding, seeds[1])
        self.attention_exponent.assign(exponent)
        attended = probabilities
        if self._dropout_layer is not None:
            attended = self._dropout_layer(attended, training=training)
        out, _ = attention_ops.matmul(attended, v, rounding=self.rounding, seed=seeds[2])
        shape = tf.shape(out)
        out = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [shape[0], shape[2], self.num_heads * self.value_dim])
        out = self._output_dense(out, training=training)
        return (out, probabilities) if return_attention_scores else out

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return (*query_shape[:-1], self.output_shape_ or query_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_shape_, "error_bits": self.error_bits,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}

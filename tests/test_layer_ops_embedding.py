"""Embedding lookups and their int32 table gradient (docs/algorithms.md section 12)."""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops

BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("ids_shape", [(5,), (2, 7), (3, 1, 4), (0,)])
def test_lookup_and_gradient_bit_exact(rng, id_dtype, ids_shape):
    table = tf.Variable(rng.integers(-127, 128, (11, 6)).astype(np.int8))
    ids = rng.integers(0, 11, ids_shape).astype(id_dtype)
    if ids.size > 2:
        ids.flat[:2] = 3  # repeated ids add their errors
    dy = _carrier(rng, (*ids_shape, 6), -9)
    recorded = tf.Variable(99)
    with tf.GradientTape() as tape:
        y, e = layer_ops.embedding(ids, table, -7, recorded)
        loss = tf.reduce_sum(y * dy)
    dtable = tape.gradient(loss, table)
    np.testing.assert_array_equal(y.numpy(), ref.embedding(ids, table.numpy(), -7))
    assert int(e) == -7 and y.shape == (*ids_shape, 6)
    err, e_err = ref.quantize(dy)
    assert dtable.dtype == tf.int32
    np.testing.assert_array_equal(dtable.numpy(), ref.embedding_grad(err, ids, 11))
    if ids.size:
        assert int(recorded.numpy()) == e_err


def test_bad_ids_and_tables(rng):
    table = tf.Variable(np.ones((4, 3), np.int8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"id 4 at position 2 is out of range \[0, 4\)"):
        layer_ops.embedding(tf.constant([0, 1, 4]), table, 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"id -1 at position 0"):
        layer_ops.embedding(tf.constant([[-1, 1]], tf.int64), table, 0)
    with pytest.raises(BAD, match="ids must be int32 or int64"):
        layer_ops.embedding(tf.constant([0.0]), table, 0)
    with pytest.raises(BAD, match="table must be an int8 variable"):
        layer_ops.embedding(tf.constant([0]), tf.Variable(np.ones((4, 3), np.int32)), 0)
    with pytest.raises(BAD, match="table must be a matrix"):
        layer_ops.embedding(tf.constant([0]), tf.Variable(np.ones((4,), np.int8)), 0)
    with pytest.raises(BAD, match="(?i)exponent"):
        layer_ops.embedding(tf.constant([0]), table, 500)
    raw = layer_ops._loader.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="id 9 at position 1"):
        raw.int_ops_embedding_grad(np.ones((2, 3), np.float32), np.array([0, 9], np.int32), 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be the ids' shape"):
        raw.int_ops_embedding_grad(np.ones((2, 3), np.float32), np.array([0, 1, 2], np.int32), 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab must be a scalar >= 0"):
        raw.int_ops_embedding_grad(np.ones((2, 3), np.float32), np.array([0, 1], np.int32), -1)

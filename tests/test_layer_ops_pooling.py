"""Carrier ops of the pooling family (tf_int_ops/layer_ops/pooling.py) and their gradients.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("x_shape,pool,strides,padding", [
    ((2, 8, 8, 3), (2, 2), (2, 2), "VALID"),
    ((3, 9, 7, 5), (2, 3), (3, 3), "SAME"),
    ((1, 5, 5, 4), (3, 3), (3, 4), "VALID"),
    ((2, 7, 7, 2), (1, 1), (2, 2), "SAME"),
])
@pytest.mark.parametrize("value_range", [2, 127])  # the narrow range makes ties
def test_max_pool_on_carrier_bits_matches_the_int8_path(rng, x_shape, pool, strides, padding, value_range):
    # Non-overlapping windows pool the carrier's bit patterns; the result and
    # the gradient must be those of quantize -> int8 pool -> int8 routing,
    # bit for bit (with -0.0 and +0.0 mixed in).
    x = _carrier(rng, x_shape, -5, -value_range, value_range)
    x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y = layer_ops.max_pool2d(x_t, pool, strides, padding)
        dy = tf.constant(_carrier(rng, y.shape, -8))
        loss = tf.reduce_sum(y * dy)
    dx = tape.gradient(loss, x_t)
    assert "IntOps>MaxPoolCarrier" in {op.type for op in tf.function(
        lambda v: layer_ops.max_pool2d(v, pool, strides, padding)).get_concrete_function(x_t).graph.get_operations()}
    q, e = ref.quantize(x)
    want_y = ref.dequantize(ref.max_pool(q, pool, strides, padding), e)
    err, err_e = ref.quantize(dy.numpy())
    acc = ref.max_pool_grad(q, err, pool, strides, padding)
    want_dx = ref.dequantize(*ref.requantize(acc, err_e))
    np.testing.assert_array_equal(y.numpy().view(np.int32), want_y.view(np.int32))
    np.testing.assert_array_equal(dx.numpy().view(np.int32), want_dx.view(np.int32))


@pytest.mark.parametrize("shape,where", [((1, 2, 2, 1), (0, 0, 1, 0)),   # windows tile the input
                                         ((2, 3, 3, 2), (1, 2, 2, 1)),   # in the border VALID drops
                                         ((2, 3, 3, 2), (1, 0, 1, 0))])  # inside a window, border dropped
def test_max_pool_on_carrier_bits_rejects_nan(shape, where):
    x = np.ones(shape, np.float32)
    x[where] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        layer_ops.max_pool2d(tf.constant(x), 2)

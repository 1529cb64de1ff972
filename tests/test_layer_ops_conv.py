"""Carrier op of the convolution family (tf_int_ops/layer_ops/conv.py) and its gradient.

The integer backward passes are compared bit-exactly with the reference, and
the carrier gradients with TensorFlow's float autodiff, within the quantisation error.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
from conftest import carrier as _carrier
from tf_int_ops import layer_ops


@pytest.mark.parametrize("strides,padding", [(1, "SAME"), (2, "SAME"), (2, "VALID"), (1, "VALID")])
def test_conv2d_forward_and_gradients(rng, strides, padding):
    x = _carrier(rng, (3, 9, 8, 2), -7, 0, 127)
    w_np = rng.integers(-127, 128, (3, 3, 2, 4)).astype(np.int8)
    w, w_exp = tf.Variable(w_np), -8
    x_t = tf.constant(x)
    y_shape = tf.nn.conv2d(x, w_np.astype(np.float32), strides, padding).shape
    dy = _carrier(rng, y_shape, -10)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y, _ = layer_ops.conv2d(x_t, w, w_exp, strides, padding)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [x_t, w])
    s = (strides, strides)
    qx, ex = ref.quantize(x)
    want_q, want_e = ref.requantize(ref.conv2d(qx, w_np, s, padding), ex + w_exp)
    np.testing.assert_array_equal(y.numpy(), ref.dequantize(want_q, want_e))

    err, ee = ref.quantize(dy)
    np.testing.assert_array_equal(dw.numpy(), ref.conv2d_backprop_filter(qx, w_np.shape, err, s, padding))
    dx_q, dx_e = ref.requantize(ref.conv2d_backprop_input(x.shape, w_np, err, s, padding), ee + w_exp)
    np.testing.assert_array_equal(dx.numpy(), ref.dequantize(dx_q, dx_e))

    # Float autodiff of the same convolution (x is an exact carrier here).
    w_float = tf.constant(w_np.astype(np.float32) * 2.0**w_exp)
    with tf.GradientTape() as tape:
        tape.watch(w_float)
        x_f = tf.constant(x)
        tape.watch(x_f)
        loss = tf.reduce_sum(tf.nn.conv2d(x_f, w_float, strides, padding) * dy)
    dx_float, dw_float = tape.gradient(loss, [x_f, w_float])
    assert np.abs(dx.numpy() - dx_float.numpy()).max() <= 2.0 ** (dx_e - 1)
    np.testing.assert_allclose(dw.numpy() * 2.0 ** (ex + ee), dw_float.numpy(), rtol=1e-6)


@pytest.mark.parametrize("strides,padding,dilations", [(1, "SAME", 1), (2, "SAME", 1), (2, "VALID", 1),
                                                        (1, "VALID", 2), (3, "SAME", 2)])
def test_conv2d_static_output_shape_matches_tensorflow(strides, padding, dilations):
    w = tf.Variable(tf.ones([3, 2, 1, 4], tf.int8))
    shapes = {}

    @tf.function(input_signature=[tf.TensorSpec([5, 13, 11, 1], tf.float32)])
    def trace(x):
        shapes["int"] = layer_ops.conv2d(x, w, -7, strides, padding, dilations)[0].shape
        shapes["float"] = tf.nn.conv2d(x, tf.ones([3, 2, 1, 4]), strides, padding, dilations=dilations).shape
        return x

    trace.get_concrete_function()
    assert shapes["int"] == shapes["float"] and shapes["int"].is_fully_defined()

"""The shared argument checks (tf_int_ops._validation): ops and layers agree, one wording per problem."""

import numpy as np
import pytest
import tensorflow as tf

import keras_int
import tf_int_ops
from tf_int_ops import _validation as check
from tf_int_ops import layer_ops

L = keras_int.layers
X4 = np.ones((1, 4, 4, 1), np.int8)
W4 = np.ones((2, 2, 1, 1), np.int8)


@pytest.mark.parametrize("call", [
    lambda: L.IntConv2D(2, 3, strides=True),
    lambda: L.IntConv2D(2, (3, True)),
    lambda: L.IntMaxPool2D(True),
    lambda: L.IntAveragePooling2D(2, strides=(1, False)),
    lambda: tf_int_ops.int_conv2d(X4, W4, strides=True),
    lambda: tf_int_ops.int_max_pool2d(X4, True),
    lambda: layer_ops.max_pool2d(np.ones((1, 4, 4, 1), np.float32), 2, strides=True),
], ids=["conv-strides", "conv-kernel", "maxpool", "avgpool", "int_conv2d", "int_max_pool2d", "max_pool2d"])
def test_bool_is_not_an_int_pair(call):
    with pytest.raises(ValueError, match="must be an int or a pair of ints, got"):
        call()


@pytest.mark.parametrize("call,pattern", [
    (lambda: L.IntDense(True), "IntDense: units must be a positive int, got True"),
    (lambda: L.IntDense(2, seed=True), "IntDense: seed must be None or an int, got True"),
    (lambda: keras_int.optimizers.IntegerSGD(momentum=True), "momentum must be an int in \\[0, 16\\]"),
    (lambda: tf_int_ops.round_shift(tf.ones([2], tf.int32), 1, limit=True),
     "round_shift: limit must be an int in \\[0, 2147483647\\], got True"),
    (lambda: layer_ops.dropout(tf.ones([2]), True, [1, 2]), "dropout: keep_bits must be an int in \\[1, 16\\]"),
])
def test_bool_is_not_an_int(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("spelling", ["same", "SAME", "Same", "valid", "VALID", "vAlId"])
def test_padding_any_case_in_ops_and_layers(spelling):
    x = np.ones((1, 4, 4, 1), np.float32)
    expected = tf.nn.max_pool2d(x, 2, 2, spelling.upper()).shape
    assert tf_int_ops.int_max_pool2d(X4, 2, padding=spelling).shape == expected
    assert layer_ops.max_pool2d(x, 2, padding=spelling).shape == expected
    layer = L.IntMaxPool2D(2, padding=spelling)
    assert layer.padding == spelling.lower() and layer(x).shape == expected


@pytest.mark.parametrize("call,fn", [
    (lambda: tf_int_ops.int_conv2d(X4, W4, padding="full"), "int_conv2d"),
    (lambda: layer_ops.conv2d(np.ones((1, 4, 4, 1), np.float32), tf.Variable(W4), 0, padding="full"), "conv2d"),
    (lambda: L.IntConv2D(2, 3, padding="full"), "IntConv2D"),
    (lambda: L.IntAveragePooling2D(2, padding=3), "IntAveragePooling2D"),
])
def test_one_padding_message(call, fn):
    with pytest.raises(ValueError, match=f"^{fn}: padding must be 'same' or 'valid' \\(any case\\), got"):
        call()


@pytest.mark.parametrize("call,fn", [
    (lambda: tf_int_ops.requantize(tf.ones([2], tf.int32), 0, rounding="up"), "requantize"),
    (lambda: layer_ops.dense(tf.ones([1, 2]), tf.Variable(tf.ones([2, 2], tf.int8)), 0, rounding="up"), "dense"),
    (lambda: L.IntDense(2, rounding="up"), "IntDense"),
    (lambda: tf_int_ops.int_softmax_cross_entropy_grad(tf.ones([1, 2], tf.int8), 0, [0], rounding="up"),
     "int_softmax_cross_entropy_grad"),
])
def test_one_rounding_message(call, fn):
    with pytest.raises(ValueError, match=f"^{fn}: rounding must be one of \\(.*\\), got 'up'"):
        call()


@pytest.mark.parametrize("value,message", [
    (0, "must be >= 1, got 0"), ((1, -2), "must be >= 1, got \\(1, -2\\)"),
    (2**31, "must be <= 2147483647 \\(an int32 attribute\\), got 2147483648"),
    ((1, 2, 3), "must be an int or a pair of ints"), (1.5, "must be an int or a pair of ints"),
])
def test_layers_and_ops_word_int_pairs_alike(value, message):
    with pytest.raises(ValueError, match=f"^IntConv2D: strides {message}"):
        L.IntConv2D(2, 3, strides=value)
    with pytest.raises(ValueError, match=f"^int_conv2d: strides {message}"):
        tf_int_ops.int_conv2d(X4, W4, strides=value)


def test_pairs_and_paddings_normalised():
    assert check.int_pair(np.int64(3), "strides", "f") == [3, 3]
    assert check.int_pair((1, 2), "strides", "f") == [1, 2]
    assert check.padding("same", "f") == "SAME"
    assert L.IntConv2D(2, 3, strides=np.int32(2)).strides == (2, 2)

"""Bad input gives an error that names the problem: never a crash, a wrap or a wrong answer."""

import numpy as np
import pytest
import tensorflow as tf

import tf_int_ops as ops
from tf_int_ops import _loader, layer_ops

I8 = np.ones((2, 3), np.int8)
X4 = np.ones((1, 5, 5, 2), np.int8)
W4 = np.ones((3, 3, 2, 4), np.int8)
InvalidArgument = tf.errors.InvalidArgumentError

CASES = [
    # (call, exception, message pattern)
    (lambda: ops.int_matmul(I8.astype(np.float32), I8.T), ValueError, "x must be int8"),
    (lambda: ops.int_matmul(I8, I8.T.astype(np.int32)), ValueError, "w must be int8"),
    (lambda: ops.int_matmul(np.ones((2, 3, 1), np.int8), I8.T), ValueError, "x must have rank 2"),
    (lambda: ops.int_matmul(I8, I8), InvalidArgument, "inner dimensions|Dimensions must be equal"),
    (lambda: ops.int_conv2d(X4, W4, padding="FULL"), ValueError, "padding must be"),
    (lambda: ops.int_conv2d(X4, W4, strides=0), ValueError, "strides must be >= 1"),
    (lambda: ops.int_conv2d(X4, W4, strides=-2), ValueError, "strides must be >= 1"),
    (lambda: ops.int_conv2d(X4, W4, strides=(1, 2, 3)), ValueError, "strides must be an int or a pair"),
    (lambda: ops.int_conv2d(X4, W4, dilations=0), ValueError, "dilations must be >= 1"),
    (lambda: ops.int_conv2d(X4[:, :, :, :1], W4), InvalidArgument, "input channels 1 do not match"),
    (lambda: ops.int_conv2d(X4, np.ones((7, 7, 2, 1), np.int8), padding="VALID"), InvalidArgument,
     "smaller than the \\(dilated\\) window"),
    (lambda: ops.int_conv2d(X4[0], W4), ValueError, "x must have rank 4"),
    (lambda: ops.int_conv2d_backprop_input([1, 5, 5, 2], W4, np.ones((1, 4, 4, 4), np.int8)),
     InvalidArgument, "out_backprop has shape"),
    (lambda: ops.int_conv2d_backprop_filter(X4, [3, 3, 2, 4], np.ones((1, 5, 5, 3), np.int8)),
     InvalidArgument, "out_backprop has shape"),
    (lambda: ops.int_conv2d_backprop_input([1, 5, 5], W4, np.ones((1, 5, 5, 4), np.int8)),
     InvalidArgument, "input_sizes must be a vector of 4"),
    (lambda: ops.int_max_pool2d(X4, 2, padding="same-ish"), ValueError, "padding must be"),
    (lambda: ops.int_max_pool2d(X4, 0), ValueError, "pool_size must be >= 1"),
    (lambda: ops.int_max_pool2d_grad(X4, np.ones((1, 3, 3, 2), np.int8), 2), InvalidArgument,
     "dy has shape"),
    (lambda: ops.int_avg_pool2d(X4, 0, (6, 6), padding="VALID"), InvalidArgument, "smaller than"),
    (lambda: ops.quantize(np.array([1.0, np.nan], np.float32)), InvalidArgument, "NaN or Inf"),
    (lambda: ops.quantize(np.array([np.inf], np.float32)), InvalidArgument, "NaN or Inf"),
    (lambda: ops.quantize(np.array([1e-37], np.float32)), InvalidArgument, "exponent .* out of range"),
    (lambda: ops.quantize(np.ones(3, np.int8)), ValueError, "x must be float32"),
    (lambda: ops.quantize(np.ones(3, np.float32), bits=4), ValueError, "bits must be 8 or 16"),
    (lambda: ops.dequantize(I8, 101), InvalidArgument, "exponent 101 is out of range"),
    (lambda: ops.dequantize(I8.astype(np.float32), 0), ValueError, "q must be one of int8, int16"),
    (lambda: ops.dequantize(I8, [1, 2]), ValueError, "exponent must have rank 0"),
    (lambda: ops.requantize(np.ones(3, np.int32), 500), InvalidArgument, "exponent 500 is out of range"),
    (lambda: ops.requantize(np.full(3, 2**30, np.int32), 90), InvalidArgument,
     "result exponent 114 is out of range"),
    (lambda: ops.requantize(np.ones(3, np.int64), 0), ValueError, "acc must be int32"),
    (lambda: ops.requantize(np.ones(3, np.int32), 0, rounding="up"), ValueError, "rounding must be one of"),
    (lambda: ops.requantize(np.ones(3, np.int32), 0, rounding="stochastic"), ValueError, "needs a seed"),
    (lambda: ops.requantize(np.ones(3, np.int32), 0, seed=[1, 2, 3]), ValueError, "seed must be"),
    (lambda: ops.round_shift(np.ones(3, np.int32), 64), InvalidArgument, "shift 64 is out of range"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, 0, [0, 3]), InvalidArgument,
     "labels\\[1\\] = 3 is out of range \\[0, 3\\)"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, 0, [0, -1]), InvalidArgument, "labels\\[1\\] = -1"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, 0, [0]), InvalidArgument, "labels has 1 entries"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, 0, [0.0, 1.0]), ValueError, "labels must be one of"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, 0, [0, 1], rounding="nearest"), ValueError,
     "rounding must be"),
    (lambda: ops.int_softmax_cross_entropy_grad(I8, -500, [0, 1]), InvalidArgument, "exponent -500"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int32), mu=0), ValueError, "mu 0 is out of range"),
    (lambda: ops.integer_sgd_update(I8, np.ones((3, 2), np.int32)), ValueError, "grad has shape"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int8)), ValueError, "grad must be int32"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int32), momentum=4), ValueError,
     "needs a momentum_buffer"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int32), momentum=17, momentum_buffer=I8),
     ValueError, "momentum must be an int in \\[0, 16\\]"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int32), mu=tf.constant(31)), InvalidArgument,
     "mu \\(update bit width\\) 31"),
    (lambda: ops.int_add(I8, 0, I8.T, 0), ValueError, "same shape"),
    (lambda: ops.int_add(I8, 0, I8, 400), InvalidArgument, "b_exponent 400"),
    (lambda: layer_ops.dense(np.ones((2, 2), np.float32), tf.constant(np.ones((2, 2), np.int8)), 0),
     ValueError, "kernel must be a variable"),
    (lambda: layer_ops.dense(np.ones((2, 2), np.float32), tf.Variable(np.ones((2, 2), np.int16)), 0),
     ValueError, "kernel must be an int8 variable"),
    (lambda: layer_ops.dense(np.ones((2, 2), np.int8), tf.Variable(np.ones((2, 2), np.int8)), 0),
     ValueError, "x must be a float32 carrier"),
    (lambda: layer_ops.dense(np.ones((2, 3), np.float32), tf.Variable(np.ones((2, 2), np.int8)), 0),
     InvalidArgument, "input has 3 features, the kernel expects 2"),
    (lambda: layer_ops.dense(np.array([[np.nan, 1]], np.float32), tf.Variable(np.ones((2, 2), np.int8)), 0),
     InvalidArgument, "NaN or Inf"),
    (lambda: layer_ops.conv2d(np.ones((1, 4, 4, 3), np.float32), tf.Variable(W4), 0), InvalidArgument,
     "input channels 3 do not match"),
]


@pytest.mark.parametrize("call,exception,pattern", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_input_raises_named_error(call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


def test_kernels_validate_attributes_without_the_python_checks():
    raw = _loader.load()
    with pytest.raises(InvalidArgument, match="strides must be >= 1"):
        raw.int_ops_conv2d(X4, W4, strides=[0, 1], padding="SAME")
    with pytest.raises(InvalidArgument, match="padding must be SAME or VALID"):
        raw.int_ops_conv2d(X4, W4, strides=[1, 1], padding="FULL")
    with pytest.raises(InvalidArgument, match="rounding must be one of"):
        raw.int_ops_requantize(np.ones(2, np.int32), 0, [0, 0], out_type=tf.int8, rounding="up")
    with pytest.raises(InvalidArgument, match="seed must be an int64 tensor"):
        raw.int_ops_requantize(np.ones(2, np.int32), 0, [0, 0, 0], out_type=tf.int8)


def test_errors_in_a_graph_name_the_argument():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.int8), tf.TensorSpec(None, tf.int8)])
    def conv(x, w):
        return ops.int_conv2d(x, w)

    with pytest.raises(InvalidArgument, match="input channels"):
        conv(X4[:, :, :, :1], W4)


def test_missing_library_error_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("TF_INT_OPS_LIBRARY", str(tmp_path / "missing.so"))
    _loader.load.cache_clear()
    try:
        with pytest.raises(ImportError, match="make build"):
            _loader.load()
    finally:
        monkeypatch.delenv("TF_INT_OPS_LIBRARY")
        _loader.load.cache_clear()

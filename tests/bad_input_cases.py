"""Bad inputs for every public op and layer, and what each must raise.

Run as a script, it tries every case and prints one JSON line per case, so
that tests/test_bad_input.py can run them in a child process: a crash
(segfault, abort) fails the test and names the case, instead of killing the
test run.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_int  # noqa: E402
import reference as ref  # noqa: E402
import tf_int_ops as ops  # noqa: E402
from tf_int_ops import layer_ops  # noqa: E402

L = keras_int.layers

I8 = np.ones((2, 3), np.int8)
X4 = np.ones((1, 5, 5, 2), np.int8)
W4 = np.ones((3, 3, 2, 4), np.int8)
InvalidArgument = tf.errors.InvalidArgumentError

CASES = [
    # (call, exception, message pattern)
    (lambda: ops.int_matmul(I8.astype(np.float32), I8.T), ValueError, "x must be one of int8, int16, got float32"),
    (lambda: ops.int_matmul(I8, I8.T.astype(np.int32)), ValueError, "w must be one of int8, int16, got int32"),
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
    (lambda: ops.requantize(np.ones(3, np.int16), 0), ValueError, "acc must be one of int32, int64, got int16"),
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
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int32), mu=0), ValueError, "mu must be an int in \\[1, 30\\], got 0"),
    (lambda: ops.integer_sgd_update(I8, np.ones((3, 2), np.int32)), ValueError, "grad has shape"),
    (lambda: ops.integer_sgd_update(I8, np.ones((2, 3), np.int8)), ValueError, "grad must be one of int32, int64"),
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
    (lambda: layer_ops.dense(np.ones((2, 2), np.float32), tf.Variable(np.ones((2, 2), np.int32)), 0),
     ValueError, "kernel must be an int8 or int16 variable, got int32"),
    (lambda: layer_ops.dense(np.ones((2, 2), np.int8), tf.Variable(np.ones((2, 2), np.int8)), 0),
     ValueError, "x must be a float32 carrier"),
    (lambda: layer_ops.dense(np.ones((2, 3), np.float32), tf.Variable(np.ones((2, 2), np.int8)), 0),
     InvalidArgument, "input has 3 features, the kernel expects 2"),
    (lambda: layer_ops.dense(np.array([[np.nan, 1]], np.float32), tf.Variable(np.ones((2, 2), np.int8)), 0),
     InvalidArgument, "NaN or Inf"),
    (lambda: layer_ops.conv2d(np.ones((1, 4, 4, 3), np.float32), tf.Variable(W4), 0), InvalidArgument,
     "input channels 3 do not match"),
    (lambda: layer_ops.dense(np.ones((2, 2), np.float32), tf.Variable(np.ones((2, 2), np.int8)), 0,
                             error_exponent=tf.Variable(0.0)),
     ValueError, "error_exponent must be a scalar int32 variable"),
    (lambda: layer_ops.conv2d(np.ones((1, 4, 4, 1), np.float32), tf.Variable(np.ones((3, 3, 1, 2), np.int8)), 0,
                              error_exponent=tf.constant(0)),
     ValueError, "error_exponent must be a scalar int32 variable"),
    (lambda: layer_ops._loader.load().int_ops_relu_grad(np.ones(40, np.float32), np.ones(1, np.int32)),
     InvalidArgument, "dy has 40 elements, which need a mask of \\[2\\] words"),
    (lambda: layer_ops.relu(np.array([1.0, np.inf], np.float32)), InvalidArgument, "relu: input contains NaN or Inf"),
]



LAYER_CASES = [
    (lambda: L.IntDense(3)(tf.constant([[1, 2]], tf.int32)), ValueError, "float32 carrier"),
    (lambda: L.IntDense(3)(tf.constant([[np.inf, 2.0]])), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntDense(3, rounding="banker")(tf.ones((1, 2))), ValueError, "rounding must be one of"),
    (lambda: L.IntConv2D(2, 3)(tf.ones((2, 5))), ValueError, "input must be NHWC"),
    (lambda: L.IntBatchNormalization()(tf.ones((5,))), ValueError, "IntBatchNormalization: the input must have rank >= 2"),
    (lambda: L.IntBatchNormalization(axis=1)(tf.ones((2, 3, 4))), ValueError, "only the last axis is supported"),
    (lambda: L.IntBatchNormalization()(tf.ones((2, 3), tf.int32)), ValueError, "float32 carrier"),
    (lambda: L.IntBatchNormalization()(tf.constant([[np.nan, 1.0]]), training=True), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntBatchNormalization()(tf.constant([[np.inf, 1.0]]), training=False), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntLayerNormalization()(tf.constant(1.0)), ValueError,
     "IntLayerNormalization: the input must have rank >= 1"),
    (lambda: L.IntLayerNormalization(axis=0)(tf.ones((2, 3))), ValueError, "only the last axis is supported"),
    (lambda: L.IntLayerNormalization()(tf.ones((2, 3), tf.int8)), ValueError, "float32 carrier"),
    (lambda: L.IntLayerNormalization()(tf.constant([[np.nan, 1.0]]), training=True), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntGELU()(tf.constant([[np.nan, 1.0]])), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntGELU()(tf.ones((2, 3), tf.int32)), ValueError, "float32 carrier"),
    (lambda: L.IntEmbedding(0, 4), ValueError, "input_dim must be a positive int"),
    (lambda: L.IntEmbedding(5, 4)(tf.constant([[1, 5]])), InvalidArgument,
     "id 5 at position 1 is out of range \\[0, 5\\)"),
    (lambda: L.IntEmbedding(5, 4)(tf.constant([[-3]])), InvalidArgument, "id -3 at position 0"),
    (lambda: L.IntPositionEmbedding(4)(tf.ones((2, 6, 3))), InvalidArgument, "more steps than sequence_length 4"),
    (lambda: L.IntPositionEmbedding(0), ValueError, "sequence_length must be a positive int"),
    (lambda: L.IntGlobalAveragePooling1D()(tf.ones((2, 3))), ValueError, "needs \\[batch, steps, channels\\]"),
    (lambda: L.IntMultiHeadAttention(0, 4), ValueError, "num_heads must be a positive int"),
    (lambda: L.IntMultiHeadAttention(2, 4, dropout=0.1), ValueError, "rate must be 1 - 2\\*\\*-k"),
    (lambda: L.IntMultiHeadAttention(2, 4)(tf.ones((2, 3)), tf.ones((2, 3))), ValueError,
     "query must be \\[batch, steps, dim\\]"),
    (lambda: L.IntMultiHeadAttention(2, 4)(tf.ones((2, 3, 8)), tf.ones((2, 5, 8)),
                                        attention_mask=tf.ones((2, 3, 4), tf.bool)),
     ValueError, "attention_mask must be \\[batch, T_query, T_value\\] = \\[batch, 3, 5\\]"),
    (lambda: L.IntMultiHeadAttention(2, 4)(tf.constant(np.full((1, 2, 4), np.nan, np.float32)),
                                        tf.ones((1, 2, 4))), InvalidArgument, "NaN or Inf"),
    (lambda: L.IntConv2D(2, 3, strides=0), ValueError, "strides must be >= 1"),
    (lambda: L.IntConv2D(2, 3, strides=-1), ValueError, "strides must be >= 1"),
    (lambda: L.IntConv2D(2, 3, padding="causal"), ValueError, "padding must be 'same' or 'valid'"),
    (lambda: L.IntConv2D(2, 9)(tf.ones((1, 4, 4, 1))), InvalidArgument, "smaller than the"),
    (lambda: L.IntConv2D(2, 3)(tf.constant(np.full((1, 4, 4, 1), np.nan, np.float32))), InvalidArgument,
     "NaN or Inf"),
    (lambda: L.IntReLU()(tf.ones((2, 2), tf.int32)), ValueError, "float32 carrier"),
    (lambda: L.IntMaxPool2D(2, padding="full"), ValueError, "padding must be"),
    (lambda: L.IntMaxPool2D(2)(tf.ones((2, 2))), ValueError, "max_pool2d: x must have rank 4"),
    (lambda: L.IntAveragePooling2D(2)(tf.ones((2, 2))), ValueError, "avg_pool2d: x must have rank 4"),
    (lambda: L.IntMaxPool2D(5)(tf.ones((1, 2, 2, 1))), InvalidArgument, "smaller than the"),
    (lambda: L.IntAveragePooling2D(0), ValueError, "pool_size must be >= 1"),
    (lambda: L.IntGlobalAveragePooling2D()(tf.ones((2, 3))), ValueError, "NHWC input"),
    (lambda: L.IntDropout(0.4), ValueError, "rate must be 1 - 2"),
    (lambda: L.IntAdd()([tf.ones((2, 3)), tf.ones((3, 2))]), ValueError, "same shape"),
    (lambda: L.IntAdd()([tf.ones((2, 3))]), ValueError, "expects a list of 2 inputs"),
    (lambda: keras_int.losses.IntegerCrossEntropy()(tf.constant([3.0]), tf.ones((1, 3))), InvalidArgument,
     "label value of 3 which is outside the valid range"),
    (lambda: keras_int.optimizers.IntegerSGD(mu=31), ValueError, "mu must be an int in \\[1, 30\\]"),
]

# Adversarial sizes and values (issue 12): each once aborted, divided by
# zero, hung or wrapped.
BIG = 2**31 - 1
ADVERSARIAL_CASES = [
    (lambda: ops.int_conv2d_backprop_input([BIG] * 4, np.ones((1, 1, 1, 1), np.int8),
                                           np.ones((1, 1, 1, 1), np.int8)),
     InvalidArgument, "input_sizes: the element count overflows int64"),
    (lambda: ops.int_conv2d_backprop_filter(X4, [BIG] * 4, np.ones((1, 5, 5, 4), np.int8)),
     InvalidArgument, "filter_sizes: the element count overflows int64"),
    (lambda: ops.int_avg_pool2d_grad([BIG] * 4, np.ones((1, 1, 1, 1), np.int8), 0),
     InvalidArgument, "input_sizes: the element count overflows int64"),
    (lambda: layer_ops._loader.load().int_ops_max_pool_carrier_grad(
        [BIG] * 4, np.ones((1, 1, 1, 1), np.float32), np.zeros((1, 1, 1, 1), np.uint8),
        ksize=[2, 2], strides=[2, 2], padding="VALID"),
     InvalidArgument, "input_sizes: the element count overflows int64"),
    (lambda: ops.int_matmul(tf.zeros([2**40, 0], tf.int8), tf.zeros([0, 2**40], tf.int8)), InvalidArgument,
     "matmul: output shape: the element count overflows int64"),
    (lambda: ops.int_conv2d(tf.zeros([2**20] * 3 + [0], tf.int8), tf.zeros([1, 1, 0, BIG], tf.int8)),
     InvalidArgument, "conv2d: output shape: the element count overflows int64"),
    (lambda: ops.int_softmax_cross_entropy_grad(tf.zeros([1, 2**23], tf.int8), -20, [3]), InvalidArgument,
     "logits has 8388608 classes, more than the 2097152"),
    (lambda: ops.int_conv2d_backprop_filter(np.full((1, 1, 131072, 1), -128, np.int8), [1, 1, 1, 1],
                                            np.full((1, 1, 131072, 1), -128, np.int8)),
     InvalidArgument, "int32 overflow: .* sums to 2147483648"),
    (lambda: layer_ops._loader.load().int_ops_dense(
        np.ones((1, 2), np.float32), tf.Variable(np.ones((2, 2), np.int8)).handle,
        [tf.Variable(np.ones(2, np.int32)).handle] * 2, 0, [0, 0], []),
     InvalidArgument, "at most one bias, got N = 2"),
    # Batch norm's kernels without the Python checks.
    (lambda: _raw_batch_norm(np.ones((2**23 + 1, 1), np.float32)), InvalidArgument,
     "8388609 rows per channel, more than the 8388608"),
    (lambda: _raw_batch_norm(np.ones((2, 3), np.float32), epsilon_mantissa=2**15), InvalidArgument,
     "epsilon mantissa 32768 is out of range"),
    (lambda: _raw_batch_norm(np.ones((2, 3), np.float32), gamma=np.ones(4, np.int8)), InvalidArgument,
     "gamma must have shape \\[3\\] \\(the input's channels\\), got \\[4\\]"),
    (lambda: _raw_batch_norm(np.ones((2, 3), np.float32), beta=np.ones(3, np.int8)), InvalidArgument,
     "beta variable must be int32, got int8"),
    (lambda: _raw_batch_norm_inference(np.ones((2, 3), np.float32), variance=[1, -1, 1]), InvalidArgument,
     "moving_variance must be >= 0, got -1 in channel 1"),
    (lambda: _raw_batch_norm_inference(np.ones((2, 3), np.float32), variance_exponent=400), InvalidArgument,
     "moving_variance_exponent 400 is out of range \\[-320, 320\\]"),
    (lambda: _raw_batch_norm_inference(np.ones((2, 3), np.float32), mean=[1, 2]), InvalidArgument,
     "moving_mean must have shape \\[3\\]"),
    (lambda: _raw_batch_norm_grad(np.ones((2, 3), np.float32), x_q=np.ones((2, 4), np.int8)), InvalidArgument,
     "batch_norm_grad: dy has shape \\[2,3\\], x_q \\[2,4\\]"),
    (lambda: _raw_batch_norm_grad(np.ones((2, 3), np.float32), x_sum=[0, 257, 0]), InvalidArgument,
     "batch_norm_grad: channel 1 has x_sum 257, inv_sqrt 1, inv_shift 0: not what the forward pass gives for 2 rows"),
    (lambda: _raw_batch_norm_grad(np.ones((2, 3), np.float32), inv_sqrt=[1, 1, 2**40]), InvalidArgument,
     "batch_norm_grad: channel 2 has x_sum 0, inv_sqrt 1099511627776"),
    (lambda: _raw_batch_norm_grad(np.ones((2, 3), np.float32), inv_shift=[-1, 0, 0]), InvalidArgument,
     "batch_norm_grad: channel 0 has x_sum 0, inv_sqrt 1, inv_shift -1"),
    (lambda: _raw_batch_norm_grad(np.ones((2, 3), np.float32), inv_shift=[0, 31, 0]), InvalidArgument,
     "batch_norm_grad: channel 1 .* inv_shift 31"),
    # The transformer ops' kernels without the Python checks.
    (lambda: layer_ops._loader.load().int_ops_softmax(np.ones((2, 3), np.float32), [], [0, 0], scale_shift=63),
     InvalidArgument, "scale_shift 63 is out of range"),
    (lambda: layer_ops._loader.load().int_ops_softmax(np.ones((2, 3), np.float32), [], [0, 0],
                                                      scale_multiplier=2**16), InvalidArgument,
     "softmax: scale 65536 \\* 2\\*\\*-0 is out of range"),
    (lambda: layer_ops._loader.load().int_ops_softmax(np.ones((1, 2**21 + 1), np.float32), [], [0, 0]),
     InvalidArgument, "rows of 2097153 entries, more than the 2097152"),
    (lambda: layer_ops._loader.load().int_ops_softmax_grad(np.ones((2, 3), np.float32), np.ones((2, 3), np.int8),
                                                           -23), InvalidArgument, "y_exponent .* -23 is out of range"),
    (lambda: ops.int_batch_matmul(np.ones((2, 1, 131072), np.int8) * -128, np.ones((2, 131072, 1), np.int8) * -128),
     InvalidArgument, "overflow"),
    (lambda: layer_ops._loader.load().int_ops_batch_mat_mul(np.ones((2, 3, 4), np.int8), np.ones((3, 4, 2), np.int8)),
     InvalidArgument, "batch dimensions|Dimensions must be equal"),
    (lambda: layer_ops._loader.load().int_ops_embedding_grad(np.ones((2**24, 1), np.float32),
                                                             np.zeros(2**24, np.int32), 1),
     InvalidArgument, "16777216 ids in one call, more than the 16777215"),
    (lambda: layer_ops._loader.load().int_ops_embedding(np.array([0], np.int32),
                                                        tf.Variable(np.ones((2, 2), np.int16)).handle, 0, []),
     InvalidArgument, "table must be an int8 matrix"),
    # Layer norm's kernels without the Python checks.
    (lambda: _raw_layer_norm(np.ones((1, 2**23 + 1), np.float32)), InvalidArgument,
     "1 rows of 8388609 features, more than the 8388608"),
    (lambda: _raw_layer_norm(np.ones((2, 3), np.float32), epsilon_mantissa=5), InvalidArgument,
     "epsilon mantissa 5 is out of range"),
    (lambda: _raw_layer_norm(np.ones((2, 3), np.float32), gamma=np.ones(2, np.int8)), InvalidArgument,
     "layer_norm: gamma must have shape \\[3\\]"),
    (lambda: _raw_layer_norm(np.ones((2, 3), np.float32), beta=np.ones(3, np.int16)), InvalidArgument,
     "layer_norm: beta variable must be int32, got int16"),
    (lambda: _raw_layer_norm_grad(np.ones((2, 3), np.float32), x_q=np.ones((3, 2), np.int8)), InvalidArgument,
     "layer_norm_grad: dy has shape \\[2,3\\], x_q \\[3,2\\]"),
    (lambda: _raw_layer_norm_grad(np.ones((2, 3), np.float32), x_sum=[0, 385]), InvalidArgument,
     "layer_norm_grad: row 1 has x_sum 385, inv_sqrt 1, inv_shift 0, which no forward pass over 3 features"),
    (lambda: _raw_layer_norm_grad(np.ones((2, 3), np.float32), inv_sqrt=[3037000504, 1]), InvalidArgument,
     "layer_norm_grad: row 0 has x_sum 0, inv_sqrt 3037000504"),
    (lambda: _raw_layer_norm_grad(np.ones((2, 3), np.float32), inv_shift=[0, -2]), InvalidArgument,
     "layer_norm_grad: row 1 .* inv_shift -2"),
    (lambda: _raw_layer_norm_grad(np.ones((2, 3), np.float32), inv_shift=[0, 0, 0]), InvalidArgument,
     "layer_norm_grad: per-row inputs must have shape \\[2\\]"),
    (lambda: layer_ops._loader.load().int_ops_norm_moving_average([1], 0, [1], 0, momentum=2**16 + 1),
     InvalidArgument, "momentum 65537 is out of range"),
    (lambda: layer_ops.moving_average([1], 0, [1], 0, 2**16 + 1), ValueError,
     "momentum must be an int in \\[0, 65536\\]"),
    (lambda: layer_ops.batch_norm(np.ones((2, 3), np.float32), tf.Variable(np.ones(3, np.int8)),
                                  tf.Variable(np.ones(3, np.int32)), 0, training=False),
     ValueError, "inference \\(training=False\\) needs"),
]


def _raw_batch_norm(x, gamma=None, beta=None, epsilon_mantissa=2**14):
    channels = x.shape[-1]
    gamma = tf.Variable(np.ones(channels, np.int8) if gamma is None else gamma)
    beta = tf.Variable(np.zeros(channels, np.int32) if beta is None else beta)
    return layer_ops._loader.load().int_ops_batch_norm(
        x, gamma.handle, beta.handle, 0, [0, 0], [], epsilon_mantissa=epsilon_mantissa, epsilon_exponent=-24)


def _raw_batch_norm_grad(dy, x_q=None, x_sum=(0, 0, 0), inv_sqrt=(1, 1, 1), inv_shift=(0, 0, 0)):
    x_q = np.ones(dy.shape, np.int8) if x_q is None else x_q
    return layer_ops._loader.load().int_ops_batch_norm_grad(
        dy, x_q, 0, np.asarray(x_sum, np.int64), np.asarray(inv_sqrt, np.int64), np.asarray(inv_shift, np.int32),
        np.ones(3, np.int8), 0)


def _raw_layer_norm(x, gamma=None, beta=None, epsilon_mantissa=2**14):
    features = x.shape[-1]
    gamma = tf.Variable(np.ones(features, np.int8) if gamma is None else gamma)
    beta = tf.Variable(np.zeros(features, np.int32) if beta is None else beta)
    return layer_ops._loader.load().int_ops_layer_norm(
        x, gamma.handle, beta.handle, 0, [0, 0], [], epsilon_mantissa=epsilon_mantissa, epsilon_exponent=-24)


def _raw_layer_norm_grad(dy, x_q=None, x_sum=(0, 0), inv_sqrt=(1, 1), inv_shift=(0, 0)):
    x_q = np.ones(dy.shape, np.int8) if x_q is None else x_q
    return layer_ops._loader.load().int_ops_layer_norm_grad(
        dy, x_q, 0, np.asarray(x_sum, np.int64), np.asarray(inv_sqrt, np.int64), np.asarray(inv_shift, np.int32),
        np.ones(3, np.int8), 0)


def _raw_batch_norm_inference(x, mean=(0, 0, 0), variance=(1, 1, 1), variance_exponent=0):
    gamma, beta = tf.Variable(np.ones(3, np.int8)), tf.Variable(np.zeros(3, np.int32))
    return layer_ops._loader.load().int_ops_batch_norm_inference(
        x, gamma.handle, beta.handle, 0, np.asarray(mean, np.int32), 0, np.asarray(variance, np.int32),
        variance_exponent, [0, 0], epsilon_mantissa=2**14, epsilon_exponent=-24)



# Adversarial inputs with a well-defined answer: (call, None, check), where
# check(result) raises AssertionError unless the answer is the documented one.
def empty_input_with_huge_sizes_pools_at_once(y):
    assert y.shape == (1, 2**19, 2**19, 0), y.shape


def empty_matmul_of_huge_rows_is_empty(y):
    assert y.shape == (2**40, 0) and y.dtype == tf.int32, y.shape


def dense_with_zero_units_and_a_bias_is_empty(result):
    y, e = result
    assert y.shape == (2, 0), y.shape


def wide_row_filter_gradient_at_the_exact_limit(dw):
    assert dw.numpy().tolist() == [[[[131071 * 2**14]]]], dw.numpy()


def huge_stride_filter_gradient_is_small_and_exact(dw):
    # One output pixel (the first input pixel, SAME padding): dw[0, 0, c, o] = x[c] * dy[o].
    assert dw.numpy().tolist() == [[[[1, 1], [1, 1]]]], dw.numpy()


def x_plus_zero_is_x(result):
    q, e = result
    np.testing.assert_array_equal(ref.dequantize(q.numpy(), int(e)), [100 * 2.0**-30, -3 * 2.0**-30])


def zero_plus_x_is_x(result):
    q, e = result
    np.testing.assert_array_equal(ref.dequantize(q.numpy(), int(e)), [2.0**-60, 127 * 2.0**-60])


def subnormal_input_counts_as_zero(result):
    q, e = result
    assert q.numpy().tolist() == [0, 0] and int(e) == 0, (q, e)


def subnormals_beside_normal_values_quantize_to_zero(result):
    q, e = result
    assert q.numpy().tolist() == [0, 64, 0] and int(e) == -7, (q, e)


RESULT_CASES = [
    (lambda: ops.int_max_pool2d(tf.zeros([1, 2**20, 2**20, 0], tf.int8), 2), None,
     empty_input_with_huge_sizes_pools_at_once),
    (lambda: ops.int_matmul(tf.zeros([2**40, 0], tf.int8), tf.zeros([0, 0], tf.int8)), None,
     empty_matmul_of_huge_rows_is_empty),
    (lambda: layer_ops.dense(np.ones((2, 2), np.float32), tf.Variable(np.ones((2, 0), np.int8)), 0,
                             bias=tf.Variable(np.ones(0, np.int32))),
     None, dense_with_zero_units_and_a_bias_is_empty),
    (lambda: ops.int_conv2d_backprop_filter(np.full((1, 1, 131071, 1), -128, np.int8), [1, 1, 1, 1],
                                            np.full((1, 1, 131071, 1), -128, np.int8)),
     None, wide_row_filter_gradient_at_the_exact_limit),
    (lambda: ops.int_conv2d_backprop_filter(np.ones((1, 1, 2, 2), np.int8), [1, 1, 2, 2],
                                            np.ones((1, 1, 1, 2), np.int8), strides=(1, 2**30)),
     None, huge_stride_filter_gradient_is_small_and_exact),
    (lambda: ops.int_add(np.zeros(2, np.int8), 0, np.array([100, -3], np.int8), -30), None, x_plus_zero_is_x),
    (lambda: ops.int_add(np.array([1, 127], np.int8), -60, np.zeros(2, np.int8), 40), None, zero_plus_x_is_x),
    (lambda: ops.quantize(np.array([1e-40, -1e-45], np.float32)), None, subnormal_input_counts_as_zero),
    (lambda: ops.quantize(np.array([1e-40, 0.5, -1e-45], np.float32)), None,
     subnormals_beside_normal_values_quantize_to_zero),
]

ALL_CASES = CASES + LAYER_CASES + ADVERSARIAL_CASES + RESULT_CASES


def main():
    """Runs every case, one JSON line each, flushed before the next starts."""
    for index, (call, exception, pattern) in enumerate(ALL_CASES):
        print(json.dumps({"start": index}), flush=True)
        try:
            value = call()
            if exception is None:
                pattern(value)  # the check of a result case
            result = {"index": index, "raised": None, "message": ""}
        except Exception as error:  # the parent checks type and message
            result = {"index": index, "raised": type(error).__name__, "message": str(error)[:2000]}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

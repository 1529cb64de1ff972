"""int_matmul and the three convolutions, bit-exact against the reference."""

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
import tf_int_ops as ops


def _int8(rng, shape, low=-128, high=127):
    return rng.integers(low, high + 1, size=shape).astype(np.int8)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 1), (5, 3, 2), (6, 16, 256), (7, 17, 257),
                                   (13, 33, 1000), (64, 10, 784), (97, 65, 511)])
@pytest.mark.parametrize("transpose_x,transpose_w", [(False, False), (True, False), (False, True),
                                                     (True, True)])
def test_matmul_matches_reference(rng, shape, transpose_x, transpose_w):
    m, n, k = shape
    x = _int8(rng, (k, m) if transpose_x else (m, k))
    w = _int8(rng, (n, k) if transpose_w else (k, n))
    got = ops.int_matmul(x, w, transpose_x, transpose_w).numpy()
    np.testing.assert_array_equal(got, ref.matmul(x, w, transpose_x, transpose_w))


@pytest.mark.parametrize("value", [127, -128])
def test_matmul_extremes_at_conv_depth(value):
    # K = 25088 (a 7x7x512 patch): every product at its extreme, no saturation.
    k = 25088
    x = np.full((3, k), value, np.int8)
    w = np.full((k, 18), value, np.int8)
    np.testing.assert_array_equal(ops.int_matmul(x, w).numpy(), np.full((3, 18), value * value * k))


def test_matmul_mixed_extremes(rng):
    x = rng.choice(np.array([-128, 127], np.int8), (9, 4000))
    w = rng.choice(np.array([-128, 127], np.int8), (4000, 20))
    np.testing.assert_array_equal(ops.int_matmul(x, w).numpy(), ref.matmul(x, w))


def test_matmul_depth_at_int32_limit():
    # K = 131071 is the longest depth that cannot overflow; -128 * -128 * K = 2**31 - 2**14.
    k = ops.MAX_EXACT_DEPTH
    x = np.full((1, k), -128, np.int8)
    got = ops.int_matmul(x, np.full((k, 2), -128, np.int8)).numpy()
    np.testing.assert_array_equal(got, [[2**31 - 2**14] * 2])


def test_matmul_beyond_exact_depth_is_exact_when_it_fits(rng):
    k = ops.MAX_EXACT_DEPTH + 1000
    x = _int8(rng, (2, k))
    w = _int8(rng, (k, 3))
    np.testing.assert_array_equal(ops.int_matmul(x, w).numpy(), ref.matmul(x, w))


def test_matmul_overflow_is_an_error():
    k = ops.MAX_EXACT_DEPTH + 1  # -128 * -128 * k = 2**31: one past int32
    x = np.full((1, k), -128, np.int8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="int32 overflow"):
        ops.int_matmul(x, np.full((k, 1), -128, np.int8))


CONV_CASES = [
    # (x shape, kernel (kh, kw), out channels, strides, padding, dilations)
    ((1, 1, 1, 1), (1, 1), 1, (1, 1), "VALID", (1, 1)),
    ((1, 5, 5, 1), (3, 3), 2, (1, 1), "SAME", (1, 1)),
    ((2, 7, 6, 3), (3, 3), 5, (2, 2), "SAME", (1, 1)),
    ((2, 7, 6, 3), (3, 3), 5, (2, 2), "VALID", (1, 1)),
    ((3, 9, 8, 4), (3, 2), 7, (3, 1), "SAME", (1, 1)),
    ((1, 8, 8, 17), (5, 5), 3, (3, 3), "VALID", (1, 1)),
    ((2, 10, 11, 2), (3, 3), 4, (1, 1), "SAME", (2, 2)),
    ((2, 10, 11, 2), (2, 3), 4, (1, 2), "VALID", (2, 1)),
    ((4, 28, 28, 1), (5, 5), 6, (1, 1), "SAME", (1, 1)),
    ((2, 12, 12, 32), (3, 3), 20, (1, 1), "SAME", (1, 1)),
    ((1, 4, 4, 3), (4, 4), 2, (1, 1), "SAME", (1, 1)),   # even kernel: asymmetric SAME pad
    ((1, 3, 3, 2), (1, 1), 2, (2, 2), "SAME", (1, 1)),
    # The input gradient goes by stride phase (the input pixels that share
    # their taps): stride and dilation on one axis, and strides larger than
    # the kernel, where some phases receive no tap at all (zeros).
    ((2, 11, 9, 5), (3, 3), 4, (2, 2), "SAME", (2, 2)),
    ((1, 7, 7, 3), (1, 1), 2, (3, 3), "SAME", (1, 1)),
    ((1, 9, 9, 3), (2, 2), 3, (3, 3), "VALID", (1, 1)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_forward_and_backprops_match_reference(rng, case):
    x_shape, (kh, kw), out_c, strides, padding, dilations = case
    x = _int8(rng, x_shape)
    w = _int8(rng, (kh, kw, x_shape[3], out_c))
    attrs = dict(strides=list(strides), padding=padding, dilations=list(dilations))
    y = ops.int_conv2d(x, w, **attrs).numpy()
    want = ref.conv2d(x, w, strides, padding, dilations)
    np.testing.assert_array_equal(y, want)

    dy = _int8(rng, want.shape)
    dx = ops.int_conv2d_backprop_input(list(x_shape), w, dy, **attrs).numpy()
    np.testing.assert_array_equal(dx, ref.conv2d_backprop_input(x_shape, w, dy, strides, padding, dilations))
    dw = ops.int_conv2d_backprop_filter(x, list(w.shape), dy, **attrs).numpy()
    np.testing.assert_array_equal(dw, ref.conv2d_backprop_filter(x, w.shape, dy, strides, padding, dilations))


def test_conv2d_agrees_with_tensorflow_float_conv(rng):
    # Small values keep float32 exact: an independent check of geometry and layout.
    x = _int8(rng, (2, 9, 7, 3), -8, 8)
    w = _int8(rng, (3, 3, 3, 4), -8, 8)
    for strides, padding in (((1, 1), "SAME"), ((2, 2), "SAME"), ((2, 1), "VALID")):
        want = tf.nn.conv2d(x.astype(np.float32), w.astype(np.float32), [1, *strides, 1], padding)
        np.testing.assert_array_equal(ops.int_conv2d(x, w, list(strides), padding).numpy(), want.numpy())
        dy = _int8(rng, want.shape, -8, 8).astype(np.float32)
        dx = tf.compat.v1.nn.conv2d_backprop_input(x.shape, w.astype(np.float32), dy, [1, *strides, 1], padding)
        np.testing.assert_array_equal(
            ops.int_conv2d_backprop_input(list(x.shape), w, dy.astype(np.int8), list(strides), padding).numpy(),
            dx.numpy())
        dw = tf.compat.v1.nn.conv2d_backprop_filter(x.astype(np.float32), w.shape, dy, [1, *strides, 1], padding)
        np.testing.assert_array_equal(
            ops.int_conv2d_backprop_filter(x, list(w.shape), dy.astype(np.int8), list(strides), padding).numpy(),
            dw.numpy())


def test_conv_backprop_filter_with_long_depth_is_exact(rng):
    # Depth N*OH*OW = 256 * 28 * 28 = 200704 > 131071: summed exactly in int64 blocks.
    x = _int8(rng, (256, 28, 28, 1), 0, 127)
    dy = _int8(rng, (256, 28, 28, 2), -127, 127)
    dw = ops.int_conv2d_backprop_filter(x, [3, 3, 1, 2], dy, 1, "SAME").numpy()
    np.testing.assert_array_equal(dw, ref.conv2d_backprop_filter(x, (3, 3, 1, 2), dy))

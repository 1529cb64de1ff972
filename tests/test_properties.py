"""Property tests: every op against the reference on generated shapes and values.

Shapes include empty batches and single elements, values lean towards the
extremes (-128, 127, 0, int32 limits), and every rounding mode and bit width
is drawn. Where the reference refuses an input (exponent out of range, VALID
window larger than the input), the op must raise too.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
import tf_int_ops as ops

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MODES = st.sampled_from(["nearest", "pseudo_stochastic", "stochastic", "truncate"])
INT8 = st.one_of(st.sampled_from([-128, 127, 0, -1, 1]), st.integers(-128, 127))
INT32 = st.one_of(st.sampled_from([-(2**31), 2**31 - 1, 0, -1, 128, -128]),
                  st.integers(-(2**31), 2**31 - 1), st.integers(-(2**12), 2**12))


def int8_arrays(shape):
    return hnp.arrays(np.int8, shape, elements=INT8)


@PROPERTY
@given(acc=hnp.arrays(np.int32, st.integers(0, 60), elements=INT32), exponent=st.integers(-60, 60),
       mode=MODES, bits=st.sampled_from([8, 16]), seed=st.integers(0, 2**40))
def test_requantize(acc, exponent, mode, bits, seed):
    try:
        want_q, want_e = ref.requantize(acc, exponent, mode, bits, seed=(seed, 7))
        ok = ref.MIN_EXPONENT <= want_e <= ref.MAX_EXPONENT
    except ValueError:
        ok = False
    if not ok:
        with pytest.raises(tf.errors.InvalidArgumentError, match="exponent"):
            ops.requantize(acc, exponent, mode, bits, seed=[seed, 7])
        return
    q, e = ops.requantize(acc, exponent, mode, bits, seed=[seed, 7])
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e


FLOATS = st.floats(-1e6, 1e6, width=32, allow_subnormal=False, allow_nan=False)


@PROPERTY
@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
                    elements=st.one_of(FLOATS, st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0**-60]))),
       bits=st.sampled_from([8, 16]))
def test_quantize(x, bits):
    try:
        want_q, want_e = ref.quantize(x, bits)
    except ValueError:
        with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
            ops.quantize(x, bits)
        return
    q, e = ops.quantize(x, bits)
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e


@PROPERTY
@given(x=hnp.arrays(np.int32, st.integers(0, 40), elements=INT32), shift=st.integers(0, 63),
       mode=MODES)
def test_round_shift(x, shift, mode):
    rand = ref.random_words(9, 1, x.size) if mode == "stochastic" else None
    got = ops.round_shift(x, shift, mode, seed=[9, 1]).numpy()
    limit = 2**31 - 1  # the default symmetric clip
    np.testing.assert_array_equal(got, np.clip(ref.round_shift(x, shift, mode, rand), -limit, limit))


@PROPERTY
@given(data=st.data(), m=st.integers(0, 30), n=st.integers(0, 30), k=st.integers(0, 70),
       transpose_x=st.booleans(), transpose_w=st.booleans())
def test_matmul(data, m, n, k, transpose_x, transpose_w):
    x = data.draw(int8_arrays((k, m) if transpose_x else (m, k)))
    w = data.draw(int8_arrays((n, k) if transpose_w else (k, n)))
    got = ops.int_matmul(x, w, transpose_x, transpose_w).numpy()
    np.testing.assert_array_equal(got, ref.matmul(x, w, transpose_x, transpose_w))


@PROPERTY
@given(data=st.data(), batch=st.integers(0, 2), size=st.tuples(st.integers(1, 8), st.integers(1, 8)),
       channels=st.integers(1, 4), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       out_channels=st.integers(1, 4), strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)), padding=st.sampled_from(["SAME", "VALID"]))
def test_conv2d_and_backprops(data, batch, size, channels, kernel, out_channels, strides, dilations,
                              padding):
    x_shape = (batch, *size, channels)
    w = data.draw(int8_arrays((*kernel, channels, out_channels)))
    x = data.draw(int8_arrays(x_shape))
    attrs = dict(strides=list(strides), padding=padding, dilations=list(dilations))
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if padding == "VALID" and any(s < e for s, e in zip(size, effective)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the"):
            ops.int_conv2d(x, w, **attrs)
        return
    want = ref.conv2d(x, w, strides, padding, dilations)
    np.testing.assert_array_equal(ops.int_conv2d(x, w, **attrs).numpy(), want)
    dy = data.draw(int8_arrays(want.shape))
    np.testing.assert_array_equal(
        ops.int_conv2d_backprop_input(list(x_shape), w, dy, **attrs).numpy(),
        ref.conv2d_backprop_input(x_shape, w, dy, strides, padding, dilations))
    np.testing.assert_array_equal(
        ops.int_conv2d_backprop_filter(x, list(w.shape), dy, **attrs).numpy(),
        ref.conv2d_backprop_filter(x, w.shape, dy, strides, padding, dilations))


@PROPERTY
@given(data=st.data(), batch=st.integers(0, 2), size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       channels=st.integers(1, 3), pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=st.sampled_from(["SAME", "VALID"]),
       exponent=st.integers(-20, 20))
def test_pooling(data, batch, size, channels, pool, strides, padding, exponent):
    shape = (batch, *size, channels)
    x = data.draw(int8_arrays(shape))
    args = (list(pool), list(strides), padding)
    if padding == "VALID" and any(s < p for s, p in zip(size, pool)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the"):
            ops.int_max_pool2d(x, *args)
        return
    y = ops.int_max_pool2d(x, *args).numpy()
    np.testing.assert_array_equal(y, ref.max_pool(x, pool, strides, padding).reshape(y.shape))
    dy = data.draw(int8_arrays(y.shape))
    np.testing.assert_array_equal(ops.int_max_pool2d_grad(x, dy, *args).numpy(),
                                  ref.max_pool_grad(x, dy, pool, strides, padding))
    q, e = ops.int_avg_pool2d(x, exponent, *args)
    acc = ref.avg_pool_acc(x, pool, strides, padding)
    want_q, want_e = ref.requantize(np.zeros(0) if acc is None else acc, exponent - 16)
    np.testing.assert_array_equal(q.numpy().ravel(), np.asarray(want_q).ravel())
    if y.size:
        assert int(e) == want_e


@PROPERTY
@given(data=st.data(), batch=st.integers(0, 6), classes=st.integers(1, 12), exponent=st.integers(-30, 20),
       mode=st.sampled_from(["pseudo_stochastic", "stochastic"]))
def test_cross_entropy_grad(data, batch, classes, exponent, mode):
    logits = data.draw(int8_arrays((batch, classes)))
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)),
                      np.int64)
    err, e = ops.int_softmax_cross_entropy_grad(logits, exponent, labels, mode, seed=[3, 3])
    want, _ = ref.softmax_cross_entropy_grad(logits, exponent, labels, mode, seed=(3, 3))
    np.testing.assert_array_equal(err.numpy(), want.reshape(batch, classes))


@PROPERTY
@given(data=st.data(), n=st.integers(0, 50), bits=st.sampled_from([8, 16, 32]), mu=st.integers(1, 30),
       momentum=st.integers(0, 16), weight_decay=st.integers(0, 5))
def test_sgd_update(data, n, bits, mu, momentum, weight_decay):
    dtype = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    limit = {8: 127, 16: 32767, 32: 2**31 - 1}[bits]
    values = st.integers(-limit, limit)
    w = data.draw(hnp.arrays(dtype, n, elements=values))
    buffer = data.draw(hnp.arrays(dtype, n, elements=values)) if momentum else None
    g = data.draw(hnp.arrays(np.int32, n, elements=INT32))
    new_w, new_buffer = ops.integer_sgd_update(w, g, mu, momentum, buffer, weight_decay)
    want_w, want_buffer = ref.sgd_update(w, g, mu, momentum, buffer, weight_decay, bits)
    np.testing.assert_array_equal(new_w.numpy(), want_w)
    if momentum:
        np.testing.assert_array_equal(new_buffer.numpy(), want_buffer)


@PROPERTY
@given(data=st.data(), n=st.integers(0, 30), ea=st.integers(-60, 60), eb=st.integers(-60, 60))
def test_int_add(data, n, ea, eb):
    a, b = data.draw(int8_arrays(n)), data.draw(int8_arrays(n))
    acc, acc_e = ref.aligned_add(a, ea, b, eb)
    want_q, want_e = ref.requantize(acc, acc_e)
    q, e = ops.int_add(a, ea, b, eb)
    np.testing.assert_array_equal(q.numpy(), want_q)
    assert int(e) == want_e


@PROPERTY
@given(q=hnp.arrays(st.sampled_from([np.int8, np.int16]), st.integers(0, 40)),
       exponent=st.integers(-130, 110))
def test_dequantize(q, exponent):
    if not ref.MIN_EXPONENT <= exponent <= ref.MAX_EXPONENT:
        with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
            ops.dequantize(q, exponent)
        return
    np.testing.assert_array_equal(ops.dequantize(q, exponent).numpy(), ref.dequantize(q, exponent))


@PROPERTY
@given(x=hnp.arrays(np.int32, st.integers(0, 40), elements=INT32))
def test_bit_length(x):
    assert int(ops.bit_length(x)) == ref.bit_length(x)


@PROPERTY
@given(data=st.data(), batch=st.integers(0, 2), size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       channels=st.integers(1, 3), pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=st.sampled_from(["SAME", "VALID"]))
def test_avg_pool_grad(data, batch, size, channels, pool, strides, padding):
    shape = (batch, *size, channels)
    if padding == "VALID" and any(s < p for s, p in zip(size, pool)):
        return  # covered by test_pooling
    out = [ref.window_geometry(s, p, st_, 1, padding)[0] for s, p, st_ in zip(size, pool, strides)]
    dy = data.draw(int8_arrays((batch, *out, channels)))
    dx, e = ops.int_avg_pool2d_grad(list(shape), dy, -3, list(pool), list(strides), padding)
    want, want_e = ref.requantize(ref.avg_pool_grad_acc(shape, dy, pool, strides, padding), -3 - 16)
    np.testing.assert_array_equal(dx.numpy(), want)
    if dx.numpy().size:
        assert int(e) == want_e

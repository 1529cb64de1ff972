"""Integer ops on DFP tensors: ``(q, e)`` pairs whose value is ``q * 2**e``.

Every function here takes and returns integer tensors (plus the float32
boundary conversions ``quantize``/``dequantize``) and is bit-exact to the
specification in docs/algorithms.md. Arguments are checked before the op runs; a
problem found only at run time (shapes in a graph, overflow, exponents)
raises ``tf.errors.InvalidArgumentError`` with the argument's name.
"""

import numpy as np
import tensorflow as tf

from tf_int_ops import _loader

ROUNDINGS = ("nearest", "pseudo_stochastic", "stochastic", "truncate")
MIN_EXPONENT = -120
MAX_EXPONENT = 100
# |int8 * int8| <= 2**14: dot products of depth up to this are exact in int32.
MAX_EXACT_DEPTH = 131071
# Exponent of the error returned by int_softmax_cross_entropy_grad.
CROSS_ENTROPY_ERROR_EXPONENT = -7
# Average pooling returns its accumulator at this exponent offset.
AVG_POOL_SHIFT = 16

_BITS_TO_DTYPE = {8: tf.int8, 16: tf.int16}


def _ops():
    return _loader.load()


def _is_int(value):
    """A Python or NumPy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_range(value, dtype, name, fn):
    """Raises ValueError if an integer in `value` does not fit `dtype`.

    `value` is a Python or NumPy integer, or a (nested) list, tuple or NumPy
    array of them: TensorFlow would wrap such a value into `dtype` silently
    (``2**32 + 5`` becomes int32 ``5``).
    """
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_range(item, dtype, name, fn)
        return
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer) and value.size:
        low, high = value.min(), value.max()
    elif _is_int(value):
        low = high = value
    else:
        return
    if low < dtype.min or high > dtype.max:
        raise ValueError(f"{fn}: {name} must be in [{dtype.min}, {dtype.max}] ({dtype.name}), "
                         f"got {int(low if low < dtype.min else high)}")


def _tensor(value, dtype, name, fn):
    """Converts value to a tensor of exactly `dtype` (no silent casts, no wrapped integers)."""
    if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "dtype"):
        tensor = tf.convert_to_tensor(value)
        if tensor.dtype != dtype:
            raise ValueError(f"{fn}: {name} must be {dtype.name}, got {tensor.dtype.name}")
        return tensor
    if dtype.is_integer:
        _check_range(value, dtype, name, fn)
    try:
        return tf.convert_to_tensor(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{fn}: {name} must be convertible to {dtype.name}: {error}") from error


def _one_of(value, dtypes, name, fn):
    if not hasattr(value, "dtype"):
        # A Python value becomes the narrowest of int32/int64 that holds it;
        # beyond the widest allowed integer type it is an error.
        widest = max((d for d in dtypes if d.is_integer), key=lambda d: d.max)
        _check_range(value, widest, name, fn)
    tensor = tf.convert_to_tensor(value)
    if tensor.dtype not in dtypes:
        allowed = ", ".join(d.name for d in dtypes)
        raise ValueError(f"{fn}: {name} must be one of {allowed}, got {tensor.dtype.name}")
    return tensor


def _rank(tensor, rank, name, fn):
    if tensor.shape.rank is not None and tensor.shape.rank != rank:
        raise ValueError(f"{fn}: {name} must have rank {rank}, got shape {tensor.shape}")


def _rounding(rounding, fn):
    if rounding not in ROUNDINGS:
        raise ValueError(f"{fn}: rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return rounding


def _bits(bits, fn):
    if bits not in _BITS_TO_DTYPE:
        raise ValueError(f"{fn}: bits must be 8 or 16, got {bits!r}")
    return _BITS_TO_DTYPE[bits]


def _pair(value, name, fn):
    """An int or a pair of ints, each in [1, 2**31 - 1] (an int32 attribute), as a list of two."""
    try:
        pair = [value, value] if _is_int(value) else list(value)
    except TypeError:
        pair = None
    if pair is None or len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {value!r}")
    if max(pair) > tf.int32.max:
        raise ValueError(f"{fn}: {name} must be <= {tf.int32.max} (an int32 attribute), got {value!r}")
    return [int(v) for v in pair]


def _padding(padding, fn):
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"{fn}: padding must be 'SAME' or 'VALID', got {padding!r}")
    return padding.upper()


def _exponent(exponent, fn, name="exponent"):
    exponent = _tensor(exponent, tf.int32, name, fn)
    _rank(exponent, 0, name, fn)
    return exponent


def _seed(seed, rounding, fn):
    """Seed input [key, step], each an int64 (signed); required by stochastic rounding only."""
    if seed is None:
        if rounding == "stochastic":
            raise ValueError(f"{fn}: stochastic rounding needs a seed (an int or [key, step])")
        return tf.zeros([2], tf.int64)
    if _is_int(seed):
        seed = [seed, 0]
    seed = tf.cast(_one_of(seed, (tf.int32, tf.int64), "seed", fn), tf.int64)
    if seed.shape.rank is not None and seed.shape != [2]:
        raise ValueError(f"{fn}: seed must be an int or a pair [key, step], got shape {seed.shape}")
    return seed


def quantize(x, bits=8):
    """Exact float32 -> DFP: returns ``(q, e)`` with ``q * 2**e ~= x``.

    ``e = ceil(log2(max|x|)) - (bits - 1)`` and ``q = round_half_away(x / 2**e)``
    clipped to ``±(2**(bits-1) - 1)``; where max|x| is a power of two and all
    values are multiples of ``2**(e+1)``, ``e + 1`` is used so nothing is
    clipped (reading a carrier is lossless). NaN/Inf raise.

    >>> q, e = quantize(tf.constant([0.3, 1.0]))   # q = [38, 127], e = -7
    """
    x = _tensor(x, tf.float32, "x", "quantize")
    return _ops().int_ops_quantize(x, out_type=_bits(bits, "quantize"))


def dequantize(q, exponent):
    """``q * 2**exponent`` as float32, exactly."""
    q = _one_of(q, (tf.int8, tf.int16), "q", "dequantize")
    return _ops().int_ops_dequantize(q, _exponent(exponent, "dequantize"))


def requantize(acc, exponent, rounding="nearest", bits=8, seed=None):
    """int32 accumulator at ``exponent`` -> ``(q, e)`` with ``bits``-bit mantissas.

    Shifts right by ``s = bit_length(max|acc|) - (bits - 1)`` when positive,
    with the given rounding, and clips; small values are never scaled up.
    ``seed`` (an int or ``[key, step]``, each a signed int64) drives
    ``stochastic`` rounding.

    >>> q, e = requantize(tf.constant([1000, -3], tf.int32), 0)  # q = [125, 0], e = 3
    """
    acc = _tensor(acc, tf.int32, "acc", "requantize")
    rounding = _rounding(rounding, "requantize")
    return _ops().int_ops_requantize(acc, _exponent(exponent, "requantize"),
                                     _seed(seed, rounding, "requantize"),
                                     out_type=_bits(bits, "requantize"), rounding=rounding)


def round_shift(x, shift, rounding="nearest", limit=2**31 - 1, seed=None):
    """``clip(round(x / 2**shift), -limit, limit)`` on int32, rounding magnitudes."""
    x = _tensor(x, tf.int32, "x", "round_shift")
    rounding = _rounding(rounding, "round_shift")
    if not 0 <= limit <= 2**31 - 1:
        raise ValueError(f"round_shift: limit must be in [0, 2**31 - 1], got {limit}")
    shift = _tensor(shift, tf.int32, "shift", "round_shift")
    return _ops().int_ops_round_shift(x, shift, _seed(seed, rounding, "round_shift"),
                                      rounding=rounding, limit=limit)


def bit_length(x):
    """``bit_length(max|x|)`` of an int32 tensor as an int32 scalar (0 if all zero).

    >>> bit_length(tf.constant([5, -130]))  # 8
    """
    return _ops().int_ops_bit_length(_tensor(x, tf.int32, "x", "bit_length"))


def int_matmul(x, w, transpose_x=False, transpose_w=False):
    """Exact int8 x int8 -> int32 matrix product.

    Depths beyond 131071 (where int32 could overflow) are summed exactly in
    int64 and raise InvalidArgumentError only if a result leaves int32.

    >>> int_matmul(tf.ones([2, 3], tf.int8), tf.ones([3, 4], tf.int8))  # all 3
    """
    x = _tensor(x, tf.int8, "x", "int_matmul")
    w = _tensor(w, tf.int8, "w", "int_matmul")
    _rank(x, 2, "x", "int_matmul")
    _rank(w, 2, "w", "int_matmul")
    return _ops().int_ops_mat_mul(x, w, transpose_x=bool(transpose_x), transpose_w=bool(transpose_w))


def _conv_attrs(strides, padding, dilations, fn):
    return dict(strides=_pair(strides, "strides", fn), padding=_padding(padding, fn),
                dilations=_pair(dilations, "dilations", fn))


def int_conv2d(x, w, strides=1, padding="SAME", dilations=1):
    """Exact int8 2-D convolution: x NHWC, w HWIO -> int32 NHWC.

    >>> int_conv2d(tf.ones([1, 4, 4, 2], tf.int8), tf.ones([3, 3, 2, 5], tf.int8), 1, "VALID")
    """
    fn = "int_conv2d"
    x = _tensor(x, tf.int8, "x", fn)
    w = _tensor(w, tf.int8, "w", fn)
    _rank(x, 4, "x", fn)
    _rank(w, 4, "w", fn)
    return _ops().int_ops_conv2d(x, w, **_conv_attrs(strides, padding, dilations, fn))


def int_conv2d_backprop_input(input_sizes, w, dy, strides=1, padding="SAME", dilations=1):
    """Gradient of ``int_conv2d`` w.r.t. its input, int32, for any stride/padding."""
    fn = "int_conv2d_backprop_input"
    input_sizes = _tensor(input_sizes, tf.int32, "input_sizes", fn)
    w = _tensor(w, tf.int8, "w", fn)
    dy = _tensor(dy, tf.int8, "dy", fn)
    _rank(w, 4, "w", fn)
    _rank(dy, 4, "dy", fn)
    return _ops().int_ops_conv2d_backprop_input(input_sizes, w, dy,
                                                **_conv_attrs(strides, padding, dilations, fn))


def int_conv2d_backprop_filter(x, filter_sizes, dy, strides=1, padding="SAME", dilations=1):
    """Gradient of ``int_conv2d`` w.r.t. its filter, int32, for any stride/padding."""
    fn = "int_conv2d_backprop_filter"
    x = _tensor(x, tf.int8, "x", fn)
    filter_sizes = _tensor(filter_sizes, tf.int32, "filter_sizes", fn)
    dy = _tensor(dy, tf.int8, "dy", fn)
    _rank(x, 4, "x", fn)
    _rank(dy, 4, "dy", fn)
    return _ops().int_ops_conv2d_backprop_filter(x, filter_sizes, dy,
                                                 **_conv_attrs(strides, padding, dilations, fn))


def _pool_attrs(pool_size, strides, padding, fn):
    pool_size = _pair(pool_size, "pool_size", fn)
    strides = pool_size if strides is None else _pair(strides, "strides", fn)
    return dict(ksize=pool_size, strides=strides, padding=_padding(padding, fn))


def int_max_pool2d(q, pool_size=2, strides=None, padding="VALID"):
    """Max pooling on int8 NHWC mantissas; the exponent is unchanged."""
    fn = "int_max_pool2d"
    q = _tensor(q, tf.int8, "q", fn)
    _rank(q, 4, "q", fn)
    return _ops().int_ops_max_pool(q, **_pool_attrs(pool_size, strides, padding, fn))


def int_max_pool2d_grad(x, dy, pool_size=2, strides=None, padding="VALID"):
    """Routes int8 errors dy to the first maximum of each window of x (int32 sums)."""
    fn = "int_max_pool2d_grad"
    x = _tensor(x, tf.int8, "x", fn)
    dy = _tensor(dy, tf.int8, "dy", fn)
    _rank(x, 4, "x", fn)
    _rank(dy, 4, "dy", fn)
    return _ops().int_ops_max_pool_grad(x, dy, **_pool_attrs(pool_size, strides, padding, fn))


def int_avg_pool2d(q, exponent, pool_size=2, strides=None, padding="VALID", rounding="nearest",
                   seed=None):
    """Average pooling: int32 window sums times round(2**16/n), requantized.

    Returns ``(q, e)``. n is the number of window elements inside the input;
    for n a power of two the average is exact before rounding.
    """
    fn = "int_avg_pool2d"
    q = _tensor(q, tf.int8, "q", fn)
    _rank(q, 4, "q", fn)
    exponent = _exponent(exponent, fn)
    acc = _ops().int_ops_avg_pool(q, **_pool_attrs(pool_size, strides, padding, fn))
    return requantize(acc, exponent - AVG_POOL_SHIFT, rounding, seed=seed)


def int_avg_pool2d_grad(input_sizes, dy, exponent, pool_size=2, strides=None, padding="VALID"):
    """Gradient of ``int_avg_pool2d``: ``(dx, e)``, requantized with nearest rounding."""
    fn = "int_avg_pool2d_grad"
    input_sizes = _tensor(input_sizes, tf.int32, "input_sizes", fn)
    dy = _tensor(dy, tf.int8, "dy", fn)
    _rank(dy, 4, "dy", fn)
    exponent = _exponent(exponent, fn)
    acc = _ops().int_ops_avg_pool_grad(input_sizes, dy,
                                       **_pool_attrs(pool_size, strides, padding, fn))
    return requantize(acc, exponent - AVG_POOL_SHIFT, "nearest")


def int_add(a, a_exponent, b, b_exponent, rounding="nearest", seed=None):
    """Residual add of two int8 DFP tensors: exact alignment, one rounding.

    >>> int_add(tf.constant([100], tf.int8), 0, tf.constant([1], tf.int8), -3)
    """
    fn = "int_add"
    a = _tensor(a, tf.int8, "a", fn)
    b = _tensor(b, tf.int8, "b", fn)
    if a.shape.is_fully_defined() and b.shape.is_fully_defined() and a.shape != b.shape:
        raise ValueError(f"{fn}: a and b must have the same shape, got {a.shape} and {b.shape}")
    acc, acc_exponent = _ops().int_ops_aligned_add(
        a, _exponent(a_exponent, fn, "a_exponent"), b, _exponent(b_exponent, fn, "b_exponent"))
    return requantize(acc, acc_exponent, rounding, seed=seed)


def int_softmax_cross_entropy_grad(logits, exponent, labels, rounding="pseudo_stochastic",
                                   seed=None):
    """NITI's integer cross-entropy gradient: ``(err, -7)`` with
    ``err * 2**-7 ~= softmax(logits * 2**exponent) - onehot(labels)``.

    >>> err, e = int_softmax_cross_entropy_grad(tf.constant([[10, 0]], tf.int8), -2, [0])
    """
    fn = "int_softmax_cross_entropy_grad"
    logits = _tensor(logits, tf.int8, "logits", fn)
    _rank(logits, 2, "logits", fn)
    labels = _one_of(labels, (tf.int32, tf.int64), "labels", fn)
    _rank(labels, 1, "labels", fn)
    if rounding not in ("pseudo_stochastic", "stochastic"):
        raise ValueError(f"{fn}: rounding must be 'pseudo_stochastic' or 'stochastic', got {rounding!r}")
    return _ops().int_ops_softmax_cross_entropy_grad(
        logits, _exponent(exponent, fn), labels, _seed(seed, rounding, fn), rounding=rounding)


def integer_sgd_update(w, grad, mu=5, momentum=0, momentum_buffer=None, weight_decay=0):
    """NITI's integer SGD step; returns ``(new_w, new_momentum_buffer)``.

    ``s = bit_length(max|grad|) - mu``; the gradient is shifted right by ``s``
    (pseudo-stochastic rounding) when ``s >= 1`` and subtracted from ``w``
    with clipping. ``momentum`` is in sixteenths (0..16): ``m = clip(m *
    momentum / 16 + g)``, ``w -= m``. ``weight_decay`` d adds
    ``d * w * 2**(bit_length(max|grad|) - 15)`` to the gradient first. With
    int16 ``w`` this is the 16-bit weight accumulation of NITI; derive the
    int8 weights with :func:`int8_weights`. int32 ``w`` (biases) clip at the
    int32 range.

    >>> new_w, _ = integer_sgd_update(tf.zeros([3], tf.int8), tf.constant([640, -64, 0]), mu=3)
    """
    fn = "integer_sgd_update"
    w = _one_of(w, (tf.int8, tf.int16, tf.int32), "w", fn)
    grad = _tensor(grad, tf.int32, "grad", fn)
    if w.shape.is_fully_defined() and grad.shape.is_fully_defined() and w.shape != grad.shape:
        raise ValueError(f"{fn}: grad has shape {grad.shape}, the weights {w.shape}")
    if isinstance(mu, int) and not 1 <= mu <= 30:
        raise ValueError(f"{fn}: mu {mu} is out of range [1, 30]")
    if not isinstance(momentum, int) or not 0 <= momentum <= 16:
        raise ValueError(f"{fn}: momentum must be an int in [0, 16] (sixteenths), got {momentum!r}")
    if not isinstance(weight_decay, int) or not 0 <= weight_decay <= 1024:
        raise ValueError(f"{fn}: weight_decay must be an int in [0, 1024], got {weight_decay!r}")
    if momentum and momentum_buffer is None:
        raise ValueError(f"{fn}: momentum > 0 needs a momentum_buffer (same shape and dtype as w)")
    if momentum_buffer is None:
        momentum_buffer = tf.zeros([0], w.dtype)
    else:
        momentum_buffer = _tensor(momentum_buffer, w.dtype, "momentum_buffer", fn)
    return _ops().int_ops_sgd_update(w, grad, momentum_buffer, _tensor(mu, tf.int32, "mu", fn),
                                     momentum=int(momentum), weight_decay=int(weight_decay))


def int8_weights(w16):
    """int8 weights from 16-bit accumulated ones: pseudo-stochastic shift by 8, clipped."""
    w16 = _tensor(w16, tf.int16, "w16", "int8_weights")
    shifted = round_shift(tf.cast(w16, tf.int32), 8, "pseudo_stochastic", limit=127)
    return tf.cast(shifted, tf.int8)

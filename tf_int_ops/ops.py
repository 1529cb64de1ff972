"""Integer ops on DFP tensors: ``(q, e)`` pairs whose value is ``q * 2**e``.

Every function here takes and returns integer tensors (plus the float32
boundary conversions ``quantize``/``dequantize``) and is bit-exact to the
specification in docs/algorithms.md. Arguments are checked before the op runs; a
problem found only at run time (shapes in a graph, overflow, exponents)
raises ``tf.errors.InvalidArgumentError`` with the argument's name.
"""

import functools

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops._validation import ROUNDINGS  # noqa: F401  (tf_int_ops.ROUNDINGS)

# The shared bounds are defined once, in cc/core/limits.h; the library
# publishes them as the attribute defaults of its never-run op IntOps>Limits
# (cc/ops/limits_ops.cc). They are read on first use (module __getattr__),
# so importing tf_int_ops does not load the library:
#   MIN_EXPONENT, MAX_EXPONENT: exponents of int8/int16 DFP tensors.
#   MIN_ACC_EXPONENT, MAX_ACC_EXPONENT: exponents of int32 accumulators.
#   MAX_EXACT_DEPTH: |int8 * int8| <= 2**14, so dot products of depth up to
#     this are exact in int32.
#   MAX_ALIGN_SHIFT: the largest exact left shift of a residual add.
#   AVG_POOL_SHIFT: average pooling returns its accumulator at this exponent offset.
#   AVG_POOL_WINDOW_LOG2, MAX_POOL_WINDOW_LOG2: log2 of the largest pooling windows.
#   MAX_POOL_CARRIER_TAPS: the largest window max pooling on carriers records.
#   CROSS_ENTROPY_ERROR_EXPONENT: exponent of int_softmax_cross_entropy_grad's error.
#   CROSS_ENTROPY_MAX_CLASSES: the widest row int_softmax_cross_entropy_grad sums.
#   NORM_*: batch normalization's row bound, fraction bits, momentum and
#     statistic widths, epsilon's mantissa width (docs/algorithms.md 8).
#   SOFTMAX_*: the longest softmax row and the range of its folded scale
#     (docs/algorithms.md 10).
#   EMBEDDING_MAX_LOOKUPS: the most ids of one embedding lookup (section 12).
_LIMIT_NAMES = ("MIN_EXPONENT", "MAX_EXPONENT", "MIN_ACC_EXPONENT", "MAX_ACC_EXPONENT",
                "MAX_EXACT_DEPTH", "MAX_ALIGN_SHIFT", "AVG_POOL_SHIFT", "AVG_POOL_WINDOW_LOG2",
                "MAX_POOL_WINDOW_LOG2", "MAX_POOL_CARRIER_TAPS", "CROSS_ENTROPY_ERROR_EXPONENT",
                "CROSS_ENTROPY_MAX_CLASSES", "NORM_MAX_ROWS", "NORM_FRACTION_BITS", "NORM_MOMENTUM_BITS",
                "NORM_STATISTIC_BITS", "NORM_EPSILON_BITS", "NORM_STATISTIC_EXPONENT_LIMIT",
                "SOFTMAX_MAX_ROW", "SOFTMAX_MAX_MULTIPLIER", "SOFTMAX_MAX_SHIFT", "EMBEDDING_MAX_LOOKUPS")


@functools.lru_cache(maxsize=None)
def _limits():
    """{"MIN_EXPONENT": -120, ...}: the attribute defaults of IntOps>Limits (loads the library)."""
    _loader.load()
    op_def = _tf_internal.op_def("IntOps>Limits")
    if op_def is None:
        raise ImportError("tf_int_ops: the op library does not register IntOps>Limits "
                          "(built from older sources?). Rebuild it with `make build`.")
    return {attr.name.upper(): int(attr.default_value.i) for attr in op_def.attr}


def __getattr__(name):
    # PEP 562: ops.MIN_EXPONENT etc. read from the library on first use.
    if name in _LIMIT_NAMES:
        return _limits()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LIMIT_NAMES))


def _ops():
    return _loader.load()


def quantize(x, bits=8):
    """Exact float32 -> DFP: returns ``(q, e)`` with ``q * 2**e ~= x``.

    ``e = ceil(log2(max|x|)) - (bits - 1)`` and ``q = round_half_away(x / 2**e)``
    clipped to ``±(2**(bits-1) - 1)``; where max|x| is a power of two and all
    values are multiples of ``2**(e+1)``, ``e + 1`` is used so nothing is
    clipped (reading a carrier is lossless). NaN/Inf raise.

    >>> q, e = quantize(tf.constant([0.3, 1.0]))   # q = [38, 127], e = -7
    """
    x = check.tensor(x, tf.float32, "x", "quantize")
    return _ops().int_ops_quantize(x, out_type=check.bits(bits, "quantize"))


def dequantize(q, exponent):
    """``q * 2**exponent`` as float32, exactly."""
    q = check.one_of(q, (tf.int8, tf.int16), "q", "dequantize")
    return _ops().int_ops_dequantize(q, check.exponent(exponent, "dequantize"))


def requantize(acc, exponent, rounding="nearest", bits=8, seed=None):
    """int32 (or int64, DFP16) accumulator at ``exponent`` -> ``(q, e)`` with ``bits``-bit mantissas.

    Shifts right by ``s = bit_length(max|acc|) - (bits - 1)`` when positive,
    with the given rounding, and clips; small values are never scaled up.
    ``seed`` (an int or ``[key, step]``, each a signed int64) drives
    ``stochastic`` rounding.

    >>> q, e = requantize(tf.constant([1000, -3], tf.int32), 0)  # q = [125, 0], e = 3
    """
    acc = check.one_of(acc, (tf.int32, tf.int64), "acc", "requantize")
    rounding = check.rounding(rounding, "requantize")
    return _ops().int_ops_requantize(acc, check.exponent(exponent, "requantize"),
                                     check.seed(seed, rounding, "requantize"),
                                     out_type=check.bits(bits, "requantize"), rounding=rounding)


def round_shift(x, shift, rounding="nearest", limit=2**31 - 1, seed=None):
    """``clip(round(x / 2**shift), -limit, limit)`` on int32, rounding magnitudes."""
    x = check.tensor(x, tf.int32, "x", "round_shift")
    rounding = check.rounding(rounding, "round_shift")
    limit = check.int_in(limit, "limit", "round_shift", 0, check.INT32_MAX)
    shift = check.tensor(shift, tf.int32, "shift", "round_shift")
    return _ops().int_ops_round_shift(x, shift, check.seed(seed, rounding, "round_shift"),
                                      rounding=rounding, limit=limit)


def bit_length(x):
    """``bit_length(max|x|)`` of an int32 (or int64) tensor as an int32 scalar (0 if all zero).

    >>> bit_length(tf.constant([5, -130]))  # 8
    """
    return _ops().int_ops_bit_length(check.one_of(x, (tf.int32, tf.int64), "x", "bit_length"))


def int_matmul(x, w, transpose_x=False, transpose_w=False):
    """Exact int8 x int8 -> int32 matrix product; int16 operands (DFP16) give int64.

    int8: depths beyond ``MAX_EXACT_DEPTH`` (2**17 - 1, where int32 could
    overflow) are summed exactly in int64 and raise InvalidArgumentError only
    if a result leaves int32. int16 (either operand; an int8 one is widened):
    exact int64 results for any depth below 2**33 (docs/algorithms.md 16).

    >>> int_matmul(tf.ones([2, 3], tf.int8), tf.ones([3, 4], tf.int8))  # all 3
    >>> int_matmul(tf.fill([1, 4], tf.constant(32767, tf.int16)), tf.ones([4, 1], tf.int16))  # int64 131068
    """
    x, w, _, acc_dtype = check.product_operands(x, w, "int_matmul")
    check.rank(x, 2, "x", "int_matmul")
    check.rank(w, 2, "w", "int_matmul")
    return _ops().int_ops_mat_mul(x, w, transpose_x=bool(transpose_x), transpose_w=bool(transpose_w),
                                  Tacc=acc_dtype)


def int_batch_matmul(x, w, transpose_x=False, transpose_w=False):
    """Exact int8 x int8 -> int32 products of matching batches of matrices.

    ``x`` ``[..., M, K]`` and ``w`` ``[..., K, N]`` (the last two axes swapped
    where transposed) with the same batch axes give ``[..., M, N]``: the
    products of two activation tensors (attention). Each product is exact as
    ``int_matmul``'s.

    >>> int_batch_matmul(tf.ones([5, 2, 3], tf.int8), tf.ones([5, 3, 4], tf.int8))  # all 3
    """
    fn = "int_batch_matmul"
    x = check.tensor(x, tf.int8, "x", fn)
    w = check.tensor(w, tf.int8, "w", fn)
    for value, name in ((x, "x"), (w, "w")):
        if value.shape.rank is not None and value.shape.rank < 2:
            raise ValueError(f"{fn}: {name} must have rank >= 2, got shape {value.shape}")
    if x.shape.rank is not None and w.shape.rank is not None and x.shape.rank != w.shape.rank:
        raise ValueError(f"{fn}: x and w must have the same rank, got shapes {x.shape} and {w.shape}")
    return _ops().int_ops_batch_mat_mul(x, w, transpose_x=bool(transpose_x), transpose_w=bool(transpose_w))


def int_conv2d(x, w, strides=1, padding="SAME", dilations=1):
    """Exact int8 2-D convolution: x NHWC, w HWIO -> int32 NHWC (int16 operands: int64).

    >>> int_conv2d(tf.ones([1, 4, 4, 2], tf.int8), tf.ones([3, 3, 2, 5], tf.int8), 1, "VALID")
    """
    fn = "int_conv2d"
    x, w, _, acc_dtype = check.product_operands(x, w, fn)
    check.rank(x, 4, "x", fn)
    check.rank(w, 4, "w", fn)
    return _ops().int_ops_conv2d(x, w, **check.conv_attrs(strides, padding, dilations, fn), Tacc=acc_dtype)


def int_conv2d_backprop_input(input_sizes, w, dy, strides=1, padding="SAME", dilations=1):
    """Gradient of ``int_conv2d`` w.r.t. its input, int32 (int16 operands: int64), for any stride/padding."""
    fn = "int_conv2d_backprop_input"
    input_sizes = check.tensor(input_sizes, tf.int32, "input_sizes", fn)
    w, dy, _, acc_dtype = check.product_operands(w, dy, fn, "w", "dy")
    check.rank(w, 4, "w", fn)
    check.rank(dy, 4, "dy", fn)
    return _ops().int_ops_conv2d_backprop_input(input_sizes, w, dy,
                                                **check.conv_attrs(strides, padding, dilations, fn),
                                                Tacc=acc_dtype)


def int_conv2d_backprop_filter(x, filter_sizes, dy, strides=1, padding="SAME", dilations=1):
    """Gradient of ``int_conv2d`` w.r.t. its filter, int32 (int16 operands: int64), for any stride/padding."""
    fn = "int_conv2d_backprop_filter"
    x, dy, _, acc_dtype = check.product_operands(x, dy, fn, "x", "dy")
    filter_sizes = check.tensor(filter_sizes, tf.int32, "filter_sizes", fn)
    check.rank(x, 4, "x", fn)
    check.rank(dy, 4, "dy", fn)
    return _ops().int_ops_conv2d_backprop_filter(x, filter_sizes, dy,
                                                 **check.conv_attrs(strides, padding, dilations, fn),
                                                 Tacc=acc_dtype)


def int_max_pool2d(q, pool_size=2, strides=None, padding="VALID"):
    """Max pooling on int8 NHWC mantissas; the exponent is unchanged."""
    fn = "int_max_pool2d"
    q = check.tensor(q, tf.int8, "q", fn)
    check.rank(q, 4, "q", fn)
    return _ops().int_ops_max_pool(q, **check.pool_attrs(pool_size, strides, padding, fn))


def int_max_pool2d_grad(x, dy, pool_size=2, strides=None, padding="VALID"):
    """Routes int8 errors dy to the first maximum of each window of x (int32 sums)."""
    fn = "int_max_pool2d_grad"
    x = check.tensor(x, tf.int8, "x", fn)
    dy = check.tensor(dy, tf.int8, "dy", fn)
    check.rank(x, 4, "x", fn)
    check.rank(dy, 4, "dy", fn)
    return _ops().int_ops_max_pool_grad(x, dy, **check.pool_attrs(pool_size, strides, padding, fn))


def int_avg_pool2d(q, exponent, pool_size=2, strides=None, padding="VALID", rounding="nearest",
                   seed=None):
    """Average pooling: int32 window sums times round(2**16/n), requantized.

    Returns ``(q, e)``. n is the number of window elements inside the input;
    for n a power of two the average is exact before rounding. int16 ``q``
    (DFP16): int64 sums, int16 results.
    """
    fn = "int_avg_pool2d"
    q = check.one_of(q, (tf.int8, tf.int16), "q", fn)
    check.rank(q, 4, "q", fn)
    exponent = check.exponent(exponent, fn)
    acc = _ops().int_ops_avg_pool(q, **check.pool_attrs(pool_size, strides, padding, fn), Tacc=check.sum_dtype(q.dtype))
    return requantize(acc, exponent - _limits()["AVG_POOL_SHIFT"], rounding, bits=q.dtype.size * 8, seed=seed)


def int_avg_pool2d_grad(input_sizes, dy, exponent, pool_size=2, strides=None, padding="VALID"):
    """Gradient of ``int_avg_pool2d``: ``(dx, e)``, requantized with nearest rounding (int16 ``dy``: 16 bits)."""
    fn = "int_avg_pool2d_grad"
    input_sizes = check.tensor(input_sizes, tf.int32, "input_sizes", fn)
    dy = check.one_of(dy, (tf.int8, tf.int16), "dy", fn)
    check.rank(dy, 4, "dy", fn)
    exponent = check.exponent(exponent, fn)
    acc = _ops().int_ops_avg_pool_grad(input_sizes, dy, **check.pool_attrs(pool_size, strides, padding, fn),
                                       Tacc=check.sum_dtype(dy.dtype))
    return requantize(acc, exponent - _limits()["AVG_POOL_SHIFT"], "nearest", bits=dy.dtype.size * 8)


def int_add(a, a_exponent, b, b_exponent, rounding="nearest", seed=None):
    """Residual add of two int8 DFP tensors: exact alignment, one rounding.

    int16 operands (DFP16; an int8 one beside an int16 one is widened) are
    aligned in int64 (exact up to a 47-bit shift) and give int16 results.

    >>> int_add(tf.constant([100], tf.int8), 0, tf.constant([1], tf.int8), -3)
    """
    fn = "int_add"
    a, b, dtype, acc_dtype = check.product_operands(a, b, fn, "a", "b")
    if a.shape.is_fully_defined() and b.shape.is_fully_defined() and a.shape != b.shape:
        raise ValueError(f"{fn}: a and b must have the same shape, got {a.shape} and {b.shape}")
    acc, acc_exponent = _ops().int_ops_aligned_add(
        a, check.exponent(a_exponent, fn, "a_exponent"), b, check.exponent(b_exponent, fn, "b_exponent"),
        Tacc=acc_dtype)
    return requantize(acc, acc_exponent, rounding, bits=dtype.size * 8, seed=seed)


def int_softmax_cross_entropy_grad(logits, exponent, labels, rounding="pseudo_stochastic",
                                   seed=None):
    """NITI's integer cross-entropy gradient: ``(err, -7)`` with
    ``err * 2**-7 ~= softmax(logits * 2**exponent) - onehot(labels)``; int16
    logits (DFP16) give int16 ``err`` at exponent -15 (docs/algorithms.md 16).

    >>> err, e = int_softmax_cross_entropy_grad(tf.constant([[10, 0]], tf.int8), -2, [0])
    """
    fn = "int_softmax_cross_entropy_grad"
    logits = check.one_of(logits, (tf.int8, tf.int16), "logits", fn)
    check.rank(logits, 2, "logits", fn)
    labels = check.one_of(labels, (tf.int32, tf.int64), "labels", fn)
    check.rank(labels, 1, "labels", fn)
    rounding = check.rounding(rounding, fn, ("pseudo_stochastic", "stochastic"))
    return _ops().int_ops_softmax_cross_entropy_grad(
        logits, check.exponent(exponent, fn), labels, check.seed(seed, rounding, fn), rounding=rounding)


def integer_sgd_update(w, grad, mu=5, momentum=0, momentum_buffer=None, weight_decay=0):
    """NITI's integer SGD step; returns ``(new_w, new_momentum_buffer)``.

    ``s = bit_length(max|grad|) - mu``; the gradient is shifted right by ``s``
    (pseudo-stochastic rounding) when ``s >= 1`` and subtracted from ``w``
    with clipping. ``momentum`` is in sixteenths (0..16): ``m = clip(m *
    momentum / 16 + g)``, ``w -= m``. ``weight_decay`` d adds
    ``d * w * 2**(bit_length(max|grad|) - 15)`` to the gradient first. With
    int16 ``w`` this is the 16-bit weight accumulation of NITI; derive the
    int8 weights with :func:`int8_weights`. int32 ``w`` (biases) clip at the
    int32 range. ``grad`` is int32, or int64 (the DFP16 products).

    >>> new_w, _ = integer_sgd_update(tf.zeros([3], tf.int8), tf.constant([640, -64, 0]), mu=3)
    """
    fn = "integer_sgd_update"
    w = check.one_of(w, (tf.int8, tf.int16, tf.int32), "w", fn)
    grad = check.one_of(grad, (tf.int32, tf.int64), "grad", fn)
    if w.shape.is_fully_defined() and grad.shape.is_fully_defined() and w.shape != grad.shape:
        raise ValueError(f"{fn}: grad has shape {grad.shape}, the weights {w.shape}")
    if check.is_int(mu):  # a tensor (a schedule's value) is checked by the kernel
        check.int_in(mu, "mu", fn, 1, 30)
    momentum = check.int_in(momentum, "momentum", fn, 0, 16, " (sixteenths)")
    weight_decay = check.int_in(weight_decay, "weight_decay", fn, 0, 1024)
    if momentum and momentum_buffer is None:
        raise ValueError(f"{fn}: momentum > 0 needs a momentum_buffer (same shape and dtype as w)")
    if momentum_buffer is None:
        momentum_buffer = tf.zeros([0], w.dtype)
    else:
        momentum_buffer = check.tensor(momentum_buffer, w.dtype, "momentum_buffer", fn)
    return _ops().int_ops_sgd_update(w, grad, momentum_buffer, check.tensor(mu, tf.int32, "mu", fn),
                                     momentum=int(momentum), weight_decay=int(weight_decay))


def integer_adam_update(w, grad, m, v, step, beta_1=58982, beta_2=65470, step_shift=0):
    """Integer Adam step ``step`` (>= 1) (docs/algorithms.md 14): returns ``(new_w, new_m, new_v)``.

    ``w`` int8/int16/int32 weights, ``grad`` their int32 gradient (int64:
    the DFP16 products), ``m`` and
    ``v`` int32 moments; ``beta_1``, ``beta_2`` with 16 fraction bits
    (``round(beta * 2**16)``); a step ``m_hat / sqrt(v_hat)`` of 1 moves a
    weight by ``2**step_shift`` units.

    >>> w, m, v = integer_adam_update(w, g, m, v, step=1)
    """
    fn = "integer_adam_update"
    w = tf.convert_to_tensor(w)
    if w.dtype not in (tf.int8, tf.int16, tf.int32):
        raise ValueError(f"{fn}: w must be int8, int16 or int32, got {w.dtype.name}")
    grad = check.one_of(grad, (tf.int32, tf.int64), "grad", fn)
    m = check.tensor(m, tf.int32, "m", fn)
    v = check.tensor(v, tf.int32, "v", fn)
    step = check.tensor(step, tf.int64, "step", fn)
    beta_1 = check.int_in(beta_1, "beta_1", fn, 0, 2**16 - 1)
    beta_2 = check.int_in(beta_2, "beta_2", fn, 0, 2**16 - 1)
    step_shift = check.int_in(step_shift, "step_shift", fn, -16, 16)
    return _ops().int_ops_adam_update(w, grad, m, v, step, beta_1=beta_1, beta_2=beta_2, step_shift=step_shift)


def int8_weights(w16):
    """int8 weights from 16-bit accumulated ones: pseudo-stochastic shift by 8, clipped."""
    w16 = check.tensor(w16, tf.int16, "w16", "int8_weights")
    shifted = round_shift(tf.cast(w16, tf.int32), 8, "pseudo_stochastic", limit=127)
    return tf.cast(shifted, tf.int8)


# Integer ops have no gradient: integer tensors never carry one in
# TensorFlow's tape. The float32 carrier ops of tf_int_ops.layer_ops (which
# declare their own gradient ops gradient-free) are the differentiable surface.
# IntOps>Limits is never run: it only publishes cc/core/limits.h (above).
for _op_name in ("BitLength", "Quantize", "Dequantize", "Requantize", "RoundShift", "AlignedAdd",
                 "MatMul", "BatchMatMul", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MaxPool",
                 "MaxPoolGrad", "AvgPool", "AvgPoolGrad", "SoftmaxCrossEntropyGrad", "SgdUpdate", "AdamUpdate",
                 "Limits"):
    tf.no_gradient(f"IntOps>{_op_name}")

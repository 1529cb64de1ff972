"""Pooling ops on carriers (keras_int.layers' pooling layers) and their integer gradients."""

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args
from tf_int_ops.layer_ops._carrier import error_to_carrier


def max_pool2d(x, pool_size=2, strides=None, padding="VALID", bits=8):
    """Integer max pooling on an NHWC carrier; the backward pass is integer too.

    Windows that do not overlap (the usual ``strides == pool_size``) are
    pooled by ``IntOps>MaxPoolCarrier``: integer comparisons of the carrier's
    bit patterns, which order like the values, so the int8 mantissas are
    compared without converting to int8 and back (the same result), and the
    gradient routes the error carrier to each window's recorded maximum
    without arithmetic. A raw float input (not a carrier) is pooled the same
    way, so it reaches the next integer layer unquantized, which quantizes it.
    Overlapping windows quantize, pool the int8 mantissas and route int8
    errors with int32 sums; at ``bits=16`` (DFP16) they are not supported
    yet (an error says so): their int16 errors would need int64 sums.
    """
    fn = "max_pool2d"
    x = check.carrier(x, "x", fn)
    check.rank(x, 4, "x", fn)
    check.bits(bits, fn)
    attrs = check.pool_attrs(pool_size, strides, padding, fn)
    (k_h, k_w), (s_h, s_w) = attrs["ksize"], attrs["strides"]
    if s_h >= k_h and s_w >= k_w and k_h * k_w <= ops.MAX_POOL_CARRIER_TAPS:
        return _loader.load().int_ops_max_pool_carrier(x, **attrs)[0]
    if bits == 16:
        raise ValueError(f"{fn}: overlapping windows (pool_size {attrs['ksize']} with strides {attrs['strides']}) are "
                         "not supported at bits=16 yet; use strides >= pool_size or bits=8")

    @tf.custom_gradient
    def _max_pool(x):
        q, e = replicas.quantize(x)
        y = ops.dequantize(ops.int_max_pool2d(q, pool_size, strides, padding), e)

        def grad(dy):
            err, err_exponent = replicas.quantize(dy)
            return error_to_carrier(
                ops.int_max_pool2d_grad(q, err, pool_size, strides, padding), err_exponent)

        return y, grad

    return _max_pool(x)


@tf.RegisterGradient("IntOps>MaxPoolCarrier")
def _max_pool_carrier_grad(op, dy, unused_which_grad):
    attrs = {name: op.get_attr(name) for name in ("ksize", "strides")}
    dx = _loader.load().int_ops_max_pool_carrier_grad(
        tf.shape(_op_args.inputs(op)["x"]), dy, _op_args.outputs(op)["which"],
        padding=op.get_attr("padding").decode(), **attrs)
    return _op_args.gradients(op, x=dx)


# The gradient op routes the error carrier by the recorded taps: no second-order gradient.
tf.no_gradient("IntOps>MaxPoolCarrierGrad")


def avg_pool2d(x, pool_size=2, strides=None, padding="VALID", rounding="nearest", seed=None, bits=8):
    """Integer average pooling on an NHWC carrier of ``bits``-bit mantissas (8, or 16 for DFP16).

    ``int_avg_pool2d`` on the carrier's mantissas (window sums times
    round(2**16/n), requantized); the gradient is ``int_avg_pool2d_grad`` of
    the quantized error. Under a tf.distribute strategy the quantize and
    requantize exponents are agreed across replicas (tf_int_ops.replicas).
    """
    fn = "avg_pool2d"
    x = check.carrier(x, "x", fn)
    check.rank(x, 4, "x", fn)
    check.bits(bits, fn)
    attrs = check.pool_attrs(pool_size, strides, padding, fn)
    raw = _loader.load()

    @tf.custom_gradient
    def _avg_pool(x):
        q, e = replicas.quantize(x, bits=bits)
        sum_dtype = check.sum_dtype(q.dtype)
        acc = raw.int_ops_avg_pool(q, **attrs, Tacc=sum_dtype)
        y, _ = replicas.requantize_to_carrier(acc, e - ops.AVG_POOL_SHIFT, rounding, seed, bits)

        def grad(dy):
            err, err_exponent = replicas.quantize(dy, bits=bits)
            dx = raw.int_ops_avg_pool_grad(tf.shape(q), err, **attrs, Tacc=sum_dtype)
            return error_to_carrier(dx, err_exponent - ops.AVG_POOL_SHIFT, bits)

        return y, grad

    return _avg_pool(x)

"""Attention's ops on carriers (keras_int.layers.IntMultiHeadAttention): the
integer softmax with masks and a folded scale, the product of two
activation tensors, and their integer gradients (docs/algorithms.md
sections 10 and 13)."""

import math

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args
from tf_int_ops.layer_ops._carrier import error_to_carrier

# The softmax scale's multiplier bits: 1 / sqrt(d) = m * 2**-s with m in
# [2**14, 2**15] (relative error below 2**-15), or m = 1 for d a power of 4.
_SCALE_BITS = 15


def attention_scale(key_dim):
    """``(multiplier, shift)`` with ``multiplier * 2**-shift ~= 1 / sqrt(key_dim)``, in integers.

    A power of 4 gives ``(1, log4(key_dim))`` exactly; otherwise ``shift = 15 +
    floor(log2(key_dim) / 2)`` and ``multiplier = round(2**shift / sqrt(key_dim))``
    (computed with integer square roots), relative error below 2**-15.

    >>> attention_scale(16), attention_scale(8)
    ((1, 2), (23170, 16))
    """
    key_dim = check.positive_int(key_dim, "key_dim", "attention_scale")
    j = (key_dim.bit_length() - 1) // 2
    if key_dim == 4**j:
        return 1, j
    shift = _SCALE_BITS + j
    # round(sqrt(4**shift / d)) = floor(sqrt(4**shift / d) + 1/2) = (isqrt(4**(shift + 1) // d) + 1) // 2.
    multiplier = (math.isqrt((4 ** (shift + 1)) // key_dim) + 1) // 2
    return int(multiplier), int(shift)


def softmax(x, mask=None, scale=(1, 0), rounding="nearest", seed=None):
    """Integer softmax of ``scale * x`` over the last axis.

    Args:
      x: float32 carrier ``[..., n]``.
      mask: optional bool tensor of x's shape (True: keep); masked entries
        get probability 0 (a row with every entry masked is all zero).
      scale: ``(multiplier, shift)``, the factor ``multiplier * 2**-shift``
        folded into the logits exactly (``attention_scale``).
    Returns:
      ``(y, y_exponent)``: int8 probabilities as a carrier.

    >>> y, e = softmax(tf.constant([[1.0, 2.0, 3.0]]))
    """
    fn = "softmax"
    x = check.carrier(x, "x", fn)
    rounding = check.rounding(rounding, fn)
    multiplier, shift = _scale(scale, fn)
    seed = check.seed(seed, rounding, fn)
    attrs = {"scale_multiplier": multiplier, "scale_shift": shift, "rounding": rounding}
    masks = []
    if mask is not None:
        mask = tf.convert_to_tensor(mask)
        if mask.dtype != tf.bool:
            raise ValueError(f"{fn}: mask must be bool, got {mask.dtype.name}")
        masks = [tf.broadcast_to(mask, tf.shape(x))]
    raw = _loader.load()
    if replicas.count() == 1:
        out = raw.int_ops_softmax(x, masks, seed, **attrs)
        return out.y, out.y_exponent

    def forward(whole, unused_handles):
        out = raw.int_ops_softmax(whole[0], whole[1:], seed, **attrs)
        return [out.y], [out.y_exponent], out._asdict()

    def backward(dy, saved):
        return [_softmax_backward(dy[0], saved, multiplier, shift)] + [None] * len(masks), []

    y, y_exponent = replicas.on_whole_batch(forward, backward, [x] + masks, fn=fn)
    return y, y_exponent


def _scale(scale, fn):
    if not isinstance(scale, (tuple, list)) or len(scale) != 2:
        raise ValueError(f"{fn}: scale must be a pair (multiplier, shift), got {scale!r}")
    return (check.int_in(scale[0], "scale multiplier", fn, 1, ops.SOFTMAX_MAX_MULTIPLIER),
            check.int_in(scale[1], "scale shift", fn, 0, ops.SOFTMAX_MAX_SHIFT))


def _softmax_backward(dy, outputs, multiplier, shift):
    return _loader.load().int_ops_softmax_grad(dy, outputs["y_q"], outputs["y_exponent"],
                                               scale_multiplier=multiplier, scale_shift=shift).dx


@tf.RegisterGradient("IntOps>Softmax")
def _softmax_grad(op, dy, *unused_output_grads):
    dx = _softmax_backward(dy, _op_args.outputs(op), op.get_attr("scale_multiplier"), op.get_attr("scale_shift"))
    return _op_args.gradients(op, x=dx)


def matmul(a, b, transpose_b=False, rounding="nearest", seed=None):
    """The product of two carriers ``a @ b`` (or ``a @ b^T``) over matching batch axes.

    Both operands are quantized exactly, multiplied exactly in int32 and the
    result requantized with ``rounding``. The gradient keeps the int8
    mantissas only: ``da = err @ b^T``, ``db = a^T @ err`` (transposed for
    ``transpose_b``), each requantized (nearest).

    Returns ``(y, y_exponent)``.

    >>> y, e = matmul(tf.ones([2, 3, 4]), tf.ones([2, 5, 4]), transpose_b=True)   # [2, 3, 5]
    """
    fn = "matmul"
    a = check.carrier(a, "a", fn)
    b = check.carrier(b, "b", fn)
    rounding = check.rounding(rounding, fn)
    seed = check.seed(seed, rounding, fn)
    transpose_b = bool(transpose_b)

    @tf.custom_gradient
    def _product(a, b):
        qa, ea = replicas.quantize(a)
        qb, eb = replicas.quantize(b)
        acc = ops.int_batch_matmul(qa, qb, transpose_w=transpose_b)
        out = replicas.requantize_to_carrier(acc, ea + eb, rounding, seed)

        def grad(dy, unused_exponent_grad=None):
            err, e_err = replicas.quantize(dy)
            da = error_to_carrier(ops.int_batch_matmul(err, qb, transpose_w=not transpose_b), e_err + eb)
            if transpose_b:
                db = ops.int_batch_matmul(err, qa, transpose_x=True)
            else:
                db = ops.int_batch_matmul(qa, err, transpose_x=True)
            return da, error_to_carrier(db, e_err + ea)

        return (out[0], out[1]), grad

    return _product(a, b)


tf.no_gradient("IntOps>SoftmaxGrad")

"""Loss ops on carriers (keras_int.losses.IntegerCrossEntropy) with NITI's integer gradient."""

import tensorflow as tf

from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas


ERROR_EXPONENTS = ("fixed", "dynamic")


def checked_error_exponent(error_exponent, fn):
    """`error_exponent` if it names a cross-entropy error exponent rule, else a ValueError."""
    if error_exponent not in ERROR_EXPONENTS:
        raise ValueError(f"{fn}: error_exponent must be one of {ERROR_EXPONENTS}, got {error_exponent!r}")
    return error_exponent


def softmax_cross_entropy(labels, logits, rounding="pseudo_stochastic", seed=None, bits=8,
                          error_exponent="fixed"):
    """Per-sample cross-entropy whose gradient is NITI's integer one.

    The returned loss values are computed in float32 for display only; they
    take no part in training. The gradient is
    ``int_softmax_cross_entropy_grad`` scaled, in integers, by the upstream
    gradient (Keras' 1/batch): each row's error is multiplied by the int8
    mantissa of its upstream factor and requantized, which is exact when the
    factor is a power of two.

    Args:
      labels: int class indices ``[batch]``.
      logits: float32 carrier ``[batch, classes]``.
      bits: the logits' and the error's mantissa width: 8, or 16 (DFP16:
        int16 logits, an int16 error at exponent -15).
      error_exponent: "fixed" (NITI: the int8 error at exponent -7, so that
        errors below 2**-8 are zero), or "dynamic" (docs/algorithms.md 4,
        "Dynamic error exponent"): the error computed with 15 fraction bits
        (the 16-bit kernel on the logits widened exactly) and requantized to
        ``bits`` on its largest magnitude, with ``rounding``. At 16 bits the
        two are the same.
    """
    fn = "softmax_cross_entropy"
    logits = check.carrier(logits, "logits", fn)
    check.bits(bits, fn)
    dynamic = checked_error_exponent(error_exponent, fn) == "dynamic" and bits == 8
    labels = check.one_of(labels, (tf.int32, tf.int64), "labels", fn)

    @tf.custom_gradient
    def _loss(logits):
        q, e = replicas.quantize(logits, bits=bits)
        display_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)

        def grad(upstream):
            if dynamic:  # q * 2**e == (q << 8) * 2**(e - 8): the same softmax, 8 more fraction bits
                err, err_exponent = ops.int_softmax_cross_entropy_grad(
                    tf.cast(q, tf.int16) * 256, e - 8, labels, rounding, seed)
            else:
                err, err_exponent = ops.int_softmax_cross_entropy_grad(q, e, labels, rounding, seed)
            scale, scale_exponent = replicas.quantize(upstream)
            acc = tf.cast(err, tf.int32) * tf.cast(scale, tf.int32)[:, tf.newaxis]
            # |err * scale| < 2**15 * 2**7: exact in int32 at either width. The
            # fixed exponent's requantize is exact for a power-of-two factor (nearest
            # then only matters for others); the dynamic one drops 8 or more bits and
            # rounds as the loss does, a stochastic requantize drawing its own words
            # (key + 1), not the kernel's again.
            requantize_rounding, requantize_seed = "nearest", None
            if dynamic:
                requantize_rounding = rounding
                if rounding == "stochastic":
                    requantize_seed = check.seed(seed, rounding, fn) + tf.constant([1, 0], tf.int64)
            return replicas.requantize_to_carrier(acc, err_exponent + scale_exponent, requantize_rounding,
                                                  requantize_seed, bits)[0]

        return display_loss, grad

    return _loss(logits)

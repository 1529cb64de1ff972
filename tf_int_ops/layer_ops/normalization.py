"""Batch and layer normalization on carriers (keras_int.layers.IntBatchNormalization,
IntLayerNormalization) and their integer gradients.

Batch norm is docs/algorithms.md section 8, layer norm section 9 (the same
statistics, inverse square root and xhat per row instead of per channel). Section 8: exact int64 statistics, an
integer inverse square root, ``gamma`` (int8) and ``beta`` (int32 at gamma's
exponent minus 8, the accumulator's) read through their resource handles, and a backward pass in
integers. ``epsilon`` and ``momentum`` are hyperparameters, turned into
integers once here (``epsilon_pair``, ``momentum_fraction``).
"""

import math

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args, _weighted


def epsilon_pair(epsilon, fn="batch_norm"):
    """``(m, e)`` with ``m * 2**e ~= epsilon`` and ``m`` in ``[2**14, 2**15)`` (relative error below 2**-15).

    >>> epsilon_pair(1e-3)
    (16777, -24)
    """
    epsilon = check.positive_float(epsilon, "epsilon", fn)
    bits = ops.NORM_EPSILON_BITS
    fraction, exponent = math.frexp(epsilon)  # fraction in [0.5, 1)
    mantissa = round(fraction * 2**bits)
    if mantissa == 2**bits:
        mantissa, exponent = mantissa // 2, exponent + 1
    return int(mantissa), int(exponent - bits)


def momentum_fraction(momentum, fn="batch_norm"):
    """``round(momentum * 2**16)``: the integer momentum of the moving averages."""
    momentum = check.fraction(momentum, "momentum", fn)
    return int(round(momentum * 2**ops.NORM_MOMENTUM_BITS))


def _epsilon_attrs(epsilon, fn):
    if isinstance(epsilon, (tuple, list)):
        if len(epsilon) != 2 or not all(check.is_int(v) for v in epsilon):
            raise ValueError(f"{fn}: epsilon must be a number or a pair (mantissa, exponent) of ints, got {epsilon!r}")
        mantissa, exponent = (int(v) for v in epsilon)
    else:
        mantissa, exponent = epsilon_pair(epsilon, fn)
    return {"epsilon_mantissa": mantissa, "epsilon_exponent": exponent}


def _normalization_args(x, min_rank, gamma, beta, gamma_exponent, epsilon, rounding, seed, error_exponent, fn):
    """The checked arguments of a normalization op: ``(x, [gamma and beta handles],
    gamma_exponent, seed, error_exponent handles, attrs)``."""
    x = check.carrier(x, "x", fn)
    if x.shape.rank is not None and x.shape.rank < min_rank:
        raise ValueError(f"{fn}: x must have rank >= {min_rank}, got shape {x.shape}")
    gamma_variable = _weighted.resource_variable(gamma, "gamma", fn, (tf.int8,))
    beta_variable = _weighted.resource_variable(beta, "beta", fn, (tf.int32,))
    rounding = check.rounding(rounding, fn)
    handles = [_tf_internal.resource_handle(gamma_variable), _tf_internal.resource_handle(beta_variable)]
    return (x, handles, check.exponent(gamma_exponent, fn, "gamma_exponent"), check.seed(seed, rounding, fn),
            _weighted.error_exponents(error_exponent, fn), {**_epsilon_attrs(epsilon, fn), "rounding": rounding})


def batch_norm(x, gamma, beta, gamma_exponent, epsilon=1e-3, training=True, moving_mean=None,
               moving_mean_exponent=None, moving_variance=None, moving_variance_exponent=None,
               rounding="nearest", seed=None, error_exponent=None):
    """Integer batch normalization of a carrier over all axes but the last.

    Args:
      x: float32 carrier ``[..., C]`` (rank >= 2).
      gamma: int8 variable ``[C]`` at ``gamma_exponent``.
      beta: int32 variable ``[C]`` at ``gamma_exponent - 8`` (``NORM_FRACTION_BITS``:
        the accumulator's exponent).
      gamma_exponent: int32 scalar.
      epsilon: a number > 0, or its integer pair ``(m, e)`` (``epsilon_pair``).
      training: True: the batch's statistics; False: the moving statistics
        ``moving_mean``/``moving_variance`` (int32 ``[C]`` mantissas) and
        their exponents, constants to the gradient, which reaches ``x`` only.
      error_exponent: optional scalar int32 variable in which the backward
        pass records the exponent of the error reaching the output.
    Returns:
      A dict: ``y`` (carrier) and ``y_exponent``; in training also
      ``batch_mean``, ``batch_mean_exponent``, ``batch_variance``,
      ``batch_variance_exponent`` (int32 mantissas and exponents).

    >>> gamma = tf.Variable(tf.constant([64, 64], tf.int8))   # 1.0 at exponent -6
    >>> beta = tf.Variable(tf.zeros([2], tf.int32))
    >>> out = batch_norm(tf.constant([[1.0, 2.0], [3.0, 0.5]]), gamma, beta, -6)
    """
    fn = "batch_norm"
    x, handles, gamma_exponent, seed, error_handles, attrs = _normalization_args(
        x, 2, gamma, beta, gamma_exponent, epsilon, rounding, seed, error_exponent, fn)
    raw = _loader.load()
    if training:
        batch_names = ("batch_mean", "batch_mean_exponent", "batch_variance", "batch_variance_exponent")
        if replicas.count() == 1:
            out = raw.int_ops_batch_norm(x, *handles, gamma_exponent, seed, error_handles, **attrs)
            return {name: getattr(out, name) for name in ("y", "y_exponent") + batch_names}

        def forward(whole, weights):
            out = raw.int_ops_batch_norm(whole[0], *weights, gamma_exponent, seed, [], **attrs)
            return [out.y], [out.y_exponent] + [getattr(out, name) for name in batch_names], out._asdict()

        def backward(dy, saved):
            dx, dgamma, dbeta = _batch_norm_backward(dy[0], saved, gamma_exponent, error_handles)
            return [dx], [dgamma, dbeta]

        values = replicas.on_whole_batch(forward, backward, [x], handles, fn)
        return dict(zip(("y", "y_exponent") + batch_names, values))
    statistics = {"moving_mean": moving_mean, "moving_mean_exponent": moving_mean_exponent,
                  "moving_variance": moving_variance, "moving_variance_exponent": moving_variance_exponent}
    missing = [name for name, value in statistics.items() if value is None]
    if missing:
        raise ValueError(f"{fn}: inference (training=False) needs {missing}")
    statistics = [check.tensor(value, tf.int32, name, fn) for name, value in statistics.items()]
    if replicas.count() == 1:
        out = raw.int_ops_batch_norm_inference(x, *handles, gamma_exponent, *statistics, seed, **attrs)
        return {"y": out.y, "y_exponent": out.y_exponent}

    def inference_forward(whole, weights):
        out = raw.int_ops_batch_norm_inference(whole[0], *weights, gamma_exponent, *statistics, seed, **attrs)
        return [out.y], [out.y_exponent], out._asdict()

    def inference_backward(dy, saved):
        return [_batch_norm_frozen_backward(dy[0], saved, gamma_exponent)], []

    y, y_exponent = replicas.on_whole_batch(inference_forward, inference_backward, [x], handles, fn)
    return {"y": y, "y_exponent": y_exponent}


def layer_norm(x, gamma, beta, gamma_exponent, epsilon=1e-3, rounding="nearest", seed=None, error_exponent=None,
               error_bits=16):
    """Integer layer normalization of a carrier: each row over its last axis.

    The same in training and inference (no moving statistics).

    Args:
      x: float32 carrier ``[..., C]`` (rank >= 1).
      gamma: int8 variable ``[C]`` at ``gamma_exponent``.
      beta: int32 variable ``[C]`` at ``gamma_exponent - 8`` (the accumulator's).
      gamma_exponent: int32 scalar.
      epsilon: a number > 0, or its integer pair ``(m, e)`` (``epsilon_pair``).
      error_exponent: optional scalar int32 variable in which the backward
        pass records the exponent of the error reaching the output.
      error_bits: 8 or 16, the mantissa width of the error ``dx`` that the
        gradient passes back (docs/algorithms.md section 9: 16 keeps the
        error of a token whose row has a large spread).
    Returns:
      ``(y, y_exponent)``: the output carrier and its exponent.

    >>> gamma = tf.Variable(tf.constant([64, 64, 64], tf.int8))   # 1.0 at exponent -6
    >>> beta = tf.Variable(tf.zeros([3], tf.int32))
    >>> y, e = layer_norm(tf.constant([[1.0, 2.0, 3.0]]), gamma, beta, -6)
    """
    fn = "layer_norm"
    x, handles, gamma_exponent, seed, error_handles, attrs = _normalization_args(
        x, 1, gamma, beta, gamma_exponent, epsilon, rounding, seed, error_exponent, fn)
    check.bits(error_bits, fn + ": error_bits")
    attrs["dx_bits"] = error_bits
    raw = _loader.load()
    if replicas.count() == 1:
        out = raw.int_ops_layer_norm(x, *handles, gamma_exponent, seed, error_handles, **attrs)
        return out.y, out.y_exponent

    def forward(whole, weights):
        out = raw.int_ops_layer_norm(whole[0], *weights, gamma_exponent, seed, [], **attrs)
        return [out.y], [out.y_exponent], out._asdict()

    def backward(dy, saved):
        dx, dgamma, dbeta = _layer_norm_backward(dy[0], saved, gamma_exponent, error_handles, error_bits)
        return [dx], [dgamma, dbeta]

    y, y_exponent = replicas.on_whole_batch(forward, backward, [x], handles, fn)
    return y, y_exponent


def moving_average(moving, moving_exponent, batch, batch_exponent, momentum):
    """``momentum * moving + (1 - momentum) * batch`` on int32 mantissas with exponents.

    ``momentum`` is the integer ``p`` of ``momentum_fraction`` (in [0, 2**16]).
    Returns ``(mantissas, exponent)``, normalised to 30-bit mantissas.
    """
    fn = "moving_average"
    momentum = check.int_in(momentum, "momentum", fn, 0, 2**ops.NORM_MOMENTUM_BITS)
    return _loader.load().int_ops_norm_moving_average(
        check.tensor(moving, tf.int32, "moving", fn), check.tensor(moving_exponent, tf.int32, "moving_exponent", fn),
        check.tensor(batch, tf.int32, "batch", fn), check.tensor(batch_exponent, tf.int32, "batch_exponent", fn),
        momentum=momentum)


def _normalization_backward(grad_op, dy, outputs, gamma_exponent, error_handles, **attrs):
    """(dx, dgamma, dbeta) of a training batch norm or a layer norm (`grad_op`: its
    gradient op, with `attrs`), from the forward's outputs by name; the error's
    exponent is recorded in `error_handles`.

    gamma_q is the gamma the forward pass used, not a fresh read of the
    variable, which the optimizer may already have updated."""
    grad = grad_op(dy, outputs["x_q"], outputs["x_exponent"], outputs["x_sum"], outputs["inv_sqrt"],
                   outputs["inv_shift"], outputs["gamma_q"], gamma_exponent, **attrs)
    for handle in error_handles:
        tf.raw_ops.AssignVariableOp(resource=handle, value=grad.err_exponent)
    return grad.dx, grad.dgamma, grad.dbeta


def _batch_norm_backward(dy, outputs, gamma_exponent, error_handles):
    return _normalization_backward(_loader.load().int_ops_batch_norm_grad, dy, outputs, gamma_exponent,
                                   error_handles)


def _layer_norm_backward(dy, outputs, gamma_exponent, error_handles, dx_bits):
    return _normalization_backward(_loader.load().int_ops_layer_norm_grad, dy, outputs, gamma_exponent,
                                   error_handles, dx_bits=dx_bits)


def _registered_normalization_grad(backward, *attr_names):
    """The registered gradient of a normalization op whose backward is
    `backward`, which also takes the op's attributes `attr_names`."""
    def grad(op, dy, *unused_output_grads):
        inputs = _op_args.inputs(op)
        dx, dgamma, dbeta = backward(dy, _op_args.outputs(op), inputs["gamma_exponent"], inputs["error_exponent"],
                                     *(op.get_attr(name) for name in attr_names))
        return _op_args.gradients(op, x=dx, gamma=dgamma, beta=dbeta)
    return grad


tf.RegisterGradient("IntOps>BatchNorm")(_registered_normalization_grad(_batch_norm_backward))
tf.RegisterGradient("IntOps>LayerNorm")(_registered_normalization_grad(_layer_norm_backward, "dx_bits"))


def _batch_norm_frozen_backward(dy, outputs, gamma_exponent):
    """dx of a frozen layer (inference mode): the statistics are constants, so the
    error is dy * gamma / sigma per channel (docs/algorithms.md section 8);
    gamma, beta and the moving statistics get no gradient in this mode."""
    return _loader.load().int_ops_batch_norm_frozen_grad(
        dy, outputs["x_exponent"], outputs["count"], outputs["inv_sqrt"], outputs["inv_shift"],
        outputs["gamma_q"], gamma_exponent).dx


@tf.RegisterGradient("IntOps>BatchNormInference")
def _batch_norm_inference_grad(op, dy, *unused_output_grads):
    dx = _batch_norm_frozen_backward(dy, _op_args.outputs(op), _op_args.inputs(op)["gamma_exponent"])
    return _op_args.gradients(op, x=dx)


# The backward ops and the integer-only ops take no gradient.
tf.no_gradient("IntOps>BatchNormGrad")
tf.no_gradient("IntOps>BatchNormFrozenGrad")
tf.no_gradient("IntOps>NormMovingAverage")
tf.no_gradient("IntOps>LayerNormGrad")

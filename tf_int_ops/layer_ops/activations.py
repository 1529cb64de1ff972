"""Activation ops on carriers (keras_int.layers.IntReLU, IntGELU) and their gradients."""

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check
from tf_int_ops import replicas
from tf_int_ops.layer_ops import _op_args


def relu(x):
    """Integer ReLU on a carrier; the exponent is unchanged.

    For a carrier ``q * 2**e``, ``q > 0`` exactly when the float's sign bit is
    clear and it is not zero, so the op tests those bits and keeps a mask of
    one bit per element for the gradient; no conversion pass is needed. In
    a traced step the output reuses the input's buffer when nothing else
    holds it.

    >>> relu(tf.constant([-1.0, 0.5]))  # [0.0, 0.5]
    """
    x = check.carrier(x, "x", "relu")
    return _loader.load().int_ops_relu(x)[0]


@tf.RegisterGradient("IntOps>Relu")
def _relu_grad(op, dy, unused_mask_grad):
    return _op_args.gradients(op, x=_loader.load().int_ops_relu_grad(dy, _op_args.outputs(op)["mask"]))


def gelu(x, rounding="nearest", seed=None):
    """Integer GELU on a carrier (docs/algorithms.md section 11).

    I-BERT's second-order polynomial for erf, ``GELU(x) ~= x * (1 +
    erf(x / sqrt(2))) / 2``, evaluated in 16-bit fixed point once per int8
    mantissa and requantized with ``rounding``. Returns ``(y, y_exponent)``.

    >>> y, e = gelu(tf.constant([-1.0, 0.5, 2.0]))
    """
    fn = "gelu"
    x = check.carrier(x, "x", fn)
    rounding = check.rounding(rounding, fn)
    seed = check.seed(seed, rounding, fn)
    raw = _loader.load()
    if replicas.count() == 1:
        out = raw.int_ops_gelu(x, seed, rounding=rounding)
        return out.y, out.y_exponent

    def forward(whole, unused_handles):
        out = raw.int_ops_gelu(whole[0], seed, rounding=rounding)
        return [out.y], [out.y_exponent], out._asdict()

    def backward(dy, saved):
        return [_gelu_backward(dy[0], saved)], []

    y, y_exponent = replicas.on_whole_batch(forward, backward, [x], fn=fn)
    return y, y_exponent


def _gelu_backward(dy, outputs):
    return _loader.load().int_ops_gelu_grad(dy, outputs["x_q"], outputs["x_exponent"]).dx


@tf.RegisterGradient("IntOps>Gelu")
def _gelu_grad(op, dy, *unused_output_grads):
    return _op_args.gradients(op, x=_gelu_backward(dy, _op_args.outputs(op)))


# The gradient ops route or scale the error carrier: no second-order gradient.
tf.no_gradient("IntOps>ReluGrad")
tf.no_gradient("IntOps>GeluGrad")

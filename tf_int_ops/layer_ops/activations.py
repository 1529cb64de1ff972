"""Activation ops on carriers (keras_int.layers.IntReLU) and their gradients."""

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check


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
    return _loader.load().int_ops_relu_grad(dy, op.outputs[1])


# The gradient op routes the error carrier by the kept mask: no second-order gradient.
tf.no_gradient("IntOps>ReluGrad")

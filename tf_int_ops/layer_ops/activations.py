"""Activation ops on carriers (keras_int.layers.IntReLU) and their gradients."""

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check
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


# The gradient op routes the error carrier by the kept mask: no second-order gradient.
tf.no_gradient("IntOps>ReluGrad")

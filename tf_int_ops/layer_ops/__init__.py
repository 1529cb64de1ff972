"""Differentiable ops on float32 carriers, the building blocks of keras_int, one module per family.

A carrier is a float32 tensor whose values are exactly ``q * 2**e`` with int8
``q``: converting it to ``(q, e)`` (``quantize``) and back (``dequantize``)
is exact, so integer layers can sit in an ordinary Keras graph and be mixed
with float layers. Every function here converts its carrier inputs to
integers, works in integers, and returns a carrier; its gradient does the
same with the error carrier and keeps only int8 mantissas (and int32
exponents) of the forward pass, never float carriers.

Weights are int8 variables read by the op through their resource handle:
that is what lets ``tape.gradient(loss, int8_variable)`` return the int32
weight gradient.

| module | ops | layer |
|---|---|---|
| ``dense`` | ``dense`` | ``IntDense`` |
| ``conv`` | ``conv2d`` | ``IntConv2D`` |
| ``activations`` | ``relu``, ``gelu`` | ``IntReLU``, ``IntGELU`` |
| ``pooling`` | ``max_pool2d``, ``avg_pool2d`` | the pooling layers |
| ``merging`` | ``add`` | ``IntAdd`` |
| ``normalization`` | ``batch_norm``, ``moving_average``, ``layer_norm`` | ``IntBatchNormalization``, ``IntLayerNormalization`` |
| ``regularization`` | ``dropout`` | ``IntDropout`` |
| ``embedding`` | ``embedding`` | ``IntEmbedding``, ``IntPositionEmbedding`` |
| ``attention`` | ``softmax``, ``matmul``, ``attention_scale`` | ``IntMultiHeadAttention`` |
| ``losses`` | ``softmax_cross_entropy`` | ``IntegerCrossEntropy`` |

Each module registers the gradients of its ops (``tf.RegisterGradient``) and
declares its gradient ops gradient-free (``tf.no_gradient``) when imported;
``_weighted`` holds what the ops with weights share, ``_carrier`` the carrier
helpers. tests/test_gradient_registry.py checks that every ``IntOps>`` op of
the library is one or the other.
"""

from tf_int_ops import _loader  # noqa: F401  (tests reach the raw ops as layer_ops._loader)
from tf_int_ops import ops  # noqa: F401
from tf_int_ops.layer_ops.activations import gelu, relu
from tf_int_ops.layer_ops.attention import attention_scale, matmul, softmax
from tf_int_ops.layer_ops.conv import conv2d
from tf_int_ops.layer_ops.dense import dense
from tf_int_ops.layer_ops.embedding import embedding
from tf_int_ops.layer_ops.losses import softmax_cross_entropy
from tf_int_ops.layer_ops.merging import add
from tf_int_ops.layer_ops.normalization import batch_norm, layer_norm, moving_average
from tf_int_ops.layer_ops.pooling import avg_pool2d, max_pool2d
from tf_int_ops.layer_ops.regularization import dropout

__all__ = ["add", "attention_scale", "avg_pool2d", "batch_norm", "conv2d", "dense", "dropout", "embedding", "gelu",
           "layer_norm", "matmul", "max_pool2d", "moving_average", "relu", "softmax", "softmax_cross_entropy"]

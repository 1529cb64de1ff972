"""Integer Keras layers, one module per family (as keras.layers).

Each layer passes float32 *carriers* (values exactly ``q * 2**e``, int8 ``q``)
to the next, so integer and float Keras layers can be mixed; inside, all
arithmetic is integer (see tf_int_ops.layer_ops). The first integer layer
quantises raw float input exactly as docs/algorithms.md section 1 says.

| module | layers |
|---|---|
| ``base`` | the shared base classes (rounding, seeds, exponent variables, int8 kernels) |
| ``core`` | ``IntDense`` |
| ``convolutional`` | ``IntConv2D`` |
| ``activations`` | ``IntReLU``, ``IntGELU`` |
| ``pooling`` | ``IntMaxPool2D`` (alias ``IntMaxPooling2D``), ``IntAveragePooling2D`` (alias ``IntAvgPool2D``), ``IntGlobalAveragePooling2D``, ``IntGlobalAveragePooling1D`` |
| ``reshaping`` | ``IntFlatten`` |
| ``regularization`` | ``IntDropout`` |
| ``merging`` | ``IntAdd`` |
| ``normalization`` | ``IntBatchNormalization``, ``IntLayerNormalization`` |
| ``embedding`` | ``IntEmbedding``, ``IntPositionEmbedding`` |
| ``attention`` | ``IntMultiHeadAttention`` |

Every class is registered with Keras under ``keras_int>ClassName``, so saved
models load whatever module the class lives in.
"""

from keras_int.layers.activations import IntGELU, IntReLU
from keras_int.layers.attention import IntMultiHeadAttention
from keras_int.layers.convolutional import IntConv2D
from keras_int.layers.core import IntDense
from keras_int.layers.embedding import IntEmbedding, IntPositionEmbedding
from keras_int.layers.merging import IntAdd
from keras_int.layers.normalization import IntBatchNormalization, IntLayerNormalization
from keras_int.layers.pooling import (
    IntAveragePooling2D,
    IntAvgPool2D,
    IntGlobalAveragePooling1D,
    IntGlobalAveragePooling2D,
    IntMaxPool2D,
    IntMaxPooling2D,
)
from keras_int.layers.regularization import IntDropout
from keras_int.layers.reshaping import IntFlatten

__all__ = [
    "IntAdd",
    "IntAveragePooling2D",
    "IntAvgPool2D",
    "IntBatchNormalization",
    "IntConv2D",
    "IntDense",
    "IntDropout",
    "IntEmbedding",
    "IntFlatten",
    "IntGELU",
    "IntGlobalAveragePooling1D",
    "IntGlobalAveragePooling2D",
    "IntLayerNormalization",
    "IntMaxPool2D",
    "IntMaxPooling2D",
    "IntMultiHeadAttention",
    "IntPositionEmbedding",
    "IntReLU",
]

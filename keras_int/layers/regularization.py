"""Integer regularization layers."""

import keras
import numpy as np

from keras_int.layers.base import PACKAGE, QuantizingIntLayer
from tf_int_ops import layer_ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntDropout(QuantizingIntLayer):
    """Integer dropout with rate ``1 - 2**-k`` (0.5, 0.75, 0.875, ...).

    Kept mantissas are unchanged and the exponent grows by ``k``: the
    ``1 / (1 - rate)`` scaling is exact. The mask is drawn by an integer,
    counter-based generator from ``seed`` and a step counter. ``bits``: the
    mantissa width (8, or 16 for DFP16; None takes
    ``keras_int.default_bits()``).

    >>> layer = IntDropout(0.5)
    >>> y = layer(keras.random.uniform((4, 8)), training=True)
    """

    _counts_steps = True

    def __init__(self, rate=0.5, seed=None, bits=None, **kwargs):
        super().__init__(rounding="nearest", seed=seed, bits=bits, **kwargs)
        keep_bits = -np.log2(1.0 - rate) if 0 < rate < 1 else None
        if keep_bits is None or keep_bits != round(keep_bits):
            raise ValueError(f"IntDropout: rate must be 1 - 2**-k (0.5, 0.75, 0.875, ...) so that "
                             f"the rescaling is an exact exponent shift, got {rate!r}")
        self.rate = rate
        self.keep_bits = int(round(keep_bits))

    def build(self, input_shape):
        self._build_step_counter()

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return layer_ops.dropout(inputs, self.keep_bits, self._next_seed(), self.bits)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("rounding")
        return {**config, "rate": self.rate}

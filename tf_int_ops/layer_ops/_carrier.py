"""Carrier helpers every layer-op family uses (the argument checks are in tf_int_ops._validation)."""

import tensorflow as tf

from tf_int_ops import _loader
from tf_int_ops import _validation as check


def error_to_carrier(acc, exponent, bits=8):
    """An int32 (int64: DFP16) error accumulator -> requantized (nearest) carrier of `bits`-bit mantissas, in one op."""
    return _loader.load().int_ops_requantize_to_carrier(acc, exponent, check.seed(None, "nearest", "error"),
                                                        bits=bits)[0]


# An integer op: its int32 input carries no gradient.
tf.no_gradient("IntOps>RequantizeToCarrier")

"""Carrier helpers every layer-op family uses (the argument checks are in tf_int_ops._validation)."""

import tensorflow as tf

from tf_int_ops import replicas


def error_to_carrier(acc, exponent, bits=8):
    """An int32 (int64: DFP16) error accumulator -> requantized (nearest) carrier of `bits`-bit
    mantissas, in one op; under a tf.distribute strategy with the shift agreed across replicas."""
    return replicas.requantize_to_carrier(acc, exponent, "nearest", None, bits)[0]


# An integer op: its int32 input carries no gradient.
tf.no_gradient("IntOps>RequantizeToCarrier")

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_int8(rng, shape, low=-128, high=127):
    return rng.integers(low, high + 1, size=shape).astype(np.int8)


def carrier(rng, shape, exponent, low=-127, high=127):
    """Random carrier values ``q * 2**exponent`` with integer q in [low, high], as float32."""
    q = rng.integers(low, high + 1, shape)
    return (q * 2.0**exponent).astype(np.float32)

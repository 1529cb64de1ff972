"""Argument checks shared by tf_int_ops.ops, tf_int_ops.layer_ops and keras_int.layers.

One wording per problem, every message starting with the function or layer
that checks (``fn``: ``"int_conv2d"``, ``"IntConv2D"``):

| problem | message |
|---|---|
| wrong dtype | ``{fn}: {name} must be int8, got float32`` (``must be one of int8, int16``, ``must be a float32 carrier``) |
| wrong rank | ``{fn}: {name} must have rank 4, got shape (5, 5, 2)`` |
| Python int outside its type | ``{fn}: {name} must be in [-2147483648, 2147483647] (int32), got 4294967301`` |
| not an int or a pair of ints | ``{fn}: {name} must be an int or a pair of ints, got (1, 2, 3)`` |
| a pair's value too small / large | ``{fn}: {name} must be >= 1, got 0``; ``must be <= 2147483647 (an int32 attribute), got ...`` |
| not a positive int | ``{fn}: {name} must be a positive int, got 0`` |
| int outside its documented range | ``{fn}: {name} must be an int in [1, 30], got 31`` |
| unknown padding | ``{fn}: padding must be 'same' or 'valid' (any case), got 'full'`` |
| unknown rounding | ``{fn}: rounding must be one of ('nearest', ...), got 'up'`` |
| bad seed | ``{fn}: seed must be None or an int, got 1.5``; ``stochastic rounding needs a seed ...`` |
| hyperparameter out of range | ``{fn}: epsilon must be a finite number > 0, got 0``; ``momentum must be a number in [0, 1], got 1.5`` |

Bools are not ints anywhere (``strides=True`` is refused). Everything is a
``ValueError``: a wrong value, dtype or shape.
"""

import math

import numpy as np

import tensorflow as tf

ROUNDINGS = ("nearest", "pseudo_stochastic", "stochastic", "truncate")
PADDINGS = ("SAME", "VALID")
INT32_MAX = 2**31 - 1

_BITS_TO_DTYPE = {8: tf.int8, 16: tf.int16}


def is_int(value):
    """A Python or NumPy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_range(value, dtype, name, fn):
    """Raises ValueError if an integer in `value` does not fit `dtype`.

    `value` is a Python or NumPy integer, or a (nested) list, tuple or NumPy
    array of them: TensorFlow would wrap such a value into `dtype` silently
    (``2**32 + 5`` becomes int32 ``5``).
    """
    if isinstance(value, (list, tuple)):
        for item in value:
            check_range(item, dtype, name, fn)
        return
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer) and value.size:
        low, high = value.min(), value.max()
    elif is_int(value):
        low = high = value
    else:
        return
    if low < dtype.min or high > dtype.max:
        raise ValueError(f"{fn}: {name} must be in [{dtype.min}, {dtype.max}] ({dtype.name}), "
                         f"got {int(low if low < dtype.min else high)}")


def tensor(value, dtype, name, fn):
    """Converts value to a tensor of exactly `dtype` (no silent casts, no wrapped integers)."""
    if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "dtype"):
        result = tf.convert_to_tensor(value)
        if result.dtype != dtype:
            raise ValueError(f"{fn}: {name} must be {dtype.name}, got {result.dtype.name}")
        return result
    if dtype.is_integer:
        check_range(value, dtype, name, fn)
    try:
        return tf.convert_to_tensor(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{fn}: {name} must be convertible to {dtype.name}: {error}") from error


def one_of(value, dtypes, name, fn):
    """A tensor whose dtype is one of `dtypes` (a Python value takes the narrowest that holds it)."""
    if not hasattr(value, "dtype"):
        # A Python value becomes the narrowest of int32/int64 that holds it;
        # beyond the widest allowed integer type it is an error.
        widest = max((d for d in dtypes if d.is_integer), key=lambda d: d.max)
        check_range(value, widest, name, fn)
    result = tf.convert_to_tensor(value)
    if result.dtype not in dtypes:
        allowed = ", ".join(d.name for d in dtypes)
        raise ValueError(f"{fn}: {name} must be one of {allowed}, got {result.dtype.name}")
    return result


def sum_dtype(dtype):
    """The exact sums' type of int8 mantissas (int32) or int16 ones (int64, DFP16)."""
    return tf.int64 if dtype == tf.int16 else tf.int32


def _mantissas(value, name, fn):
    """An int8 or int16 tensor; a Python value takes int8 when it fits, else
    int16, and beyond int16 is an error (never a wrapped value)."""
    if hasattr(value, "dtype"):
        return one_of(value, (tf.int8, tf.int16), name, fn)
    check_range(value, tf.int16, name, fn)
    try:
        check_range(value, tf.int8, name, fn)
    except ValueError:  # inside int16 (checked above), outside int8
        return tensor(value, tf.int16, name, fn)
    return tensor(value, tf.int8, name, fn)


def product_operands(x, w, fn, x_name="x", w_name="w"):
    """The two mantissa operands of an exact product, as one type, and the result type.

    int8 x int8 gives int32; an int16 operand (DFP16, docs/algorithms.md 16)
    gives int64, and an int8 operand beside it is widened to int16, exactly.
    Returns ``(x, w, T, Tacc)``.
    """
    x, w = _mantissas(x, x_name, fn), _mantissas(w, w_name, fn)
    dtype = tf.int8 if x.dtype == w.dtype == tf.int8 else tf.int16
    return tf.cast(x, dtype), tf.cast(w, dtype), dtype, sum_dtype(dtype)


def carrier(x, name, fn):
    """`x` as a float32 tensor: a carrier, or raw input the op quantizes."""
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        raise ValueError(f"{fn}: {name} must be a float32 carrier, got {x.dtype.name}")
    return x


def rank(value, expected, name, fn):
    """Raises ValueError if the static rank of `value` is known and not `expected`."""
    if value.shape.rank is not None and value.shape.rank != expected:
        raise ValueError(f"{fn}: {name} must have rank {expected}, got shape {value.shape}")


def exponent(value, fn, name="exponent"):
    """A scalar int32 exponent tensor."""
    value = tensor(value, tf.int32, name, fn)
    rank(value, 0, name, fn)
    return value


def rounding(value, fn, allowed=ROUNDINGS):
    """One of the rounding names `allowed` (exact spelling)."""
    if value not in allowed:
        raise ValueError(f"{fn}: rounding must be one of {allowed}, got {value!r}")
    return value


def padding(value, fn):
    """'SAME' or 'VALID' (the op attribute) from either spelling in any case.

    The layers keep Keras' lower case: ``padding(value, fn).lower()``.
    """
    if not isinstance(value, str) or value.upper() not in PADDINGS:
        raise ValueError(f"{fn}: padding must be 'same' or 'valid' (any case), got {value!r}")
    return value.upper()


def bits(value, fn):
    """The integer dtype of `value` bits (8 or 16)."""
    if isinstance(value, bool) or value not in _BITS_TO_DTYPE:
        raise ValueError(f"{fn}: bits must be 8 or 16, got {value!r}")
    return _BITS_TO_DTYPE[value]


def int_pair(value, name, fn):
    """An int or a pair of ints, each in [1, 2**31 - 1] (an int32 attribute), as a list of two."""
    try:
        pair = [value, value] if is_int(value) else list(value)
    except TypeError:
        pair = None
    if pair is None or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {value!r}")
    if max(pair) > INT32_MAX:
        raise ValueError(f"{fn}: {name} must be <= {INT32_MAX} (an int32 attribute), got {value!r}")
    return [int(v) for v in pair]


def positive_int(value, name, fn):
    """A Python int >= 1 (layer sizes, counts)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
    return int(value)


def int_in(value, name, fn, low, high, unit=""):
    """A Python int in [low, high]; `unit` (" (sixteenths)") follows the range in the message."""
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{fn}: {name} must be an int in [{low}, {high}]{unit}, got {value!r}")
    return int(value)


def seed(value, rounding_name, fn):
    """The ops' seed input [key, step], each an int64 (signed); required by stochastic rounding only."""
    if value is None:
        if rounding_name == "stochastic":
            raise ValueError(f"{fn}: stochastic rounding needs a seed (an int or [key, step])")
        return tf.zeros([2], tf.int64)
    if is_int(value):
        value = [value, 0]
    value = tf.cast(one_of(value, (tf.int32, tf.int64), "seed", fn), tf.int64)
    if value.shape.rank is not None and value.shape != [2]:
        raise ValueError(f"{fn}: seed must be an int or a pair [key, step], got shape {value.shape}")
    return value


def seed_key(value, fn):
    """A layer's seed: None or a Python int64 key."""
    if value is not None and not is_int(value):
        raise ValueError(f"{fn}: seed must be None or an int, got {value!r}")
    if value is not None:
        check_range(value, tf.int64, "seed", fn)
    return value


def conv_attrs(strides, padding_value, dilations, fn):
    """The convolution ops' attributes: strides, padding, dilations."""
    return dict(strides=int_pair(strides, "strides", fn), padding=padding(padding_value, fn),
                dilations=int_pair(dilations, "dilations", fn))


def pool_attrs(pool_size, strides, padding_value, fn):
    """The pooling ops' attributes: ksize, strides (pool_size when None), padding."""
    pool_size = int_pair(pool_size, "pool_size", fn)
    strides = pool_size if strides is None else int_pair(strides, "strides", fn)
    return dict(ksize=pool_size, strides=strides, padding=padding(padding_value, fn))


def positive_float(value, name, fn):
    """A finite Python number > 0 (a hyperparameter such as epsilon); bools refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def fraction(value, name, fn):
    """A finite Python number in [0, 1] (momentum); bools refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{fn}: {name} must be a number in [0, 1], got {value!r}")
    return float(value)

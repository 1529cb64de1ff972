"""Checks of the values a checkpoint (or ``set_weights``) gives integer variables.

Keras assigns loaded arrays with a cast, so a crafted ``.keras`` file whose
int8 kernel was stored as int16 or float32 would load changed weights
(300 -> 44, 1e9 -> 0). The layers and ``IntegerSGD`` check instead that an
integer variable receives integer data, of its shape, with every value in the
range the variable documents.
"""

import numpy as np


def symmetric_range(dtype):
    """``[-(2**(b-1) - 1), 2**(b-1) - 1]``: the values integer weights, masters,
    momentum buffers and biases saturate at (b the dtype's bits)."""
    limit = int(np.iinfo(np.dtype(dtype)).max)
    return -limit, limit


def nonnegative_range(dtype):
    """``[0, max]`` of an integer dtype: counters such as steps and iterations."""
    return 0, int(np.iinfo(np.dtype(dtype)).max)


def checked_value(owner, variable, value, value_range):
    """`value` as a NumPy array, after checking it may be assigned to `variable`.

    Args:
      owner: what holds the variable, for the message (``"IntDense 'dense'"``).
      variable: the Keras variable to be assigned.
      value: the array read from the checkpoint.
      value_range: ``value_range(variable) -> (low, high)``, the values an
        integer variable may hold (inclusive).
    Raises:
      ValueError: naming the owner, the variable, its dtype and the offending
        value, when the shapes differ, or an integer variable would receive
        non-integer data or a value outside `value_range`.
    """
    value = np.asarray(value)
    where = f"{owner}: checkpoint value for {variable.name} ({variable.dtype}"
    if tuple(value.shape) != tuple(variable.shape):
        raise ValueError(f"{where}, shape {tuple(variable.shape)}) has shape {tuple(value.shape)}")
    if not np.issubdtype(np.dtype(variable.dtype), np.integer):
        return value
    low, high = value_range(variable)
    where = f"{where}, values in [{low}, {high}])"
    if not np.issubdtype(value.dtype, np.integer):
        bad = np.ones(value.shape, bool)
        if value.dtype.kind == "f":
            # Point at a value the cast would change, where there is one.
            with np.errstate(invalid="ignore"):
                changed = ~(np.isfinite(value) & (value == np.round(value))
                            & (value >= low) & (value <= high))
            bad = changed if changed.any() else bad
        raise ValueError(f"{where} has dtype {value.dtype}, not an integer type"
                         + (f": {_describe(value, bad)}" if value.size else ""))
    bad = (value < low) | (value > high)
    if bad.any():
        raise ValueError(f"{where} is out of range: {_describe(value, bad)}")
    return value


def _describe(value, bad):
    """The first flagged element of `value`, with its index."""
    if value.ndim == 0:
        return repr(value.item())
    index = np.unravel_index(int(np.argmax(bad)), value.shape)
    return f"{value[index].item()!r} at index {tuple(int(i) for i in index)}"


class CheckedStore:
    """A Keras weights store whose entry ``str(i)`` is checked against ``variables[i]``
    when read: what ``load_own_variables`` hands to Keras' own loading, which
    keeps its count checks and messages.
    """

    def __init__(self, store, owner, variables, value_range):
        self._store = store
        self._owner = owner
        self._variables = {str(i): variable for i, variable in enumerate(variables)}
        self._value_range = value_range

    def keys(self):
        return self._store.keys()

    def __getitem__(self, key):
        value = self._store[key]
        variable = self._variables.get(key)
        if variable is None:
            return value
        return checked_value(self._owner, variable, value, self._value_range)

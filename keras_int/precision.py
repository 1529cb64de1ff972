"""The mantissa width of the integer layers: 8 bits (NITI) or 16 bits (DFP16, Das et al.).

Every layer that quantizes or requantizes takes ``bits=8|16``; ``bits=None``
(the default) takes the process-wide default that :func:`set_default_bits`
sets, resolved when the layer is created and saved in its config, so a
saved model keeps its widths whatever the default is when it is loaded.
Models may mix widths: a 16-bit layer reads an 8-bit carrier exactly, an
8-bit layer rounds a 16-bit carrier to 8 bits (nearest), as it quantizes
any input. docs/algorithms.md section 16 specifies the 16-bit datapath.

>>> keras_int.set_default_bits(16)
>>> keras_int.layers.IntDense(10).bits   # 16
>>> keras_int.set_default_bits(8)
"""

_default_bits = 8


def _check(bits, owner):
    if isinstance(bits, bool) or bits not in (8, 16):
        raise ValueError(f"{owner}: bits must be 8 or 16, got {bits!r}")
    return int(bits)


def set_default_bits(bits):
    """Sets the width (8 or 16) that layers and losses created afterwards take when not given ``bits``.

    >>> keras_int.set_default_bits(16)
    """
    global _default_bits
    _default_bits = _check(bits, "set_default_bits")


def default_bits():
    """The width layers and losses created now take when not given ``bits`` (8 unless set).

    >>> keras_int.default_bits()   # 8
    """
    return _default_bits


def resolve_bits(bits, owner):
    """``bits`` checked (8 or 16), or the default for None."""
    return _default_bits if bits is None else _check(bits, owner)

"""The shared bounds come from cc/core/limits.h, through the op registry.

The library publishes them as the attribute defaults of its never-run op
IntOps>Limits (cc/ops/limits_ops.cc); tf_int_ops reads them on first use
(tf_int_ops.ops._limits), so Python has no copy of its own. Here they are
checked against the independent reference (tests/reference.py) and the
specification's text (docs/algorithms.md).
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

import reference as ref
import tf_int_ops
from tf_int_ops import _tf_internal, ops

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "algorithms.md")


def spec_value(pattern):
    """The integer the specification's text states where `pattern` (one group) matches."""
    with open(SPEC, encoding="utf-8") as f:
        text = " ".join(f.read().split())  # sentences wrap across lines
    found = {int(m) for m in re.findall(pattern, text)}
    assert len(found) == 1, f"docs/algorithms.md: {pattern!r} matches {sorted(found)}"
    return found.pop()


def test_values_match_the_reference():
    assert (tf_int_ops.MIN_EXPONENT, tf_int_ops.MAX_EXPONENT) == (ref.MIN_EXPONENT, ref.MAX_EXPONENT)
    assert tf_int_ops.AVG_POOL_SHIFT == ref.AVG_POOL_SHIFT


def test_values_match_the_specification():
    # Section 1 (DFP tensors): "A normal input whose exponent would fall below -120 is an error".
    assert ops.MIN_EXPONENT == spec_value(r"exponent would fall below (-\d+) is an error")
    # Section 3 (forward ops, matmul): exact in int32 "while `K * 2**14 < 2**31`, i.e. K <= 131071".
    assert ops.MAX_EXACT_DEPTH == spec_value(r"i\.e\. K <= (\d+)") == 2**31 // 2**14 - 1
    # Section 3 (residual add): "The left shift is capped at 23 bits".
    assert ops.MAX_ALIGN_SHIFT == spec_value(r"left shift is capped at (\d+) bits")
    # Section 4 (cross-entropy gradient): "... clipped to [-127, 127] ..., with exponent -7".
    assert ops.CROSS_ENTROPY_ERROR_EXPONENT == spec_value(r"with exponent (-\d+), so that its value")
    # Section 4: "`sum(p)` is exact in int64 for rows of at most 2**21 classes".
    assert ops.CROSS_ENTROPY_MAX_CLASSES == 2 ** spec_value(r"rows of at most 2\*\*(\d+) classes")
    # Section 10 (softmax): "rows of `n <= 2**21` entries", "`1 <= M < 2**16`, `0 <= S <= 62`".
    assert ops.SOFTMAX_MAX_ROW == 2 ** spec_value(r"rows of `n <= 2\*\*(\d+)` entries")
    assert ops.SOFTMAX_MAX_MULTIPLIER == 2 ** spec_value(r"`1 <= M < 2\*\*(\d+)`") - 1
    assert ops.SOFTMAX_MAX_SHIFT == spec_value(r"`0 <= S <= (\d+)`")
    # Section 12 (embeddings): "a call takes at most `2**24 - 1` ids".
    assert ops.EMBEDDING_MAX_LOOKUPS == 2 ** spec_value(r"at most `2\*\*(\d+) - 1` ids") - 1


def test_derived_values():
    assert ops.MIN_ACC_EXPONENT == 2 * ops.MIN_EXPONENT
    assert ops.MAX_ACC_EXPONENT == 2 * ops.MAX_EXPONENT
    assert ops.AVG_POOL_WINDOW_LOG2 == ops.AVG_POOL_SHIFT
    assert ops.MAX_POOL_CARRIER_TAPS == 256  # one byte records a window's winning tap


def test_every_attribute_of_the_limits_op_is_a_published_int():
    ops._loader.load()
    op_def = _tf_internal.op_def("IntOps>Limits")
    assert not op_def.input_arg and not op_def.output_arg
    attrs = {attr.name: attr for attr in op_def.attr}
    assert sorted(attrs) == sorted(name.lower() for name in ops._LIMIT_NAMES)
    for name, attr in attrs.items():
        assert attr.type == "int" and attr.HasField("default_value"), name
        value = getattr(tf_int_ops, name.upper())
        assert type(value) is int and value == attr.default_value.i == getattr(ops, name.upper())
    assert set(ops._LIMIT_NAMES) <= set(dir(tf_int_ops)) and set(ops._LIMIT_NAMES) <= set(dir(ops))


def test_unknown_names_raise_attribute_error():
    for module in (tf_int_ops, ops):
        with pytest.raises(AttributeError, match="NO_SUCH_LIMIT"):
            module.NO_SUCH_LIMIT  # noqa: B018
        assert not hasattr(module, "min_exponent")
    with pytest.raises(ImportError):
        from tf_int_ops import NO_SUCH_LIMIT  # noqa: F401


def test_import_does_not_load_the_library_reading_a_constant_does():
    script = textwrap.dedent("""
        import tf_int_ops
        from tf_int_ops import _loader, ops
        loaded = lambda: _loader.load.cache_info().currsize
        assert loaded() == 0, "import tf_int_ops loaded the library"
        for module in (tf_int_ops, ops):
            try:
                module.NO_SUCH_LIMIT
            except AttributeError:
                pass
            else:
                raise AssertionError("no AttributeError")
        assert loaded() == 0, "an unknown name loaded the library"
        from tf_int_ops import MIN_EXPONENT
        assert loaded() == 1 and MIN_EXPONENT == tf_int_ops.MIN_EXPONENT == ops.MIN_EXPONENT
        print("ok")
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]

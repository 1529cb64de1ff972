"""Bad input gives an error that names the problem: never a crash, a wrap or a wrong answer.

The cases (tests/bad_input_cases.py) run in a child process, so a crash is a
failure that names the case rather than the end of the test run.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bad_input_cases import ALL_CASES, InvalidArgument, W4, X4
import tf_int_ops as ops
from tf_int_ops import _loader

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def child_results():
    result = subprocess.run([sys.executable, os.path.join(HERE, "bad_input_cases.py")],
                            capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    finished = {line["index"]: line for line in lines if "index" in line}
    assert result.returncode == 0 and len(finished) == len(ALL_CASES), (
        f"the child died (exit {result.returncode}) in case {started[-1] if started else None}: "
        f"{result.stderr[-3000:]}")
    return finished


@pytest.mark.parametrize("index", range(len(ALL_CASES)),
                         ids=[case[2][:40] if case[1] else case[2].__name__ for case in ALL_CASES])
def test_bad_input_raises_named_error(child_results, index):
    _, exception, pattern = ALL_CASES[index]
    result = child_results[index]
    if exception is None:  # a result case: its check ran in the child
        assert result["raised"] is None, result
        return
    assert result["raised"] == exception.__name__, result
    assert re.search(pattern, result["message"]), result["message"]


def test_kernels_validate_attributes_without_the_python_checks():
    raw = _loader.load()
    with pytest.raises(InvalidArgument, match="strides must be >= 1"):
        raw.int_ops_conv2d(X4, W4, strides=[0, 1], padding="SAME")
    # padding and rounding are enumerated attrs (cc/ops/op_attrs.h): TensorFlow
    # refuses other values when the op is built.
    with pytest.raises(InvalidArgument, match="attr 'padding' of \"FULL\" is not in the list of allowed values"):
        raw.int_ops_conv2d(X4, W4, strides=[1, 1], padding="FULL")
    with pytest.raises(InvalidArgument, match="attr 'rounding' of \"up\" is not in the list of allowed values"):
        raw.int_ops_requantize(np.ones(2, np.int32), 0, [0, 0], out_type=tf.int8, rounding="up")
    with pytest.raises(InvalidArgument, match="attr 'T' of int32 is not in the list of allowed values"):
        raw.int_ops_dense(np.ones((1, 1), np.float32), tf.Variable(np.ones((1, 1), np.int32)).handle, [],
                          0, [0, 0], [], T=tf.int32)
    with pytest.raises(InvalidArgument, match="seed must be an int64 tensor"):
        raw.int_ops_requantize(np.ones(2, np.int32), 0, [0, 0, 0], out_type=tf.int8)


def test_errors_in_a_graph_name_the_argument():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.int8), tf.TensorSpec(None, tf.int8)])
    def conv(x, w):
        return ops.int_conv2d(x, w)

    with pytest.raises(InvalidArgument, match="input channels"):
        conv(X4[:, :, :, :1], W4)


def test_missing_library_error_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("TF_INT_OPS_LIBRARY", str(tmp_path / "missing.so"))
    _loader.load.cache_clear()
    try:
        with pytest.raises(ImportError, match="make build"):
            _loader.load()
    finally:
        monkeypatch.delenv("TF_INT_OPS_LIBRARY")
        _loader.load.cache_clear()

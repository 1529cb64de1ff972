"""The version guard of tf_int_ops/_tf_internal.py, and that private API stays in that module."""

import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest

from tf_int_ops import _tf_internal

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _check(**versions):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = _tf_internal.check_versions(**versions)
    return problems, [w for w in caught if issubclass(w.category, _tf_internal.UntestedVersionWarning)]


def test_tested_versions_do_not_warn(monkeypatch):
    monkeypatch.delenv(_tf_internal.SKIP_VERSION_CHECK_ENV, raising=False)
    assert _check() == ([], [])  # the installed versions are the tested ones
    assert _check(tensorflow_version="2.21.7", keras_version="3.15.0") == ([], [])


@pytest.mark.parametrize("tf_version,keras_version,named", [
    ("2.22.0", "3.15.1", "TensorFlow 2.22.0"),
    ("2.21.0", "3.16.0", "Keras 3.16.0"),
    ("2.20.0rc1", "2.15.0", "TensorFlow 2.20.0rc1 (tested: 2.21.x) and Keras 2.15.0"),
])
def test_untested_versions_warn_naming_the_tested_ones(monkeypatch, tf_version, keras_version, named):
    monkeypatch.delenv(_tf_internal.SKIP_VERSION_CHECK_ENV, raising=False)
    problems, caught = _check(tensorflow_version=tf_version, keras_version=keras_version)
    assert problems and len(caught) == 1
    message = str(caught[0].message)
    assert named in message and "TensorFlow 2.21.x and Keras 3.15.x" in message
    assert _tf_internal.SKIP_VERSION_CHECK_ENV in message


def test_monkeypatched_installed_version_warns(monkeypatch):
    monkeypatch.delenv(_tf_internal.SKIP_VERSION_CHECK_ENV, raising=False)
    monkeypatch.setattr(_tf_internal.tf, "__version__", "2.99.0")
    problems, caught = _check()
    assert problems == ["TensorFlow 2.99.0 (tested: 2.21.x)"] and caught


def test_env_var_silences_the_warning(monkeypatch):
    monkeypatch.setenv(_tf_internal.SKIP_VERSION_CHECK_ENV, "1")
    assert _check(tensorflow_version="3.0.0", keras_version="4.0.0") == ([], [])


def test_import_warns_for_an_untested_tensorflow():
    code = ("import warnings; warnings.simplefilter('always'); import tensorflow as tf; "
            "tf.__version__ = '2.99.1'\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import tf_int_ops\n"
            "print([str(w.message) for w in caught if 'tested with' in str(w.message)])")
    env = {k: v for k, v in os.environ.items() if k != _tf_internal.SKIP_VERSION_CHECK_ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TensorFlow 2.99.1 (tested: 2.21.x)" in out.stdout


def test_private_api_is_used_only_in_tf_internal():
    pattern = re.compile(r"tensorflow\.python|keras\.src|\._flatten_layers|\._var_key|"
                         r"\._trainable_variables|\._non_trainable_variables|\._gradient_registry")
    offenders = []
    for path in list((ROOT / "tf_int_ops").rglob("*.py")) + list((ROOT / "keras_int").rglob("*.py")):
        if path.name == "_tf_internal.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], offenders

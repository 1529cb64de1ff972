"""TensorFlow loaded without its start-up lines, unless asked.

``import tensorflow`` writes lines to stderr (absl's "log messages before
absl::InitializeLog()" notice, oneDNN's and the CPU feature guard's INFO
lines) before absl's logging is set up, where ``TF_CPP_MIN_LOG_LEVEL`` does
not reach them (TensorFlow 2.21). Only redirecting the process's stderr for
the import hides them. Asking for them: ``TF_CPP_MIN_LOG_LEVEL=0``.

This module imports nothing from TensorFlow, so that it can run first.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 to /dev/null (C++ writes there, below Python's sys.stderr);
    nothing where there is no descriptor 2 to redirect (sys.stderr None, or closed)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Imports TensorFlow with its start-up lines hidden, unless it is loaded already
    or ``TF_CPP_MIN_LOG_LEVEL`` is 0 (show everything). Errors still raise."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's later INFO lines; warnings still show
    with _stderr_to_devnull():
        import tensorflow  # noqa: F401

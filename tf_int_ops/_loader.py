"""Finds and loads the compiled op library, once, on first use."""

import functools
import os

import tensorflow as tf

_ENV_OVERRIDE = "TF_INT_OPS_LIBRARY"
_DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_int_ops.so")


@functools.lru_cache(maxsize=None)
def load():
    """Returns the module of generated op functions (``int_ops_*``)."""
    path = os.environ.get(_ENV_OVERRIDE, _DEFAULT_PATH)
    if not os.path.exists(path):
        raise ImportError(
            f"tf_int_ops: the op library was not found at {path}. Build it from the "
            "repository root with `make build` (which runs `python configure.py`, "
            "`bazel build //cc:_int_ops.so` and copies bazel-bin/cc/_int_ops.so into "
            f"tf_int_ops/), or point {_ENV_OVERRIDE} at a built _int_ops.so."
        )
    try:
        return tf.load_op_library(path)
    except tf.errors.NotFoundError as error:
        raise ImportError(
            f"tf_int_ops: {path} does not load into TensorFlow {tf.__version__} "
            f"(built against another TensorFlow?). Rebuild it with `make build`. Cause: {error}"
        ) from error

"""Long-lived worker process of the fuzz suite (tests/test_fuzz.py).

It imports TensorFlow, keras_int and the op library once, then runs cases
sent by the parent, one at a time, so that a crash (abort, SIGFPE, segfault)
or a hang kills or stalls only this process; the parent names the case and
starts a fresh worker.

Protocol (see fuzz_harness.py):

* parent -> worker (stdin): ``<n>\\n`` followed by n bytes of a pickled
  ``(case_id, op, args, kwargs)``. Arrays are NumPy arrays or descriptor
  tuples (``("full", shape, value, dtype)``, ``("var", inner)``, ...), decoded
  here into tensors and variables.
* worker -> parent: one JSON line per event on the original stdout: ``ready``
  once at start, ``{"id", "stage": "call"}`` once the inputs are built and
  the op is about to be called, then ``{"id", "status", ...}`` with the
  outcome: ``ok`` plus the encoded result, ``raised`` plus the exception
  type and message, or ``setup_error`` when the inputs could not be built.

Anything else written to file descriptor 1 (TensorFlow, prints) goes to
stderr, so it cannot corrupt the protocol.
"""

import base64
import faulthandler
import json
import os
import pickle
import resource
import signal
import sys
import tempfile
import time
import traceback
import zipfile

# The protocol stream is a private copy of stdout; fd 1 becomes stderr.
_PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr
faulthandler.enable()  # SIGSEGV / SIGFPE / SIGABRT: the Python stack goes to stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# A guard against a case that would really allocate (and touch) GiBs: the
# suite's cases need well under 1 GiB, so an op that tries more fails (and is
# reported) instead of swapping or waking the OOM killer.
try:
    _limit = int(os.environ.get("FUZZ_WORKER_DATA_LIMIT", str(6 << 30)))
    resource.setrlimit(resource.RLIMIT_DATA, (_limit, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
except (ValueError, OSError):
    pass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import keras_int  # noqa: E402
import tf_int_ops as ops  # noqa: E402
from tf_int_ops import _loader, layer_ops  # noqa: E402

RAW = _loader.load()

RAW_LIMIT = 1 << 16        # arrays up to this many elements travel whole
RLE_RUN_LIMIT = 1 << 16    # larger ones as runs, when there are few


# ------------------------------------------------------------------ I/O

def send(message):
    _PROTOCOL.write(json.dumps(message) + "\n")
    _PROTOCOL.flush()


def encode(value):
    """JSON-able form of a result: arrays as base64 (whole or run-length encoded)."""
    if isinstance(value, (tf.Tensor, tf.Variable)) and value.shape.num_elements() == 0:
        # Empty, maybe with huge dimensions NumPy cannot represent: shape and dtype only.
        return {"__nd__": [np.dtype(value.dtype.as_numpy_dtype).name, [int(d) for d in value.shape], "raw", ""]}
    if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "numpy") and not isinstance(
            value, (np.ndarray, np.generic)):
        value = value.numpy()
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        array = np.asarray(value)
        flat = array.reshape(-1)
        meta = [str(array.dtype), list(array.shape)]
        if flat.size <= RAW_LIMIT:
            return {"__nd__": meta + ["raw", base64.b64encode(flat.tobytes()).decode()]}
        changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        if changes.size < RLE_RUN_LIMIT:
            starts = np.concatenate([[0], changes]).astype(np.int64)
            values = flat[starts]
            return {"__nd__": meta + ["rle", base64.b64encode(starts.tobytes()).decode(),
                                      base64.b64encode(values.tobytes()).decode()]}
        return {"__nd__": meta + ["raw", base64.b64encode(flat.tobytes()).decode()]}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


KEEP = []  # variables whose handles a raw op uses stay alive until the case ends


def decode(value):
    """Descriptor tuples -> tensors/variables; everything else unchanged."""
    if isinstance(value, (np.ndarray, np.generic)):
        return tf.constant(value)
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        tag = value[0]
        if tag == "full":
            _, shape, fill, dtype = value
            return tf.fill(tf.constant(shape, tf.int64), tf.constant(fill, dtype=tf.as_dtype(dtype)))
        if tag == "concat":
            return tf.concat([decode(part) for part in value[1]], axis=value[2])
        if tag == "var":
            inner = decode(value[1])
            variable = tf.Variable(inner)
            KEEP.append(variable)
            return variable
        if tag == "handle":
            variable = tf.Variable(decode(value[1]))
            KEEP.append(variable)
            return variable.handle
        if tag == "np":  # keep a NumPy array as NumPy (the wrapper converts it)
            return value[1]
        if tag == "py":  # a literal passed unchanged
            return value[1]
        if tag == "tensor":
            return tf.convert_to_tensor(value[1], dtype=value[2])
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(decode(v) for v in value)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------- composites
# Carrier ops with their gradients, Keras objects: each returns a dict.

def _grads(fn, inputs, variables, dy):
    """fn(*inputs) -> y or (y, e); gradients of y w.r.t. inputs and variables given dy."""
    with tf.GradientTape(persistent=True) as tape:
        for x in inputs:
            tape.watch(x)
        out = fn(*inputs)
    y = out[0] if isinstance(out, (tuple, list)) else out
    result = {"y": y}
    if isinstance(out, (tuple, list)):
        result["y_exponent"] = out[1]
    if dy is not None:
        grads = tape.gradient(y, list(inputs) + list(variables), output_gradients=dy)
        for i, g in enumerate(grads[:len(inputs)]):
            result[f"d{i}"] = g
        for i, g in enumerate(grads[len(inputs):]):
            result[f"dv{i}"] = g
    return result


def carrier_dense(x, kernel, kernel_exponent, dy=None, bias=None, error_exponent=None, **kw):
    variables = [kernel] + ([bias] if bias is not None else [])
    result = _grads(lambda x: layer_ops.dense(x, kernel, kernel_exponent, bias=bias,
                                              error_exponent=error_exponent, **kw),
                    [x], variables, dy)
    if error_exponent is not None:
        result["error_exponent"] = error_exponent.numpy()
    return result


def carrier_conv2d(x, kernel, kernel_exponent, dy=None, bias=None, **kw):
    variables = [kernel] + ([bias] if bias is not None else [])
    return _grads(lambda x: layer_ops.conv2d(x, kernel, kernel_exponent, bias=bias, **kw),
                  [x], variables, dy)


def carrier_unary(name):
    def run(x, dy=None, **kw):
        fn = getattr(layer_ops, name)
        return _grads(lambda x: fn(x, **kw), [x], [], dy)
    return run


def carrier_add(a, b, dy=None, **kw):
    return _grads(lambda a, b: layer_ops.add(a, b, **kw), [a, b], [], dy)


def carrier_cross_entropy(labels, logits, dy=None, **kw):
    return _grads(lambda z: layer_ops.softmax_cross_entropy(labels, z, **kw), [logits], [], dy)


def _layer_variables(layer):
    out = {}
    for name in ("kernel", "kernel_exponent", "bias", "output_exponent"):
        v = getattr(layer, name, None)
        if v is not None:
            out[name] = np.asarray(keras.ops.convert_to_numpy(v))
    return out


def keras_layer(cls, config, inputs, training=False, dy=None, build_only=False):
    """Builds keras_int.layers.<cls>(**config) and calls it (with gradients when dy is given)."""
    layer = getattr(keras_int.layers, cls)(**config)
    if build_only:
        return {"built": True}
    if isinstance(inputs, list):
        xs = inputs
        call = lambda *xs: layer(list(xs))  # noqa: E731
    else:
        xs = [inputs]
        call = (lambda x: layer(x, training=training)) if cls in ("IntDense", "IntConv2D", "IntDropout") \
            else (lambda x: layer(x))
    with tf.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = call(*xs)
    result = {"y": y}
    result.update(_layer_variables(layer))
    try:
        shapes = [tuple(x.shape) for x in xs]
        declared = layer.compute_output_shape(shapes if isinstance(inputs, list) else shapes[0])
        result["declared_shape"] = [-1 if d is None else int(d) for d in declared]
    except Exception as error:  # noqa: BLE001 - reported as a mismatch by the parent
        result["declared_shape"] = f"{type(error).__name__}: {error}"
    if dy is not None:
        variables = [v.value for v in layer.trainable_variables]
        grads = tape.gradient(y, xs + variables, output_gradients=dy)
        for i, g in enumerate(grads[:len(xs)]):
            result[f"d{i}"] = g
        for i, g in enumerate(grads[len(xs):]):
            result[f"dv{i}"] = g
    return result


def keras_loss(config, y_true, y_pred, grad=False):
    loss = keras_int.losses.IntegerCrossEntropy(**config)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss(y_true, y_pred)
    result = {"loss": value}
    if grad:
        result["dlogits"] = tape.gradient(value, y_pred)
    return result


def keras_sgd(config, variables, gradients, steps=1):
    """IntegerSGD(**config) applied `steps` times to fresh variables with the given gradients."""
    optimizer = keras_int.optimizers.IntegerSGD(**config)
    kvars = [keras.Variable(v) for v in variables]
    history = []
    for _ in range(steps):
        optimizer.apply_gradients(zip(gradients, kvars))
        history.append([keras.ops.convert_to_numpy(v) for v in kvars])
    return {"history": history}


def keras_callback(kind, config, schedule_value=None, epoch=0):
    """Builds a callback; MuScheduler is also run for one epoch start on a small model."""
    if kind == "ExponentTracker":
        keras_int.callbacks.ExponentTracker(**config)
        return {"built": True}
    model = keras.Sequential([keras.Input((4,)), keras_int.layers.IntDense(2)])
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                  loss=keras_int.losses.IntegerCrossEntropy())
    model.optimizer.build(model.trainable_variables)
    callback = keras_int.callbacks.MuScheduler(lambda e: schedule_value)
    callback.set_model(model)
    callback.on_epoch_begin(epoch)
    return {"mu": model.optimizer.mu_variable}


def keras_fit(x, y, epochs=1, batch_size=4, optimizer=None, seed=0):
    """A tiny integer model trained with ExponentTracker and MuScheduler, then saved and reloaded."""
    keras.utils.set_random_seed(seed)
    L = keras_int.layers
    model = keras.Sequential([keras.Input(x.shape[1:]), L.IntConv2D(2, 3, padding="same"), L.IntReLU(),
                              L.IntMaxPool2D(2), L.IntFlatten(), L.IntDense(3)])
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(**(optimizer or {})),
                  loss=keras_int.losses.IntegerCrossEntropy())
    tracker = keras_int.callbacks.ExponentTracker(every_n_batches=1)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[tracker, keras_int.callbacks.MuScheduler(lambda e: 5 - e % 2)])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        same = all(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
                   for a, b in zip(model.weights, loaded.weights))
    return {"loss": np.asarray(history.history["loss"], np.float64),
            "kernel_dtypes": [str(v.dtype) for v in model.trainable_variables],
            "tracked": len(tracker.batch_records), "reloaded_equal": same,
            "predict": model.predict(x, verbose=0)}


def crafted_checkpoint(dtype, value, shape=None):
    """Saves an IntDense model, rewrites its int8 kernel in model.weights.h5 and loads it."""
    import h5py

    model = keras.Sequential([keras.Input((3,)), keras_int.layers.IntDense(2)])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        weights_path = os.path.join(tmp, "model.weights.h5")
        with open(weights_path, "wb") as f:
            f.write(members["model.weights.h5"])
        rewritten = []
        with h5py.File(weights_path, "r+") as h5:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.dtype == np.int8 and obj.ndim == 2:
                    rewritten.append(name)
            h5.visititems(visit)
            for name in rewritten:
                old_shape = h5[name].shape
                del h5[name]
                h5[name] = np.full(shape or old_shape, value, dtype=dtype)
        with open(weights_path, "rb") as f:
            members["model.weights.h5"] = f.read()
        crafted = os.path.join(tmp, "crafted.keras")
        with zipfile.ZipFile(crafted, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        loaded = keras.models.load_model(crafted)
        kernel = loaded.layers[-1].kernel
        return {"rewritten": rewritten, "kernel": keras.ops.convert_to_numpy(kernel),
                "kernel_dtype": str(kernel.dtype)}


def raw_op(name, *args, **attrs):
    return getattr(RAW, name)(*args, **attrs)


def traced(name, *args, **kwargs):
    """The op inside a tf.function with unknown shapes (graph-mode checks)."""
    fn = OPS[name]
    specs = [tf.TensorSpec(None, a.dtype) for a in args]
    return tf.function(lambda *a: fn(*a, **kwargs), input_signature=specs)(*args)


def selftest(kind):
    """What the harness must survive and report: an abort, a fatal signal, a hang."""
    if kind == "abort":
        os.abort()
    if kind == "sigfpe":
        os.kill(os.getpid(), signal.SIGFPE)
    if kind == "hang":
        while True:
            time.sleep(1)
    return {"ok": True}


def in_graph(name, *args, **kwargs):
    """The op inside tf.function with its arguments captured as constants (static shapes and
    values: the shape functions run on them), then executed."""
    fn = OPS[name]
    return tf.function(lambda: fn(*args, **kwargs))()


OPS = {name: getattr(ops, name) for name in (
    "quantize", "dequantize", "requantize", "round_shift", "bit_length", "int_matmul", "int_conv2d",
    "int_conv2d_backprop_input", "int_conv2d_backprop_filter", "int_max_pool2d", "int_max_pool2d_grad",
    "int_avg_pool2d", "int_avg_pool2d_grad", "int_add", "int_softmax_cross_entropy_grad",
    "integer_sgd_update", "int8_weights")}
OPS.update({
    "carrier_dense": carrier_dense, "carrier_conv2d": carrier_conv2d,
    "carrier_relu": carrier_unary("relu"), "carrier_max_pool2d": carrier_unary("max_pool2d"),
    "carrier_avg_pool2d": carrier_unary("avg_pool2d"), "carrier_dropout": carrier_unary("dropout"),
    "carrier_add": carrier_add, "carrier_cross_entropy": carrier_cross_entropy,
    "keras_layer": keras_layer, "keras_loss": keras_loss, "keras_sgd": keras_sgd,
    "keras_callback": keras_callback, "keras_fit": keras_fit, "crafted_checkpoint": crafted_checkpoint,
    "raw": raw_op, "traced": traced, "in_graph": in_graph, "selftest": selftest,
})


# ------------------------------------------------------------------ main

def read_case(stream):
    header = stream.readline()
    if not header:
        return None
    size = int(header)
    payload = stream.read(size)
    if len(payload) != size:
        return None
    return pickle.loads(payload)


def main():
    send({"ready": True, "pid": os.getpid(), "gemm": os.environ.get("KERAS_INT_GEMM", "")})
    stdin = sys.stdin.buffer
    while True:
        case = read_case(stdin)
        if case is None:
            return
        case_id, op, args, kwargs = case
        try:
            fn = OPS[op]
            args = decode(args)
            kwargs = decode(kwargs)
        except Exception as error:  # the parent reports it as a broken case
            send({"id": case_id, "status": "setup_error", "type": type(error).__name__,
                  "message": str(error)[:2000], "traceback": traceback.format_exc()[-2000:]})
            continue
        send({"id": case_id, "stage": "call"})
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the parent judges the type
            message = {"id": case_id, "status": "raised", "type": type(error).__name__,
                       "module": type(error).__module__, "message": str(error)[:3000],
                       "traceback": traceback.format_exc()[-1500:]}
        else:
            try:
                message = {"id": case_id, "status": "ok", "result": encode(result)}
            except Exception as error:  # noqa: BLE001 - a result the suite cannot transport
                message = {"id": case_id, "status": "setup_error", "type": type(error).__name__,
                           "message": "encoding the result: " + str(error)[:2000],
                           "traceback": traceback.format_exc()[-2000:]}
            del result
        send(message)
        del args, kwargs
        KEEP.clear()


if __name__ == "__main__":
    main()

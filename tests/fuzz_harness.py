"""Parent side of the fuzz suite: worker processes, cases, outcomes and reports.

A :class:`Case` names an op of tests/fuzz_worker.py, its arguments (NumPy
arrays, Python values or descriptor tuples built with :func:`full` and
:func:`var`) and an ``expect`` function that judges the outcome. Each case
runs in a long-lived worker process (one per GEMM configuration); a worker
that dies (abort, SIGFPE, segfault) or stalls past the case's timeout is
reported as a failure of that case and replaced by a fresh one (started in
advance, so a crash costs no TensorFlow import on the critical path).
"""

import base64
import dataclasses
import hashlib
import json
import os
import pickle
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "fuzz_worker.py")

CASE_TIMEOUT = float(os.environ.get("FUZZ_CASE_TIMEOUT", "10"))   # seconds, one op case (all take < 2 s)
# TensorFlow's CPU allocator retries a failed allocation for about 10 s before
# it raises ResourceExhaustedError: cases that may end that way get longer.
OOM_TIMEOUT = float(os.environ.get("FUZZ_OOM_TIMEOUT", "45"))
SLOW_TIMEOUT = float(os.environ.get("FUZZ_SLOW_TIMEOUT", "90"))   # Keras fit / save / load
START_TIMEOUT = float(os.environ.get("FUZZ_START_TIMEOUT", "180"))
USE_SPARE = os.environ.get("FUZZ_SPARE", "1") != "0"
# Failing cases are pickled here, to be replayed with `python tests/fuzz_harness.py FILE`.
FAILURES_DIR = os.environ.get("FUZZ_FAILURES_DIR", os.path.join(tempfile.gettempdir(), "keras-int-fuzz-failures"))
# After a case of (test, op, tag, config) crashed or hung, later generated
# cases of the same class are skipped (each costs a restart or a timeout);
# explicit examples always run. FUZZ_SKIP_AFTER_CRASH=0 runs everything.
SKIP_AFTER_CRASH = os.environ.get("FUZZ_SKIP_AFTER_CRASH", "1") != "0"

CONFIGS = {
    "default": {},
    # int16-pair GEMM kernels instead of AVX-512 VNNI byte quads (and no
    # direct short-row convolution kernels).
    "pairs": {"KERAS_INT_GEMM": "pairs"},
}

CLEAN_ERRORS = ("ValueError", "TypeError", "InvalidArgumentError")
OOM_ERRORS = ("ResourceExhaustedError",)
# What a clean error about a too-large shape may say.
HUGE = (r"overflow|too (large|big|many)|exceed|more than|elements|size|shape|OOM|alloc|memory|"
        r"out of range|int32|int64|2\*\*|limit")


# ------------------------------------------------------------- descriptors

def full(shape, value, dtype):
    """An array of `shape` filled with `value`, built in the worker (tf.fill), never sent."""
    return ("full", tuple(int(s) for s in shape), value, np.dtype(dtype).name)


def var(inner):
    """A tf.Variable initialised from `inner` (an array or a descriptor)."""
    return ("var", inner)


def concat(parts, axis):
    """np.concatenate of descriptors/arrays, built in the worker (tf.concat)."""
    return ("concat", list(parts), axis)


def handle(inner):
    """The resource handle of a tf.Variable initialised from `inner` (for raw ops)."""
    return ("handle", inner)


def keep_numpy(array):
    """An array handed to the op as a NumPy array (not converted to a tensor first)."""
    return ("np", array)


def materialize(value):
    """The NumPy value of an argument (descriptors expanded), for the reference."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        if value[0] == "full":
            _, shape, fill, dtype = value
            return np.full(shape, fill, dtype)
        if value[0] in ("var", "np", "handle"):
            return materialize(value[1])
        if value[0] == "concat":
            return np.concatenate([materialize(v) for v in value[1]], axis=value[2])
        if value[0] == "py":
            return value[1]
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def shape_of(value):
    if isinstance(value, tuple) and value and value[0] == "full":
        return tuple(value[1])
    if isinstance(value, tuple) and value and value[0] in ("var", "np", "handle"):
        return shape_of(value[1])
    if isinstance(value, tuple) and value and value[0] == "concat":
        shapes = [shape_of(v) for v in value[1]]
        axis = value[2] % len(shapes[0])
        return tuple(sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(shapes[0]))
    return tuple(np.shape(value))


# ----------------------------------------------------------------- describe

def _int_text(v):
    v = int(v)
    if abs(v) >= 2**16:
        for base in (2,):
            k = abs(v).bit_length()
            for p in (k - 1, k):
                d = abs(v) - 2**p
                if abs(d) <= 64:
                    text = f"2**{p}" + (f" + {d}" if d > 0 else f" - {-d}" if d < 0 else "")
                    return f"-({text})" if v < 0 and d else ("-" + text if v < 0 else text)
    return str(v)


def _shape_text(shape):
    return "(" + ", ".join(_int_text(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def describe(value, limit=64):
    """Python-like text of an argument, short enough for a report."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        tag = value[0]
        if tag == "full":
            _, shape, fill, dtype = value
            return f"full({_shape_text(shape)}, {describe(fill)}, {dtype})"
        if tag == "var":
            return f"tf.Variable({describe(value[1], limit)})"
        if tag == "handle":
            return f"tf.Variable({describe(value[1], limit)}).handle"
        if tag == "concat":
            return f"concat([{', '.join(describe(v, limit) for v in value[1])}], axis={value[2]})"
        if tag == "np":
            return describe(value[1], limit)
        if tag == "py":
            return repr(value[1])
    if isinstance(value, np.ndarray):
        dtype = value.dtype.name
        if value.size <= limit:
            body = np.array2string(value, separator=", ", threshold=limit + 1,
                                   max_line_width=10**6).replace("\n", "")
            if value.dtype.kind == "f":
                body = body.replace("nan", "nan").replace("inf", "inf")
            return f"np.array({body}, {dtype}).reshape({_shape_text(value.shape)})" \
                if value.ndim != 1 else f"np.array({body}, {dtype})"
        if value.size and np.all(value == value.reshape(-1)[0]):
            return f"full({_shape_text(value.shape)}, {value.reshape(-1)[0]!r}, {dtype})"
        digest = hashlib.sha1(value.tobytes()).hexdigest()[:8]
        if value.size:
            with np.errstate(all="ignore"):
                span = f"in [{np.nanmin(value)}, {np.nanmax(value)}]" if value.dtype.kind in "iuf" else ""
        else:
            span = ""
        return f"<{dtype} array {_shape_text(value.shape)} {span} sha1:{digest}>"
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return _int_text(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(describe(v, limit) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v, limit)}" for k, v in value.items()) + "}"
    return repr(value)


def describe_call(op, args, kwargs):
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    if op == "raw" and args:
        parts = [describe(a) for a in args[1:]] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        return f"_loader.load().{args[0]}(" + ", ".join(parts) + ")"
    return f"{op}(" + ", ".join(parts) + ")"


def describe_result(value, limit=12):
    if isinstance(value, ShapeOnly):
        return repr(value)
    if isinstance(value, np.ndarray):
        if value.size <= limit:
            text = np.array2string(value, separator=", ", max_line_width=10**6)
            return f"{value.dtype.name}{list(value.shape)} {text}"
        if value.size and np.all(value == value.reshape(-1)[0]):
            return f"{value.dtype.name}{list(value.shape)} all {value.reshape(-1)[0]!r}"
        with np.errstate(all="ignore"):
            span = f" in [{np.nanmin(value)}, {np.nanmax(value)}]" if value.size and value.dtype.kind in "iuf" else ""
        return f"{value.dtype.name}{list(value.shape)}{span}"
    if isinstance(value, list):
        return "(" + ", ".join(describe_result(v, limit) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe_result(v, limit)}" for k, v in value.items()) + "}"
    return repr(value)


# ------------------------------------------------------------------ outcomes

@dataclasses.dataclass
class Outcome:
    status: str                      # ok | raised | crashed | hung | setup_error
    result: Any = None
    type: str = ""
    message: str = ""
    detail: str = ""                 # stderr tail, traceback, signal

    def text(self):
        if self.status == "ok":
            return "returned " + describe_result(self.result)
        if self.status == "raised":
            message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", self.message)
            return f"raised {self.type}: {message[:600]}"
        return f"{self.status.upper()}: {self.message}" + (f"\n      {self.detail}" if self.detail else "")


class ShapeOnly:
    """An empty result whose dimensions NumPy cannot represent (e.g. int16 [2**62, 0])."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.size = tuple(shape), np.dtype(dtype), 0

    def __repr__(self):
        return f"{self.dtype.name}{list(self.shape)} (empty)"


def result_shape(value):
    return tuple(value.shape) if isinstance(value, ShapeOnly) else tuple(np.shape(value))


def decode_result(value):
    if isinstance(value, dict) and "__nd__" in value:
        meta = value["__nd__"]
        dtype, shape, kind = np.dtype(meta[0]), tuple(meta[1]), meta[2]
        if 0 in shape:
            try:
                return np.zeros(shape, dtype)
            except (ValueError, MemoryError):
                return ShapeOnly(shape, dtype)
        if kind == "raw":
            flat = np.frombuffer(base64.b64decode(meta[3]), dtype)
        else:
            starts = np.frombuffer(base64.b64decode(meta[3]), np.int64)
            values = np.frombuffer(base64.b64decode(meta[4]), dtype)
            size = int(np.prod(shape, dtype=object))
            flat = np.repeat(values, np.diff(np.append(starts, size)))
        return flat.reshape(shape).copy()
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if isinstance(value, dict):
        return {k: decode_result(v) for k, v in value.items()}
    return value


# -------------------------------------------------------------------- cases

@dataclasses.dataclass
class Case:
    op: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    expect: Optional[Callable[[Outcome], Optional[str]]] = None
    tag: str = "random"
    config: str = "default"
    timeout: Optional[float] = None
    allow_oom: bool = False
    note: str = ""

    def __repr__(self):  # what Hypothesis prints for a falsifying example
        return f"Case[{self.tag}/{self.config}] {describe_call(self.op, self.args, self.kwargs)}"


class Failure(Exception):
    pass


def clean_error(outcome, allow_oom=False):
    return outcome.status == "raised" and (
        outcome.type in CLEAN_ERRORS or (allow_oom and outcome.type in OOM_ERRORS))


def expect_error(pattern, allow_oom=False, types=None):
    """The case must raise a clean error (of `types`, if given) whose message matches `pattern`."""
    regex = re.compile(pattern, re.I | re.S)

    def judge(outcome):
        if outcome.status == "ok":
            return f"expected an error matching /{pattern}/, but the op accepted it"
        if not clean_error(outcome, allow_oom):
            return f"expected ValueError/TypeError/InvalidArgumentError matching /{pattern}/"
        if types and outcome.type not in types:
            return f"expected {'/'.join(types)} matching /{pattern}/"
        if not regex.search(outcome.message):
            return f"the error message does not name the problem (expected /{pattern}/)"
        return None
    judge.pattern = pattern
    return judge


def expect_value(check, allow=None, allow_oom=False):
    """The case must return a result for which check(result) is None (else the failure text);
    if `allow` (a regex) is given, a clean error matching it is accepted too."""
    regex = re.compile(allow, re.I | re.S) if allow else None

    def judge(outcome):
        if outcome.status == "raised":
            if regex and clean_error(outcome, allow_oom) and regex.search(outcome.message):
                return None
            return "expected a result" + (f" (or a clean error matching /{allow}/)" if allow else "")
        try:
            problem = check(outcome.result)
        except (Failure, AssertionError) as failure:
            return str(failure)
        if isinstance(problem, tuple):  # checks written as (check_a(...), check_b(...))
            problem = next((p for p in problem if p), None)
        return problem
    return judge


def expect_ref(reference, compare, allow=None, allow_oom=False, error_pattern=None):
    """reference() gives the expected value, or raises ValueError when the spec refuses the
    input: then a clean error matching `error_pattern` is expected."""
    try:
        want = reference()
    except (ValueError, OverflowError, ZeroDivisionError) as error:
        if error_pattern is None:
            raise
        return expect_error(error_pattern, allow_oom=allow_oom)
    return expect_value(lambda got: compare(got, want), allow=allow, allow_oom=allow_oom)


def arrays_equal(got, want, what="result"):
    got_a, want_a = np.asarray(got), np.asarray(want)
    if got_a.shape != want_a.shape:
        raise Failure(f"{what} has shape {got_a.shape}, expected {want_a.shape}")
    if got_a.dtype.kind == "f" or want_a.dtype.kind == "f":
        equal = np.array_equal(got_a.astype(np.float64), want_a.astype(np.float64), equal_nan=True)
    else:
        equal = np.array_equal(got_a.astype(object), want_a.astype(object))
    if not equal:
        diff = np.argwhere(got_a.astype(object) != want_a.astype(object)) if got_a.dtype.kind != "f" else \
            np.argwhere(~((got_a == want_a) | (np.isnan(got_a) & np.isnan(want_a.astype(np.float64)))))
        where = tuple(diff[0]) if len(diff) else ()
        raise Failure(f"{what} is wrong at {len(diff)} of {got_a.size} elements; first at {where}: "
                      f"got {got_a[where]!r}, expected {want_a[where]!r}"
                      + (f"\n      got      {describe_result(got_a)}\n      expected {describe_result(want_a)}"
                         if got_a.size <= 12 else ""))


def dtype_is(got, dtype, what="result"):
    actual = got.dtype if isinstance(got, ShapeOnly) else np.asarray(got).dtype
    if actual != np.dtype(dtype):
        raise Failure(f"{what} has dtype {actual}, expected {np.dtype(dtype).name}")


# ------------------------------------------------------------------ workers

class Worker:
    """One fuzz_worker.py process."""

    def __init__(self, config):
        self.config = config
        env = dict(os.environ)
        env.pop("KERAS_INT_GEMM", None)
        env.update(CONFIGS[config])
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env, cwd=ROOT, start_new_session=True)
        self.buffer = b""
        self.ready = False
        self.started = time.monotonic()

    def alive(self):
        return self.proc.poll() is None

    def _line(self, deadline):
        """The next JSON message, None at EOF, "timeout" past the deadline."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return "timeout"
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def wait_ready(self):
        if self.ready:
            return
        message = self._line(time.monotonic() + START_TIMEOUT)
        if not isinstance(message, dict) or not message.get("ready"):
            tail = self.stderr_tail()
            self.kill()
            raise RuntimeError(f"the fuzz worker ({self.config}) did not start: {message!r}\n{tail}")
        self.ready = True

    def stderr_tail(self, size=4000):
        try:
            self.stderr.flush()
            self.stderr.seek(0, os.SEEK_END)
            end = self.stderr.tell()
            self.stderr.seek(max(0, end - 4 * size))
            text = self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [line for line in text.splitlines()
                 if line.strip() and not re.match(r"^(WARNING: All log|I0000|W0000.*(cpu_feature|port\.cc)|"
                                                  r"To enable the following|oneDNN)", line)]
        # The fatal message first (TensorFlow's "Check failed", a C++ exception), then a few frames.
        fatal = [i for i, line in enumerate(lines)
                 if re.search(r"Check failed|^F0000|terminate called|what\(\)|Fatal Python|Segmentation|"
                              r"Floating point|Aborted|AddressSanitizer|runtime error", line)]
        if fatal:
            start = fatal[0]
            frames = [line for line in lines[start + 1:] if line.strip().startswith("@")]
            python = [line.strip() for line in lines[start:]
                      if line.strip().startswith("File") and re.search(r"tf_int_ops|keras_int|fuzz_worker", line)]
            keep = lines[start:start + 2] + [line for line in frames if "keras_int" in line][:3] + python[:3]
            return "\n      ".join(keep)[-size:]
        return "\n      ".join(lines[-12:])[-size:]

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def run(self, case_id, op, args, kwargs, timeout):
        payload = pickle.dumps((case_id, op, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(b"%d\n" % len(payload) + payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died("before the case was sent")
        deadline = time.monotonic() + timeout
        called = False
        while True:
            message = self._line(deadline)
            if message == "timeout":
                tail = self.stderr_tail()
                self.kill()
                return Outcome("hung", message=f"no answer within {timeout:.0f} s"
                               + ("" if called else " (while building the inputs)"), detail=tail)
            if message is None:
                return self._died("in the op" if called else "while building the inputs")
            if message.get("id") != case_id:
                continue
            if message.get("stage") == "call":
                called = True
                continue
            status = message["status"]
            if status == "ok":
                return Outcome("ok", result=decode_result(message["result"]))
            if status == "raised":
                return Outcome("raised", type=message["type"], message=message["message"],
                               detail=message.get("traceback", ""))
            return Outcome("setup_error", type=message["type"], message=message["message"],
                           detail=message.get("traceback", ""))

    def _died(self, where):
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = self.stderr_tail()
        self.kill()
        return Outcome("crashed", message=f"the worker process {how} {where}", detail=tail)


class Pool:
    """An active worker per configuration, and a spare started in advance."""

    def __init__(self):
        self.active = {}
        self.spare = {}
        self.next_id = 0
        self.crashed_classes = set()
        self.stats = {"cases": 0, "crashes": 0, "hangs": 0, "skipped": 0, "restarts": 0}
        self.per_test = {}      # name -> {"explicit", "generated", "skipped", "failed", "seconds"}

    def _worker(self, config):
        worker = self.active.get(config)
        if worker is not None and worker.alive():
            return worker
        if worker is not None:
            self.stats["restarts"] += 1
        worker = self.spare.pop(config, None)
        if worker is None or not worker.alive():
            worker = Worker(config)
        self.active[config] = worker
        worker.wait_ready()
        if USE_SPARE and config not in self.spare:
            self.spare[config] = Worker(config)
        return worker

    def warm(self, config):
        self._worker(config)

    def run(self, case):
        self.next_id += 1
        worker = self._worker(case.config)
        timeout = case.timeout or (OOM_TIMEOUT if case.allow_oom else CASE_TIMEOUT)
        self.stats["cases"] += 1
        outcome = worker.run(self.next_id, case.op, case.args, case.kwargs, timeout)
        if outcome.status == "crashed":
            self.stats["crashes"] += 1
        elif outcome.status == "hung":
            self.stats["hangs"] += 1
        return outcome

    def summary(self):
        lines = [f"{'fuzz test':45s} {'explicit':>8s} {'generated':>9s} {'skipped':>7s} {'failed':>6s} {'seconds':>8s}"]
        for name, row in self.per_test.items():
            lines.append(f"{name:45s} {row['explicit']:8d} {row['generated']:9d} {row['skipped']:7d} "
                         f"{row['failed']:6d} {row['seconds']:8.1f}")
        lines.append(f"cases run {self.stats['cases']}, crashes {self.stats['crashes']}, hangs "
                     f"{self.stats['hangs']}, worker restarts {self.stats['restarts']}, skipped "
                     f"{self.stats['skipped']}")
        return "\n".join(lines)

    def close(self, quiet=False):
        text = self.summary()
        if not quiet:
            sys.stderr.write("\n" + text + "\n")
        if os.environ.get("FUZZ_SUMMARY") and not quiet:
            with open(os.environ["FUZZ_SUMMARY"], "a") as f:
                f.write(text + "\n")
        for worker in list(self.active.values()) + list(self.spare.values()):
            try:
                worker.proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for worker in list(self.active.values()) + list(self.spare.values()):
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        self.active.clear()
        self.spare.clear()


class Runner:
    """Runs the cases of one test and collects readable failures."""

    def __init__(self, pool, test_name):
        self.pool = pool
        self.test_name = test_name
        self.failures = []
        self.count = 0
        self.skipped = 0
        self.started = time.monotonic()
        self.similar = {}       # failure signature -> [index in failures, count]
        self.row = pool.per_test.setdefault(test_name, {"explicit": 0, "generated": 0, "skipped": 0,
                                                         "failed": 0, "seconds": 0.0})

    def check(self, case, explicit=False):
        key = (self.test_name, case.op, case.tag, case.config)
        if SKIP_AFTER_CRASH and not explicit and key in self.pool.crashed_classes:
            self.skipped += 1
            self.row["skipped"] += 1
            self.pool.stats["skipped"] += 1
            return
        self.count += 1
        self.row["explicit" if explicit else "generated"] += 1
        outcome = self.pool.run(case)
        if outcome.status in ("crashed", "hung"):
            self.pool.crashed_classes.add(key)
            problem = "the process crashed" if outcome.status == "crashed" else "the op hung"
        elif outcome.status == "setup_error":
            problem = "the fuzz case itself could not be built (a bug of the suite)"
        elif case.expect is None:
            problem = None if outcome.status == "ok" or clean_error(outcome, case.allow_oom) else \
                "expected a result or a clean error"
        else:
            try:
                problem = case.expect(outcome)
            except Exception as error:  # a bug in the oracle: report, do not hide
                problem = f"the oracle failed: {type(error).__name__}: {error}"
        self.row["seconds"] = time.monotonic() - self.started
        if problem:
            self.row["failed"] += 1
            # The same op failing the same way again (Hypothesis draws neighbours): counted, not listed.
            signature = (case.op, case.tag, case.config, re.sub(r"-?\d+", "N", problem)[:200], outcome.status,
                         outcome.type, re.sub(r"-?\d+", "N", outcome.message)[:200])
            if not explicit and signature in self.similar:
                self.similar[signature][1] += 1
                return
            self.similar[signature] = [len(self.failures), 0]
            replay = save_case(case, f"{self.test_name}-{len(self.failures)}")
            self.failures.append(
                f"[{self.test_name}] {'(example) ' if explicit else ''}{describe_call(case.op, case.args, case.kwargs)}"
                f"\n    class: {case.tag}, GEMM: {case.config}" + (f", {case.note}" if case.note else "")
                + f"\n    problem: {problem}\n    outcome: {outcome.text()}"
                + (f"\n    replay: python tests/fuzz_harness.py {replay}" if replay else ""))

    def report(self):
        if self.failures:
            failures = list(self.failures)
            for index, more in self.similar.values():
                if more:
                    failures[index] += f"\n    (and {more} more generated case(s) failing the same way)"
            header = (f"{self.row['failed']} of {self.count} fuzz cases failed "
                      f"({self.skipped} skipped after a crash of the same class):\n\n")
            raise AssertionError(header + "\n\n".join(failures))


def save_case(case, name):
    """Pickles the case (op, arguments, configuration) for replay; returns the path or ''."""
    try:
        os.makedirs(FAILURES_DIR, exist_ok=True)
        path = os.path.join(FAILURES_DIR, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".pkl")
        with open(path, "wb") as f:
            pickle.dump({"op": case.op, "args": case.args, "kwargs": case.kwargs, "config": case.config}, f)
        return path
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return ""


def replay(path):
    """Runs a saved case in a fresh worker and prints the call and its outcome."""
    with open(path, "rb") as f:
        saved = pickle.load(f)
    pool = Pool()
    try:
        case = Case(saved["op"], saved["args"], saved["kwargs"], config=saved["config"],
                    timeout=max(CASE_TIMEOUT, OOM_TIMEOUT))
        print(f"{describe_call(case.op, case.args, case.kwargs)}  [GEMM: {case.config}]")
        outcome = pool.run(case)
        print(outcome.text())
        if outcome.status == "raised" and outcome.detail:
            print(outcome.detail)
    finally:
        pool.close(quiet=True)


if __name__ == "__main__":
    USE_SPARE = False
    for argument in sys.argv[1:]:
        replay(argument)

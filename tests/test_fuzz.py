"""Property-based fuzzing of every public op, carrier op, raw op and Keras object.

Hypothesis draws shapes (empty dimensions, dimensions whose element count
overflows int32/int64), extreme values (int8 and int32 limits, huge, tiny
and subnormal floats, NaN/Inf), exponents and shifts inside and outside
[-120, 100] and int32 (2**32 + 5), degenerate kernels, very wide rows and
all rounding modes. Every call runs in a long-lived child process
(tests/fuzz_worker.py, driven by tests/fuzz_harness.py), so that an abort,
SIGFPE, segfault or hang fails the test and names the case instead of
killing pytest. The depth-boundary cases (131071/131072) also run in a
second worker with KERAS_INT_GEMM=pairs (int16-pair GEMM instead of AVX-512
VNNI byte quads, no direct short-row convolution kernels).

A case passes when the op returns the right answer (tests/reference.py,
tests/fuzz_oracles.py or exact int64 arithmetic: never a wrapped value), or
raises a clean error (ValueError / TypeError / InvalidArgumentError, and
ResourceExhaustedError for allocations that cannot exist) whose message names
the problem. Each test runs its explicit examples (one or more per known
class of defect, every run) and then its generated cases, collects all
failures and reports them together: the call, the class, what was expected,
what happened (for a crash: the signal, TensorFlow's fatal message and the
Python stack) and a replay command. There is no shrinking (a crashing case
would restart the worker for every shrink step); after a crash or hang,
generated cases of the same class are skipped (FUZZ_SKIP_AFTER_CRASH=0 runs
them).

Run: ``.venv/bin/python -m pytest tests/test_fuzz.py`` (about 80 s on 2
cores when everything passes, 3-4 minutes with crashing defects).
Replay a reported case: ``.venv/bin/python tests/fuzz_harness.py FILE.pkl``.
Environment: FUZZ_EXAMPLES_SCALE (multiplies the generated examples per
test, default 1), FUZZ_CASE_TIMEOUT (seconds per op case, default 10),
FUZZ_OOM_TIMEOUT (cases that may end in ResourceExhausted, default 45: the
allocator retries for 10 s), FUZZ_SPARE=0 (no spare worker),
FUZZ_SUMMARY=FILE (append the per-test case counts), FUZZ_FAILURES_DIR,
FUZZ_WORKER_DATA_LIMIT (bytes, default 6 GiB).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fuzz_harness as H
import fuzz_oracles as O
import reference as ref
from fuzz_harness import Case, Failure, arrays_equal, concat, expect_error, expect_value, full, handle, var

SCALE = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1"))
MODES = ("nearest", "pseudo_stochastic", "stochastic", "truncate")
I32 = 2**31 - 1
BIG_EXPONENTS = [2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**32 + 5, -(2**32) - 5, 2**63 - 1, 2**64 + 5]
HUGE = H.HUGE


@pytest.fixture(scope="module")
def pool():
    workers = H.Pool()
    workers.warm("default")
    yield workers
    workers.close()


def fuzz(pool, name, strategy, max_examples, examples=()):
    """Runs the explicit examples, then `max_examples` generated cases; reports all failures."""
    runner = H.Runner(pool, name)
    for case in examples:
        runner.check(case, explicit=True)
    if max_examples:
        @settings(max_examples=max(1, int(max_examples * SCALE)), deadline=None, derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def generated(case):
            runner.check(case)

        generated()
    runner.report()


# ------------------------------------------------------------- strategies

INT8 = st.one_of(st.sampled_from([-128, 127, 0, -1, 1]), st.integers(-128, 127))
INT16 = st.one_of(st.sampled_from([-(2**15), 2**15 - 1, 0, -1]), st.integers(-(2**15), 2**15 - 1))
INT32 = st.one_of(st.sampled_from([-(2**31), 2**31 - 1, 0, -1, 1, 128, -128, 2**30, -(2**30)]),
                  st.integers(-(2**31), 2**31 - 1), st.integers(-(2**12), 2**12))
EXPONENT = st.one_of(st.integers(-20, 20), st.integers(-130, 110), st.sampled_from([-120, 100, -121, 101]),
                     st.sampled_from(BIG_EXPONENTS))
SEED_INT = st.one_of(st.integers(0, 2**40), st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**32 + 7]))
SEED = st.one_of(st.none(), SEED_INT, st.lists(SEED_INT, min_size=2, max_size=2),
                 st.sampled_from([2**64 + 1, [1, 2, 3], [2**63, 0], [-(2**63) - 1, 0]]))
SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 127.5, 2.0**-60, 2.0**-126, 1e-40, -1e-41, 2.0**-149, 2.0**-127,
                  3.4e38, -3.4e38, 2.0**100, 2.0**101, 2.0**-113, 2.0**-114, 2.0**-115, 2.0**-120, 2.0**93,
                  2.0**94, 0.75 * 2.0**-112, float("nan"), float("inf"), float("-inf")]
FLOAT = st.one_of(st.floats(-1e6, 1e6, width=32, allow_subnormal=False),
                  st.floats(-1e6, 1e6, width=32, allow_subnormal=False),
                  st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True),
                  st.sampled_from(SPECIAL_FLOATS[:-3]), st.sampled_from(SPECIAL_FLOATS))
FINITE_FLOAT = st.one_of(st.floats(-1e6, 1e6, width=32, allow_subnormal=False),
                         st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True),
                         st.sampled_from(SPECIAL_FLOATS[:-3]))


def int_arrays(dtype, shape, elements=None):
    if elements is None:
        elements = {np.int8: INT8, np.int16: INT16, np.int32: INT32}[dtype]
    return hnp.arrays(dtype, shape, elements=elements)


def small_shape(min_dims=0, max_dims=3, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side)


# Shapes that hold no data but whose other dimensions are huge: the op must
# not loop over (or allocate for) the empty product, nor overflow computing it.
HUGE_EMPTY = [(1, 2**20, 2**20, 0), (0, 2**31 - 1, 2**31 - 1, 1), (2**31 - 1, 2**31 - 1, 1, 0),
              (0, 2**40, 2**20, 3), (1, 2**31 - 1, 0, 2**31 - 1), (2**20, 0, 2**40, 1)]
HUGE_EMPTY_ANY = [(0, 2**62), (2**62, 0), (2**31 - 1, 2**31 - 1, 0), (0,) * 3, *HUGE_EMPTY]


def seed_args(seed):
    """(problems, normalised (key, step)) of a seed argument."""
    if seed is None:
        return [], (0, 0)
    if isinstance(seed, int):
        seed = [seed, 0]
    if len(seed) != 2:
        return [r"seed"], None
    if not all(O.INT64_MIN <= s <= O.INT64_MAX for s in seed):
        return [r"seed|int64|range"], None
    return [], tuple(seed)


def exponent_problems(e, name="exponent"):
    """Problems of a Python-int exponent argument: outside int32 -> ValueError naming it."""
    if not O.in_int32(e):
        return [name]
    return []


def check_pair(want_q, want_e, dtype=None):
    def compare(got):
        q, e = got
        if dtype is not None:
            H.dtype_is(q, dtype, "q")
        arrays_equal(q, want_q, "q")
        if int(e) != int(want_e):
            raise Failure(f"exponent is {int(e)}, expected {want_e}")
    return compare


def oracle_case(op, args, kwargs, reference, compare, tag="random", allow=None, allow_oom=False,
                config="default", note="", timeout=None):
    """A case judged by reference(): a value, or O.Refused(pattern) -> that error is expected."""
    try:
        want = reference()
    except O.Refused as refused:
        return Case(op, args, kwargs, expect_error(refused.pattern, allow_oom=allow_oom), tag=tag,
                    allow_oom=allow_oom, config=config, note=note, timeout=timeout)
    return Case(op, args, kwargs, expect_value(lambda got: compare(got, want), allow=allow, allow_oom=allow_oom),
                tag=tag, allow_oom=allow_oom, config=config, note=note, timeout=timeout)


def error_case(op, args, kwargs, pattern, tag="invalid", types=None, allow_oom=False, config="default"):
    return Case(op, args, kwargs, expect_error(pattern, allow_oom=allow_oom, types=types), tag=tag,
                allow_oom=allow_oom, config=config)


def either_case(op, args, kwargs, tag, check=None, allow=HUGE, allow_oom=False, config="default"):
    """A result that passes check (or any result), or a clean error matching `allow`."""
    return Case(op, args, kwargs, expect_value(check or (lambda got: None), allow=allow, allow_oom=allow_oom),
                tag=tag, allow_oom=allow_oom, config=config)


def empty_result(shape, dtype=None, index=None):
    """check: the (index-th) result is empty with `shape`."""
    def check(got):
        value = got[index] if index is not None else got
        if H.result_shape(value) != tuple(shape):
            raise Failure(f"result has shape {H.result_shape(value)}, expected {tuple(shape)}")
        if dtype is not None:
            H.dtype_is(value, dtype)
    return check


# ---------------------------------------------------------------- quantize

@st.composite
def quantize_cases(draw):
    bits = draw(st.one_of(st.sampled_from([8, 16]), st.sampled_from([8, 16, 4, 32, 0])))
    if draw(st.integers(0, 15)) == 0:
        shape = draw(st.sampled_from(HUGE_EMPTY_ANY))
        x = full(shape, 0.0, np.float32)
        if bits not in (8, 16):
            return error_case("quantize", (x, bits), {}, r"bits")
        return either_case("quantize", (x, bits), {}, "huge-empty",
                           check=empty_result(shape, {8: np.int8, 16: np.int16}[bits], 0))
    x = draw(hnp.arrays(np.float32, small_shape(), elements=FLOAT))
    if bits not in (8, 16):
        return error_case("quantize", (x, bits), {}, r"bits", types=("ValueError",))
    return oracle_case("quantize", (x, bits), {}, lambda: O.quantize(x, bits),
                       lambda got, want: check_pair(*want, dtype={8: np.int8, 16: np.int16}[bits])(got))


def test_fuzz_quantize(pool):
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    examples = [
        # Subnormals count as zero: all-subnormal input -> q = 0, e = 0 (defect 9).
        oracle_case("quantize", (f32(1e-40, -1e-41), 8), {}, lambda: (np.zeros(2, np.int64), 0),
                    lambda got, want: check_pair(*want)(got), tag="subnormal"),
        oracle_case("quantize", (f32(2.0**-149), 16), {}, lambda: (np.zeros(1, np.int64), 0),
                    lambda got, want: check_pair(*want)(got), tag="subnormal"),
        oracle_case("quantize", (f32(1e-40, 1.0, -3e-39), 8), {}, lambda: O.quantize(f32(1e-40, 1.0, -3e-39)),
                    lambda got, want: check_pair(*want)(got), tag="subnormal"),
        # Normal values whose exponent falls below -120: an out-of-range error.
        error_case("quantize", (f32(2.0**-120), 8), {}, r"out of range|exponent", tag="tiny-normal"),
        error_case("quantize", (f32(1.2e-38, 0.0), 8), {}, r"out of range|exponent", tag="tiny-normal"),
        error_case("quantize", (f32(3.4e38), 8), {}, r"out of range|exponent", tag="huge"),
        error_case("quantize", (f32(1.0, np.nan), 8), {}, r"NaN|Inf", tag="nan"),
        error_case("quantize", (f32(-np.inf), 16), {}, r"NaN|Inf", tag="nan"),
        either_case("quantize", (full((1, 2**20, 2**20, 0), 0.0, np.float32), 8), {}, "huge-empty",
                    check=empty_result((1, 2**20, 2**20, 0), np.int8, 0)),
    ]
    fuzz(pool, "quantize", quantize_cases(), 80, examples)


# -------------------------------------------------------------- dequantize

@st.composite
def dequantize_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int8, np.int16, np.float32, np.int32]))
    exponent = draw(st.one_of(EXPONENT, st.sampled_from([[1, 2], np.int64(3), np.int32(-7)])))
    if draw(st.integers(0, 9)) == 0 and dtype in (np.int8, np.int16):
        shape = draw(st.sampled_from(HUGE_EMPTY_ANY))
        q = full(shape, 0, dtype)
    else:
        elements = INT8 if dtype in (np.int8, np.int32) else INT16 if dtype == np.int16 else FINITE_FLOAT
        q = draw(hnp.arrays(dtype, small_shape(), elements=elements))
        shape = q.shape
    args = (q, exponent)
    if dtype not in (np.int8, np.int16):
        return error_case("dequantize", args, {}, r"q must be", types=("ValueError",))
    if isinstance(exponent, list):
        return error_case("dequantize", args, {}, r"exponent.*rank|rank", types=("ValueError",))
    if isinstance(exponent, np.int64):
        return error_case("dequantize", args, {}, r"exponent", types=("ValueError",))
    exponent = int(exponent)
    if not O.in_int32(exponent):
        return error_case("dequantize", args, {}, r"exponent", tag="int32-range", types=("ValueError", "TypeError"))
    if not O.in_exponent_range(exponent):
        return error_case("dequantize", args, {}, r"exponent.*out of range", tag="exponent-range")
    if isinstance(q, tuple):
        return either_case("dequantize", args, {}, "huge-empty", check=empty_result(shape, np.float32))
    return oracle_case("dequantize", args, {}, lambda: ref.dequantize(q, exponent),
                       lambda got, want: arrays_equal(got, want))


def test_fuzz_dequantize(pool):
    q = np.array([1, -3], np.int8)
    examples = [
        # Python ints outside int32 must not wrap (2**32 + 5 -> 5): defect 5.
        error_case("dequantize", (q, 2**32 + 5), {}, r"exponent", tag="int32-range", types=("ValueError",)),
        error_case("dequantize", (q, -(2**32) + 3), {}, r"exponent", tag="int32-range", types=("ValueError",)),
        error_case("dequantize", (q.astype(np.int16), 2**63 - 1), {}, r"exponent", tag="int32-range",
                   types=("ValueError",)),
        error_case("dequantize", (q, 101), {}, r"exponent 101 is out of range", tag="exponent-range"),
        error_case("dequantize", (q, -121), {}, r"out of range", tag="exponent-range"),
        error_case("dequantize", (q, -(2**31)), {}, r"out of range", tag="exponent-range"),
    ]
    fuzz(pool, "dequantize", dequantize_cases(), 50, examples)


# --------------------------------------------------------------- requantize

def requantize_case(acc, exponent, rounding, bits, seed, op="requantize", tag="random"):
    kwargs = {"rounding": rounding, "bits": bits, "seed": seed}
    args = (acc, exponent)
    problems = []
    if rounding not in MODES:
        problems.append("rounding")
    if bits not in (8, 16):
        problems.append("bits")
    seed_problems, seed_pair = seed_args(seed)
    problems += seed_problems
    if seed is None and rounding == "stochastic":
        problems.append("seed")
    problems += exponent_problems(exponent)
    if problems:
        return error_case(op, args, kwargs, "|".join(problems), tag="invalid-args",
                          types=("ValueError", "TypeError"))

    def reference():
        q, e = O.requantize(acc, exponent, rounding, bits, seed=seed_pair)
        if not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        return q, e

    allow = None if O.in_exponent_range(exponent) else r"exponent|out of range"
    return oracle_case(op, args, kwargs, reference,
                       lambda got, want: check_pair(*want, dtype={8: np.int8, 16: np.int16}[bits])(got),
                       tag=tag, allow=allow)


@st.composite
def requantize_cases(draw):
    acc = draw(int_arrays(np.int32, small_shape(max_dims=2, max_side=8)))
    rounding = draw(st.one_of(st.sampled_from(MODES), st.sampled_from(MODES + ("up",))))
    bits = draw(st.one_of(st.sampled_from([8, 16]), st.sampled_from([8, 16, 4])))
    seed = draw(SEED)
    return requantize_case(acc, draw(EXPONENT), rounding, bits, seed)


def test_fuzz_requantize(pool):
    acc = np.array([2**31 - 1, -(2**31), 5], np.int32)
    examples = [
        requantize_case(acc, 2**32 + 5, "nearest", 8, None, tag="int32-range"),
        requantize_case(acc, -(2**32) - 5, "truncate", 16, None, tag="int32-range"),
        requantize_case(acc, 90, "nearest", 8, None, tag="exponent-range"),
        requantize_case(acc, -120, "stochastic", 8, [2**63 - 1, -(2**63)], tag="seed"),
        requantize_case(acc, 0, "stochastic", 8, 2**64 + 1, tag="seed"),
        requantize_case(np.zeros(0, np.int32), 0, "pseudo_stochastic", 16, None, tag="empty"),
    ]
    fuzz(pool, "requantize", requantize_cases(), 80, examples)


# -------------------------------------------------------------- round_shift

def round_shift_case(x, shift, rounding, limit, seed, tag="random"):
    kwargs = {"rounding": rounding, "limit": limit, "seed": seed}
    problems = []
    if rounding not in MODES:
        problems.append("rounding")
    if not (isinstance(limit, int) and 0 <= limit <= I32):
        problems.append("limit")
    seed_problems, seed_pair = seed_args(seed)
    problems += seed_problems
    if seed is None and rounding == "stochastic":
        problems.append("seed")
    problems += exponent_problems(shift, "shift")
    if problems:
        return error_case("round_shift", (x, shift), kwargs, "|".join(problems), tag="invalid-args",
                          types=("ValueError", "TypeError"))

    def reference():
        if not 0 <= shift <= 63:
            raise O.Refused(r"shift")
        rand = ref.random_words(seed_pair[0], seed_pair[1], x.size) if rounding == "stochastic" else None
        return np.clip(O.round_shift(x, shift, rounding, rand), -limit, limit)

    return oracle_case("round_shift", (x, shift), kwargs, reference,
                       lambda got, want: (H.dtype_is(got, np.int32), arrays_equal(got, want)), tag=tag)


@st.composite
def round_shift_cases(draw):
    x = draw(int_arrays(np.int32, small_shape(max_dims=2, max_side=8)))
    shift = draw(st.one_of(st.integers(0, 63), st.integers(0, 40),
                           st.sampled_from([-1, 64, 65, 2**31 - 1, -(2**31), 2**32 + 3, 2**32])))
    limit = draw(st.one_of(st.just(I32), st.sampled_from([0, 1, 127, 32767]), st.integers(0, I32),
                           st.sampled_from([-1, 2**31, 2**63])))
    rounding = draw(st.sampled_from(MODES + ("up",) if draw(st.integers(0, 20)) == 0 else MODES))
    return round_shift_case(x, shift, rounding, limit, draw(SEED))


def test_fuzz_round_shift(pool):
    x = np.array([64, -(2**31), 2**31 - 1, 7], np.int32)
    examples = [
        # round_shift(x, 2**32 + 3) must not shift by 3 (defect 5).
        round_shift_case(x, 2**32 + 3, "nearest", I32, None, tag="int32-range"),
        round_shift_case(x, -(2**32) + 1, "truncate", I32, None, tag="int32-range"),
        round_shift_case(x, 64, "nearest", I32, None, tag="shift-range"),
        round_shift_case(x, -1, "nearest", I32, None, tag="shift-range"),
        round_shift_case(x, 63, "stochastic", I32, [5, 9], tag="shift-edge"),
        round_shift_case(x, 32, "pseudo_stochastic", 127, None, tag="shift-edge"),
        round_shift_case(x, 0, "nearest", 2**31, None, tag="limit"),
    ]
    fuzz(pool, "round_shift", round_shift_cases(), 60, examples)


# --------------------------------------------------------------- bit_length

@st.composite
def bit_length_cases(draw):
    if draw(st.integers(0, 8)) == 0:
        shape = draw(st.sampled_from(HUGE_EMPTY_ANY))
        return oracle_case("bit_length", (full(shape, 0, np.int32),), {}, lambda: 0,
                           lambda got, want: arrays_equal(got, np.int32(want)), tag="huge-empty",
                           allow=HUGE)
    if draw(st.integers(0, 10)) == 0:
        return error_case("bit_length", (draw(int_arrays(np.int8, small_shape())),), {}, r"int32",
                          types=("ValueError",))
    x = draw(int_arrays(np.int32, small_shape()))
    return oracle_case("bit_length", (x,), {}, lambda: ref.bit_length(x),
                       lambda got, want: (H.dtype_is(got, np.int32), arrays_equal(got, np.int32(want))))


def test_fuzz_bit_length(pool):
    examples = [oracle_case("bit_length", (np.array([-(2**31)], np.int32),), {}, lambda: 32,
                            lambda got, want: arrays_equal(got, np.int32(want)), tag="int32-min")]
    fuzz(pool, "bit_length", bit_length_cases(), 25, examples)


# ------------------------------------------------------------------ matmul

def matmul_reference(x, w, tx, tw):
    x, w = H.materialize(x), H.materialize(w)
    xs, ws = x.shape, w.shape
    if len(xs) != 2 or len(ws) != 2:
        raise O.Refused(r"rank")
    k1 = xs[0] if tx else xs[1]
    k2 = ws[1] if tw else ws[0]
    if k1 != k2:
        raise O.Refused(r"inner|Dimensions must be equal|match|shape")
    out = ref.matmul(x, w, tx, tw)
    if not O.fits_int32(out):
        raise O.Refused(r"overflow")
    return out


def matmul_case(x, w, tx=False, tw=False, tag="random", config="default"):
    return oracle_case("int_matmul", (x, w), {"transpose_x": tx, "transpose_w": tw},
                       lambda: matmul_reference(x, w, tx, tw),
                       lambda got, want: (H.dtype_is(got, np.int32), arrays_equal(got, want)),
                       tag=tag, config=config)


def huge_matmul_case(m, n, k, tx=False, tw=False):
    """Inputs without data ([m, 0] x [0, n] or [0, k] x [k, 0]) whose output may be huge."""
    xs, ws = (m, k), (k, n)
    x = full(xs[::-1] if tx else xs, 0, np.int8)
    w = full(ws[::-1] if tw else ws, 0, np.int8)
    kwargs = {"transpose_x": tx, "transpose_w": tw}
    if m * n == 0:
        return either_case("int_matmul", (x, w), kwargs, "huge-empty", check=empty_result((m, n), np.int32))
    if m * n * 4 >= 2**40:
        return error_case("int_matmul", (x, w), kwargs, HUGE, tag="huge-output", allow_oom=True)
    assert m * n <= 2**20, "the suite must not ask for outputs of GiBs that could really be allocated"
    return oracle_case("int_matmul", (x, w), kwargs, lambda: np.zeros((m, n), np.int64),
                       lambda got, want: arrays_equal(got, want), tag="huge-empty")


@st.composite
def matmul_cases(draw):
    branch = draw(st.integers(0, 19))
    tx, tw = draw(st.booleans()), draw(st.booleans())
    if branch == 0:
        # (2**31 - 1)**2 elements (2**64 bytes) is in the explicit examples: TensorFlow's
        # allocator retries for 10 s before its OOM error, so it is not drawn again.
        big = st.sampled_from([2**32, 2**40, 2**62])
        m, n = draw(big), draw(st.one_of(big, st.just(0)))
        if draw(st.booleans()):
            m, n = n, m
        return huge_matmul_case(m, n, 0, tx, tw)
    if branch == 1:
        # A huge depth has no data only with m = n = 0 ([0, k] x [k, 0]).
        return huge_matmul_case(0, 0, draw(st.sampled_from([2**40, 2**62])), tx, tw)
    if branch == 2:
        dtype = draw(st.sampled_from([np.float32, np.int32, np.uint8]))  # int16 is DFP16's, and valid
        x = draw(hnp.arrays(dtype, (2, 3), elements=st.integers(0, 100)))
        return error_case("int_matmul", (x, np.ones((3, 2), np.int8)), {}, r"x must be one of int8, int16",
                          types=("ValueError",))
    if branch == 3:
        x = draw(int_arrays(np.int8, small_shape(min_dims=1, max_dims=3, max_side=3).filter(lambda s: len(s) != 2)))
        return error_case("int_matmul", (x, np.ones((3, 2), np.int8)), {}, r"rank", types=("ValueError",))
    m, n = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    k = draw(st.one_of(st.integers(0, 12), st.integers(0, 80)))
    k2 = k if branch > 4 else draw(st.integers(0, 12))
    x = draw(int_arrays(np.int8, (k, m) if tx else (m, k)))
    w = draw(int_arrays(np.int8, (n, k2) if tw else (k2, n)))
    return matmul_case(x, w, tx, tw)


def test_fuzz_int_matmul(pool):
    examples = [
        # A 2**80-element output from inputs without data: InvalidArgument, not an abort (defect 1).
        huge_matmul_case(2**40, 2**40, 0),
        huge_matmul_case(2**31 - 1, 2**31 - 1, 0, tx=True, tw=True),  # 2**62 elements, 2**64 bytes
        huge_matmul_case(2**62, 1, 0),
        huge_matmul_case(1, 2**40, 0, tx=True),
        huge_matmul_case(0, 0, 2**62),
        matmul_case(np.zeros((3, 0), np.int8), np.zeros((0, 4), np.int8), tag="empty-depth"),
    ]
    fuzz(pool, "int_matmul", matmul_cases(), 60, examples)


# ------------------------------------------- depth boundary (both GEMMs)

def depth_matmul_case(m, n, k, xv, wv, tx=False, tw=False, tail=None, config="default"):
    """x [m, k] and w [k, n] filled with xv, wv (plus `tail` columns of 127 / -128)."""
    def block(shape, value, transpose):
        return full(shape[::-1] if transpose else shape, value, np.int8)

    x, w = block((m, k), xv, tx), block((k, n), wv, tw)
    if tail:
        x = concat([x, block((m, tail), 127, tx)], 0 if tx else 1)
        w = concat([w, block((tail, n), -128, tw)], 1 if tw else 0)
    return matmul_case(x, w, tx, tw, tag="depth-boundary", config=config)


def depth_conv_filter_case(x_shape, dy_channels, kernel, xv, dyv, padding="VALID", strides=(1, 1),
                           config="default", tag="depth-boundary"):
    """int_conv2d_backprop_filter of constant x and dy: the exact sums are counts * xv * dyv."""
    c = x_shape[3]
    w_shape = (*kernel, c, dy_channels)
    y_shape = O.conv_out_shape(x_shape, w_shape, strides, padding, (1, 1))
    x, dy = full(x_shape, xv, np.int8), full(y_shape, dyv, np.int8)

    def reference():
        counts = []
        for axis in (0, 1):
            out, pad = O.window(x_shape[1 + axis], kernel[axis], strides[axis], 1, padding)
            counts.append(O.tap_counts(out, pad, x_shape[1 + axis], kernel[axis], strides[axis]))
        dw = np.zeros(w_shape, np.int64)
        for a in range(kernel[0]):
            for b in range(kernel[1]):
                dw[a, b] = x_shape[0] * counts[0][a] * counts[1][b] * xv * dyv
        if not O.fits_int32(dw):
            raise O.Refused(r"overflow")
        return dw

    return oracle_case("int_conv2d_backprop_filter", (x, list(w_shape), dy),
                       {"strides": list(strides), "padding": padding},
                       reference, lambda got, want: arrays_equal(got, want), tag=tag,
                       config=config)


def depth_examples(config):
    cases = []
    for k in (131071, 131072):
        cases.append(depth_matmul_case(1, 1, k, -128, -128, config=config))
        cases.append(depth_matmul_case(2, 3, k, -128, -128, tx=True, config=config))
        cases.append(depth_matmul_case(1, 17, k, -128, 127, tw=True, config=config))
    cases += [
        depth_matmul_case(3, 2, 262144, -128, -128, tx=True, tw=True, config=config),
        depth_matmul_case(1, 1, 131072, -128, -128, tail=1, config=config),  # 2**31 - 16256: fits
        depth_matmul_case(2, 1, 262143, 1, 127, config=config),
        # conv filter gradient over one wide row: x = dy = -128 (defect 4)
        depth_conv_filter_case((1, 1, 131072, 1), 1, (1, 1), -128, -128, config=config),
        depth_conv_filter_case((1, 1, 131071, 1), 1, (1, 1), -128, -128, config=config),
        depth_conv_filter_case((1, 1, 131072, 1), 1, (1, 1), -128, 127, config=config),
        depth_conv_filter_case((1, 1, 131072, 1), 2, (1, 1), -128, -128, padding="SAME", config=config),
        depth_conv_filter_case((1, 1, 131072, 1), 1, (1, 3), -128, -128, padding="SAME", config=config),
        depth_conv_filter_case((1, 1, 131074, 1), 1, (1, 3), -128, -128, config=config),
        depth_conv_filter_case((1, 1, 131073, 1), 1, (1, 3), -128, -128, config=config),
        depth_conv_filter_case((1, 1, 131072, 3), 1, (1, 1), -128, -128, config=config),
        depth_conv_filter_case((2, 1, 65536, 1), 1, (1, 1), -128, -128, config=config),
        depth_conv_filter_case((1, 2, 65536, 1), 1, (1, 1), -128, -128, config=config),
        depth_conv_filter_case((1, 4, 32768, 1), 1, (3, 3), -128, -128, padding="SAME", config=config),
        depth_conv_filter_case((1, 1, 262144, 1), 1, (1, 1), 1, -128, config=config),
        # A tiny input with a huge stride along w: O(1) work and memory, not O(stride).
        depth_conv_filter_case((1, 1, 2, 2), 2, (1, 1), 1, 1, strides=(1, 2**31 - 1), config=config,
                               tag="huge-stride"),
        depth_conv_filter_case((1, 2, 3, 1), 1, (1, 3), -128, 127, padding="SAME", strides=(1, 2**30),
                               config=config, tag="huge-stride"),
    ]
    return cases


@st.composite
def depth_cases(draw, config):
    k = draw(st.sampled_from([131070, 131071, 131072, 131073, 196608, 262143, 262144]))
    if draw(st.booleans()):
        m, n = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        xv, wv = draw(st.sampled_from([-128, 127, 1])), draw(st.sampled_from([-128, 127, -1]))
        return depth_matmul_case(m, n, k, xv, wv, draw(st.booleans()), draw(st.booleans()),
                                 tail=draw(st.sampled_from([None, 1, 3])), config=config)
    rows = draw(st.sampled_from([1, 2, 4]))
    kernel = draw(st.sampled_from([(1, 1), (1, 3), (3, 1), (3, 3), (1, 2)]))
    width = max(1, k // rows)
    padding = draw(st.sampled_from(["SAME", "VALID"])) if rows >= kernel[0] else "SAME"
    return depth_conv_filter_case((1, rows, width, draw(st.sampled_from([1, 2]))), draw(st.sampled_from([1, 2])),
                                  kernel, draw(st.sampled_from([-128, 127])), draw(st.sampled_from([-128, 127])),
                                  padding=padding, config=config)


@pytest.mark.parametrize("config", ["default", "pairs"])
def test_fuzz_depth_boundary(pool, config):
    """Sums at the int32 boundary (depth 131071/131072): exact, or an overflow error, never wrapped."""
    fuzz(pool, f"depth_boundary[{config}]", depth_cases(config), 16, depth_examples(config))


# ------------------------------------------------------------ convolution

PAD = st.sampled_from(["SAME", "VALID"])
STRIDE = st.one_of(st.integers(1, 3), st.integers(1, 3), st.sampled_from([2**31 - 1, 2**30]))
BAD_STRIDE = st.sampled_from([0, -1, 2**31, 2**32 + 1, (1, 2, 3), 1.5])


def conv_kwargs(draw):
    strides = draw(st.one_of(STRIDE, st.tuples(STRIDE, STRIDE)))
    dilations = draw(st.one_of(st.just(1), st.integers(1, 3), st.tuples(STRIDE, st.integers(1, 2))))
    padding = draw(st.one_of(PAD, PAD, PAD, st.sampled_from(["same", "FULL", "", 1])))
    bad = draw(st.integers(0, 12))
    if bad == 0:
        strides = draw(BAD_STRIDE)
    elif bad == 1:
        dilations = draw(BAD_STRIDE)
    return {"strides": strides, "padding": padding, "dilations": dilations}


def pair_or_problem(value, name):
    pair = [value, value] if isinstance(value, int) else list(value) if isinstance(value, tuple) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        return None, name
    if min(pair) < 1 or max(pair) > I32:
        return None, name
    return pair, None


def conv_problems(kwargs):
    problems = []
    strides, p1 = pair_or_problem(kwargs["strides"], "strides")
    dilations, p2 = pair_or_problem(kwargs["dilations"], "dilations")
    problems += [p for p in (p1, p2) if p]
    padding = kwargs["padding"]
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        problems.append("padding")
        padding = None
    return problems, strides, padding and padding.upper(), dilations


def attr_class(tag, shapes, *attrs):
    """A finer class than "random" for the skip-after-crash rule: huge attributes, empty tensors."""
    if tag != "random":
        return tag
    values = [v for a in attrs for v in (a if isinstance(a, (list, tuple)) else [a]) if isinstance(v, int)]
    if values and max(values) > 2**16:
        return "random-huge-attr"
    if any(0 in tuple(shape) for shape in shapes):
        return "random-empty"
    return tag


def conv_case(op, x, w, dy, kwargs, tag="random", config="default"):
    """op in int_conv2d / int_conv2d_backprop_input / int_conv2d_backprop_filter."""
    problems, strides, padding, dilations = conv_problems(kwargs)
    tag = attr_class(tag, [H.shape_of(x), H.shape_of(w)], kwargs["strides"], kwargs["dilations"])
    if op == "int_conv2d":
        args = (x, w)
    elif op == "int_conv2d_backprop_input":
        args = (list(H.shape_of(x)), w, dy)
    else:
        args = (x, list(H.shape_of(w)), dy)
    if problems:
        return error_case(op, args, kwargs, "|".join(problems), tag="invalid-attrs")

    def reference():
        xs, ws = H.shape_of(x), H.shape_of(w)
        problems = []
        if xs[3] != ws[2]:
            problems.append(r"channels|match|shape")
        try:
            ys = O.conv_out_shape(xs, ws, strides, padding, dilations)
        except O.Refused as refused:
            problems.append(refused.pattern)
            ys = None
        if op != "int_conv2d" and ys is not None and tuple(H.shape_of(dy)) != ys:
            problems.append(r"out_backprop|dy|shape")
        if problems:
            raise O.Refused("|".join(problems))
        if op == "int_conv2d":
            out = O.conv2d(H.materialize(x), H.materialize(w), strides, padding, dilations)
        elif op == "int_conv2d_backprop_input":
            out = O.conv2d_backprop_input(xs, H.materialize(w), H.materialize(dy), strides, padding, dilations)
        else:
            out = O.conv2d_backprop_filter(H.materialize(x), ws, H.materialize(dy), strides, padding, dilations)
        if not O.fits_int32(out):
            raise O.Refused(r"overflow")
        return out

    return oracle_case(op, args, kwargs, reference,
                       lambda got, want: (H.dtype_is(got, np.int32), arrays_equal(got, want)),
                       tag=tag, config=config)


@st.composite
def conv_cases(draw, op):
    kwargs = conv_kwargs(draw)
    if draw(st.integers(0, 9)) == 0:
        return huge_conv_case(draw, op, kwargs)
    n = draw(st.integers(0, 2))
    h, wd = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    if draw(st.integers(0, 3)):
        h, wd = max(h, 1), max(wd, 1)
    c = draw(st.one_of(st.integers(1, 4), st.integers(0, 4)))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    o = draw(st.one_of(st.integers(1, 4), st.integers(0, 4)))
    c_w = c if draw(st.integers(0, 15)) else c + 1
    x = draw(int_arrays(np.int8, (n, h, wd, c)))
    w = draw(int_arrays(np.int8, (kh, kw, c_w, o)))
    dy = None
    if op != "int_conv2d":
        problems, strides, padding, dilations = conv_problems(kwargs)
        try:
            ys = O.conv_out_shape(x.shape, w.shape, strides, padding, dilations) if not problems else (1, 1, 1, 1)
        except O.Refused:
            ys = (n, 1, 1, o)
        if not draw(st.integers(0, 12)):
            ys = (ys[0], ys[1] + 1, ys[2], ys[3])
        dy = draw(int_arrays(np.int8, ys))
    return conv_case(op, x, w, dy, kwargs)


def huge_conv_case(draw, op, kwargs):
    """Tensors without data but with huge spatial sizes, or sizes vectors that overflow."""
    kwargs = dict(kwargs, strides=1, dilations=1, padding=draw(PAD))
    if op == "int_conv2d":
        xs = draw(st.sampled_from(HUGE_EMPTY))
        ws = (draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 3])), xs[3], draw(st.sampled_from([0, 1, 4])))
        if xs[3] > 64:
            ws = ws[:3] + (0,)  # a filter with data over 2**31 channels would really be allocated
        return huge_conv_shapes_case(op, xs, ws, kwargs)
    sizes = draw(st.sampled_from([[I32] * 4, [1, I32, I32, I32], [I32, I32, I32, 0], [2**30, 2**30, 4, 1],
                                  [1, 2**31 - 1, 2**31 - 1, 2], [-1, 2, 2, 1], [1, 2, 2, -5], [1, 2, 2],
                                  [2**31, 1, 1, 1], [1, 2**32 + 5, 3, 1]]))
    w, dy = np.ones((1, 1, 1, 1), np.int8), np.ones((1, 1, 1, 1), np.int8)
    args = (sizes, w, dy) if op == "int_conv2d_backprop_input" else (full((1, 1, 1, 1), 1, np.int8), sizes, dy)
    if any(not O.in_int32(s) for s in sizes):
        return error_case(op, args, kwargs, r"sizes|int32", tag="int32-range", types=("ValueError",))
    return error_case(op, args, kwargs, HUGE + r"|sizes|negative|out_backprop|dy|shape|vector|channels",
                      tag="huge-sizes", allow_oom=True)


def huge_conv_shapes_case(op, xs, ws, kwargs):
    padding = kwargs["padding"]
    x, w = full(xs, 0, np.int8), full(ws, 0, np.int8)
    try:
        ys = O.conv_out_shape(xs, ws, (1, 1), padding, (1, 1))
    except O.Refused as refused:
        return error_case(op, (x, w), kwargs, refused.pattern, tag="huge-spatial")
    count = int(np.prod(ys, dtype=object))
    if count == 0:
        return either_case(op, (x, w), kwargs, "huge-spatial", check=empty_result(ys, np.int32))
    return error_case(op, (x, w), kwargs, HUGE, tag="huge-spatial", allow_oom=True)


def test_fuzz_int_conv2d(pool):
    same = {"strides": 1, "padding": "SAME", "dilations": 1}
    examples = [
        huge_conv_shapes_case("int_conv2d", (1, 2**20, 2**20, 0), (3, 3, 0, 0), same),
        huge_conv_shapes_case("int_conv2d", (1, 2**20, 2**20, 0), (1, 1, 0, 1), same),
        huge_conv_shapes_case("int_conv2d", (1, 2**31 - 1, 2**31 - 1, 0), (1, 1, 0, 4), same),
        huge_conv_shapes_case("int_conv2d", (0, 2**31 - 1, 2**31 - 1, 1), (3, 3, 1, 2), same),
        conv_case("int_conv2d", np.ones((1, 3, 3, 1), np.int8), np.ones((3, 3, 1, 1), np.int8), None,
                  {"strides": 1, "padding": "SAME", "dilations": 2**31 - 1}, tag="huge-dilation"),
        conv_case("int_conv2d", np.ones((1, 3, 3, 1), np.int8), np.ones((2, 2, 1, 1), np.int8), None,
                  {"strides": 2**31 - 1, "padding": "SAME", "dilations": 2**30}, tag="huge-dilation"),
    ]
    fuzz(pool, "int_conv2d", conv_cases("int_conv2d"), 60, examples)


def test_fuzz_int_conv2d_backprop_input(pool):
    w, dy = np.ones((1, 1, 1, 1), np.int8), np.ones((1, 1, 1, 1), np.int8)
    same = {"strides": 1, "padding": "SAME", "dilations": 1}
    examples = [
        # input_sizes whose element count overflows: InvalidArgument, not "Check failed" (defect 1).
        error_case("int_conv2d_backprop_input", ([I32] * 4, w, dy), same, HUGE + "|input_sizes|out_backprop",
                   tag="huge-sizes", allow_oom=True),
        error_case("int_conv2d_backprop_input", ([1, I32, I32, I32], w, dy), same,
                   HUGE + "|input_sizes|out_backprop", tag="huge-sizes", allow_oom=True),
        error_case("int_conv2d_backprop_input", ([1, 2**32 + 1, 1, 1], w, dy), same, r"input_sizes|int32",
                   tag="int32-range", types=("ValueError",)),
        either_case("int_conv2d_backprop_input",
                    ([0, I32, I32, 1], np.ones((3, 3, 1, 2), np.int8), full((0, I32, I32, 2), 0, np.int8)),
                    same, "huge-empty", check=empty_result((0, I32, I32, 1), np.int32)),
        either_case("int_conv2d_backprop_input",
                    ([I32, I32, 1, 0], np.ones((1, 1, 0, 0), np.int8), full((I32, I32, 1, 0), 0, np.int8)),
                    same, "huge-empty", check=empty_result((I32, I32, 1, 0), np.int32)),
    ]
    fuzz(pool, "int_conv2d_backprop_input", conv_cases("int_conv2d_backprop_input"), 55, examples)


def test_fuzz_int_conv2d_backprop_filter(pool):
    x, dy = np.ones((1, 1, 1, 1), np.int8), np.ones((1, 1, 1, 1), np.int8)
    same = {"strides": 1, "padding": "SAME", "dilations": 1}
    examples = [
        error_case("int_conv2d_backprop_filter", (x, [I32] * 4, dy), same, HUGE + "|filter_sizes|out_backprop",
                   tag="huge-sizes", allow_oom=True),
        error_case("int_conv2d_backprop_filter", (x, [1, 1, 1, -1], dy), same,
                   r"filter_sizes|negative|shape|out_backprop", tag="huge-sizes"),
        error_case("int_conv2d_backprop_filter", (x, [1, 1, 1, 2**32 + 1], dy), same, r"filter_sizes|int32",
                   tag="int32-range", types=("ValueError",)),
        either_case("int_conv2d_backprop_filter",
                    (full((1, 2**20, 2**20, 0), 0, np.int8), [3, 3, 0, 0], full((1, 2**20, 2**20, 0), 0, np.int8)),
                    same, "huge-spatial", check=empty_result((3, 3, 0, 0), np.int32)),
        either_case("int_conv2d_backprop_filter",
                    (full((0, 2**31 - 1, 2**31 - 1, 2), 0, np.int8), [3, 3, 2, 4],
                     full((0, 2**31 - 1, 2**31 - 1, 4), 0, np.int8)),
                    same, "huge-spatial", check=lambda got: arrays_equal(got, np.zeros((3, 3, 2, 4), np.int32))),
    ]
    fuzz(pool, "int_conv2d_backprop_filter", conv_cases("int_conv2d_backprop_filter"), 55, examples)


# ----------------------------------------------------------------- pooling

def pool_problems(pool_size, strides, padding):
    problems = []
    ksize, p1 = pair_or_problem(pool_size, "pool_size")
    if strides is None:
        stride_pair, p2 = ksize, None
    else:
        stride_pair, p2 = pair_or_problem(strides, "strides")
    problems += [p for p in (p1, p2) if p]
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        problems.append("padding")
    return problems, ksize, stride_pair, padding.upper() if isinstance(padding, str) else None


def pool_case(op, x, dy, pool_size, strides, padding, exponent=None, tag="random", rounding="nearest"):
    kwargs = {"pool_size": pool_size, "strides": strides, "padding": padding}
    tag = attr_class(tag, [H.shape_of(x)], pool_size, strides)
    if op == "int_avg_pool2d" and rounding != "nearest":
        kwargs.update(rounding=rounding, seed=[6, 6] if rounding == "stochastic" else None)
    problems, ksize, stride_pair, pad = pool_problems(pool_size, strides, padding)
    if op == "int_max_pool2d":
        args = (x,)
    elif op == "int_max_pool2d_grad":
        args = (x, dy)
    elif op == "int_avg_pool2d":
        args = (x, exponent)
    else:
        args = (list(H.shape_of(x)), dy, exponent)
    if problems:
        problems = [p.replace("pool_size", "pool_size|ksize") for p in problems]
        if exponent is not None and not O.in_exponent_range(exponent):
            problems.append("exponent")
        return error_case(op, args, kwargs, "|".join(problems), tag="invalid-attrs")
    if exponent is not None and not O.in_int32(exponent):
        return error_case(op, args, kwargs, "exponent", tag="int32-range", types=("ValueError",))
    xs = H.shape_of(x)

    def reference():
        problems = []
        try:
            out_shape = (xs[0], *[O.window(xs[1 + i], ksize[i], stride_pair[i], 1, pad)[0] for i in (0, 1)], xs[3])
        except O.Refused as refused:
            problems.append(refused.pattern)
            out_shape = None
        if op in ("int_max_pool2d_grad", "int_avg_pool2d_grad") and out_shape and \
                tuple(H.shape_of(dy)) != out_shape:
            problems.append(r"dy|shape")
        if problems and ksize[0] * ksize[1] > 2**16:
            problems.append(r"ksize|window")
        if problems:
            raise O.Refused("|".join(problems))
        if op == "int_max_pool2d":
            return O.max_pool(H.materialize(x), ksize, stride_pair, pad)
        if op == "int_max_pool2d_grad":
            return O.max_pool_grad(H.materialize(x), H.materialize(dy), ksize, stride_pair, pad)
        if op == "int_avg_pool2d":
            acc = O.avg_pool_acc(H.materialize(x), ksize, stride_pair, pad)
            q, e = O.requantize(acc, exponent - 16, rounding, seed=(6, 6))
        else:
            acc = O.avg_pool_grad_acc(xs, H.materialize(dy), ksize, stride_pair, pad)
            q, e = O.requantize(acc, exponent - 16, "nearest")
        if np.size(q) and not O.in_exponent_range(e):
            # The kernel may refuse the window size before it sees the exponent.
            raise O.Refused(r"exponent|out of range" + (r"|ksize|window" if ksize[0] * ksize[1] > 2**16 else ""))
        return q, e

    def compare(got, want):
        if op in ("int_max_pool2d", "int_max_pool2d_grad"):
            H.dtype_is(got, np.int8 if op == "int_max_pool2d" else np.int32)
            return arrays_equal(got, want)
        q, e = got
        H.dtype_is(q, np.int8)
        arrays_equal(q, want[0], "q")
        if np.size(q) and int(e) != want[1]:
            raise Failure(f"exponent is {int(e)}, expected {want[1]}")

    allow = []
    if exponent is not None and not O.in_exponent_range(exponent):
        allow.append(r"exponent|out of range")
    elif exponent is not None and 0 in xs:
        allow.append(r"exponent|out of range")
    if ksize[0] * ksize[1] > 2**16:
        allow.append(r"ksize|window")  # a documented limit of the window size is a clean refusal
    return oracle_case(op, args, kwargs, reference, compare, tag=tag, allow="|".join(allow) or None)


POOL_SIZE = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)),
                      st.sampled_from([2**31 - 1, (1, 2**30)]))


@st.composite
def pool_cases(draw, op):
    pool_size = draw(st.one_of(POOL_SIZE, POOL_SIZE, POOL_SIZE, BAD_STRIDE))
    strides = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)),
                             st.sampled_from([2**31 - 1, 0])))
    padding = draw(st.one_of(PAD, PAD, PAD, st.sampled_from(["valid", "FULL"])))
    exponent = draw(st.one_of(st.integers(-20, 20), EXPONENT)) if "avg" in op else None
    if draw(st.integers(0, 9)) == 0:
        # No reference (it would walk 2**40 windows): the empty result or a clean error.
        xs = draw(st.sampled_from(HUGE_EMPTY))
        x = full(xs, 0, np.int8)
        kwargs = {"pool_size": draw(st.sampled_from([1, 2])), "strides": None, "padding": draw(PAD)}
        args = {"int_max_pool2d": (x,), "int_max_pool2d_grad": (x, x), "int_avg_pool2d": (x, 0),
                "int_avg_pool2d_grad": (list(xs), x, 0)}[op]
        return either_case(op, args, kwargs, "huge-empty", allow=HUGE + r"|smaller|window|dy|shape")
    xs = (draw(st.integers(0, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(0, 3)))
    x = draw(int_arrays(np.int8, xs))
    dy = None
    if op in ("int_max_pool2d_grad", "int_avg_pool2d_grad"):
        problems, ksize, stride_pair, pad = pool_problems(pool_size, strides, padding)
        try:
            ys = (xs[0], *[O.window(xs[1 + i], ksize[i], stride_pair[i], 1, pad)[0] for i in (0, 1)], xs[3]) \
                if not problems else (1, 1, 1, 1)
        except O.Refused:
            ys = (xs[0], 1, 1, xs[3])
        if not draw(st.integers(0, 12)):
            ys = (ys[0], ys[1], ys[2] + 1, ys[3])
        dy = draw(int_arrays(np.int8, ys))
    return pool_case(op, x, dy, pool_size, strides, padding, exponent, rounding=draw(st.sampled_from(MODES)))


def test_fuzz_max_pool(pool):
    examples = [
        # An empty tensor with huge spatial sizes: no hang (defect 3).
        either_case("int_max_pool2d", (full((1, 2**20, 2**20, 0), 0, np.int8),), {"pool_size": 1}, "huge-empty",
                    check=empty_result((1, 2**20, 2**20, 0), np.int8)),
        either_case("int_max_pool2d", (full((1, 2**31 - 1, 2**31 - 1, 0), 0, np.int8),),
                    {"pool_size": 2, "padding": "SAME"}, "huge-empty"),
        either_case("int_max_pool2d_grad", (full((1, 2**20, 2**20, 0), 0, np.int8),
                                            full((1, 2**20, 2**20, 0), 0, np.int8)), {"pool_size": 1}, "huge-empty"),
        pool_case("int_max_pool2d", np.arange(-128, -119, dtype=np.int8).reshape(1, 3, 3, 1), None, 2**31 - 1, 1,
                  "SAME", tag="huge-window"),
    ]
    fuzz(pool, "int_max_pool2d", pool_cases("int_max_pool2d"), 45, examples)
    fuzz(pool, "int_max_pool2d_grad", pool_cases("int_max_pool2d_grad"), 40)


def test_fuzz_avg_pool(pool):
    examples = [
        either_case("int_avg_pool2d", (full((1, 2**20, 2**20, 0), 0, np.int8), 0), {"pool_size": 1}, "huge-empty"),
        either_case("int_avg_pool2d_grad", ([1, 2**20, 2**20, 0], full((1, 2**20, 2**20, 0), 0, np.int8), 0),
                    {"pool_size": 1}, "huge-empty"),
        error_case("int_avg_pool2d_grad", ([I32] * 4, np.ones((1, 1, 1, 1), np.int8), 0), {"pool_size": 1},
                   HUGE + "|input_sizes|dy", tag="huge-sizes", allow_oom=True),
        pool_case("int_avg_pool2d", np.full((1, 3, 3, 1), 127, np.int8), None, (2**31 - 1, 3), 1, "SAME",
                  exponent=0, tag="huge-window"),
        pool_case("int_avg_pool2d", np.full((1, 2, 2, 1), -128, np.int8), None, 2, 2, "VALID",
                  exponent=2**32 + 5, tag="int32-range"),
        pool_case("int_avg_pool2d", np.full((1, 2, 2, 1), -128, np.int8), None, 2, 2, "VALID",
                  exponent=-(2**31) + 3, tag="exponent-range"),
    ]
    fuzz(pool, "int_avg_pool2d", pool_cases("int_avg_pool2d"), 45, examples)
    fuzz(pool, "int_avg_pool2d_grad", pool_cases("int_avg_pool2d_grad"), 40)


# ------------------------------------------------------------------ int_add

def add_case(a, ea, b, eb, rounding="nearest", seed=None, tag="random"):
    kwargs = {"rounding": rounding, "seed": seed}
    args = (a, ea, b, eb)
    problems = exponent_problems(ea, "a_exponent") + exponent_problems(eb, "b_exponent")
    seed_problems, seed_pair = seed_args(seed)
    problems += seed_problems + (["seed"] if rounding == "stochastic" and seed is None else [])
    if problems:
        others = [name for name, e in (("a_exponent", ea), ("b_exponent", eb)) if not O.in_exponent_range(e)]
        if np.shape(a) != np.shape(b):
            others.append("shape")
        # Only Python-level problems: the Python check must catch them (no wrapped value reaches the op).
        types = ("ValueError",) if set(others) <= set(problems) else None
        return error_case("int_add", args, kwargs, "|".join(problems + others), tag="invalid-args", types=types)
    if np.shape(a) != np.shape(b):
        return error_case("int_add", args, kwargs, r"shape", types=("ValueError",))
    if not (O.in_exponent_range(ea) and O.in_exponent_range(eb)):
        return error_case("int_add", args, kwargs, r"exponent|out of range", tag="exponent-range")
    exact = O.value_of(a, ea) + O.value_of(b, eb)  # exact in float64: |values| < 2**108, 53 bits apart

    def reference():
        acc, acc_e = O.aligned_add(a, ea, b, eb)
        q, e = O.requantize(acc, acc_e, rounding, seed=seed_pair)
        if np.size(q) and not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        return q, e

    def compare(got, want):
        q, e = got
        H.dtype_is(q, np.int8, "q")
        value = O.value_of(q, int(e))
        if not np.size(q):
            return
        if not O.in_exponent_range(int(e)):
            raise Failure(f"result exponent {int(e)} is outside [-120, 100]")
        if not np.any(a) or not np.any(b):
            # x + 0 is x exactly, whatever the exponents (defect 6).
            arrays_equal(value, exact, "value q * 2**e")
        elif abs(ea - eb) <= 23:
            arrays_equal(value, O.value_of(*want), "value q * 2**e")  # one exact rounding
        else:
            # Exponents far apart: one unit of the result's exponent around the exact sum.
            unit = 2.0 ** max(int(e), want[1])
            bad = np.abs(value - exact) > unit
            if bad.any():
                i = tuple(np.argwhere(bad)[0])
                raise Failure(f"value {value[i]!r} at {i} is more than one unit ({unit}) from the exact "
                              f"sum {exact[i]!r}")

    return oracle_case("int_add", args, kwargs, reference, compare, tag=tag)


@st.composite
def add_cases(draw):
    shape = draw(small_shape(max_dims=2, max_side=8))
    a = draw(int_arrays(np.int8, shape))
    b = draw(int_arrays(np.int8, shape if draw(st.integers(0, 15)) else shape + (1,)))
    if draw(st.integers(0, 4)) == 0:
        a = np.zeros_like(a)
    e_small = st.one_of(st.integers(-40, 40), st.integers(-125, 105), st.sampled_from([-120, 100]))
    ea = draw(st.one_of(e_small, e_small, st.sampled_from(BIG_EXPONENTS)))
    eb = draw(st.one_of(e_small, e_small, st.sampled_from(BIG_EXPONENTS)))
    rounding = draw(st.sampled_from(MODES))
    seed = draw(st.one_of(st.just([7, 1]), SEED)) if rounding == "stochastic" else None
    if draw(st.booleans()):
        return add_case(b, eb, a, ea, rounding, seed)
    return add_case(a, ea, b, eb, rounding, seed)


def test_fuzz_int_add(pool):
    zeros, b = np.zeros(2, np.int8), np.array([100, -3], np.int8)
    examples = [
        add_case(zeros, 0, b, -30, tag="add-zero"),           # defect 6: must be [100, -3] * 2**-30
        add_case(b, -30, zeros, 0, tag="add-zero"),
        add_case(zeros, 100, b, -120, "truncate", tag="add-zero"),
        add_case(np.array([-128, 127], np.int8), 100, np.array([-128, 127], np.int8), 100, tag="exponent-range"),
        add_case(b, 2**32 + 5, b, 0, tag="int32-range"),
        add_case(np.array([1, 0], np.int8), 0, np.array([1, 1], np.int8), -60, "stochastic", [3, 4], tag="far"),
    ]
    fuzz(pool, "int_add", add_cases(), 70, examples)


# ------------------------------------------------------------ cross-entropy

def ce_case(logits, exponent, labels, rounding="pseudo_stochastic", seed=None, tag="random", wide=False):
    kwargs = {"rounding": rounding, "seed": seed}
    args = (logits, exponent, labels)
    problems = exponent_problems(exponent)
    seed_problems, seed_pair = seed_args(seed)
    problems += seed_problems
    if rounding not in ("pseudo_stochastic", "stochastic"):
        problems.append("rounding")
    elif rounding == "stochastic" and seed is None:
        problems.append("seed")
    if problems:
        return error_case("int_softmax_cross_entropy_grad", args, kwargs, "|".join(problems),
                          tag="invalid-args", types=("ValueError",))
    shape = H.shape_of(logits)
    labels_array = np.asarray(labels)

    def reference():
        problems = []
        if labels_array.shape != (shape[0],):
            problems.append(r"labels")
        elif labels_array.size and (labels_array.min() < 0 or labels_array.max() >= shape[1]):
            problems.append(r"labels\[\d+\] = -?\d+ is out of range|no classes")
        if not O.in_exponent_range(exponent):
            problems.append(r"exponent")
        if problems:
            raise O.Refused("|".join(problems))
        q = H.materialize(logits)
        if wide or q.size > 4096:
            return O.softmax_cross_entropy_grad(q, exponent, labels_array, rounding, seed_pair)
        want, _ = ref.softmax_cross_entropy_grad(q, exponent, labels_array, rounding, seed_pair)
        return np.asarray(want).reshape(shape), -7

    return oracle_case("int_softmax_cross_entropy_grad", args, kwargs, reference,
                       lambda got, want: check_pair(*want, dtype=np.int8)(got), tag=tag,
                       allow=r"classes|more than|overflow|too (many|wide|large)" if wide else None)


def wide_ce_case(batch, classes, value, exponent, label, tail=None):
    logits = full((batch, classes), value, np.int8)
    if tail is not None:
        logits = concat([full((batch, 1), tail, np.int8), full((batch, classes - 1), value, np.int8)], 1)
    return ce_case(logits, exponent, np.full(batch, label, np.int64), tag="wide-row", wide=True)


@st.composite
def ce_cases(draw):
    if draw(st.integers(0, 9)) == 0:
        classes = draw(st.sampled_from([2**20, 2**21, 2**21 + 1, 2**22, 2**23]))
        return wide_ce_case(1, classes, draw(st.sampled_from([0, 127, -128])),
                            draw(st.sampled_from([-20, -30, -7, -6, 0, 5, 100])),
                            draw(st.sampled_from([0, 3, classes - 1])),
                            tail=draw(st.sampled_from([None, 127, -128])))
    batch, classes = draw(st.integers(0, 6)), draw(st.one_of(st.integers(1, 12), st.integers(0, 40)))
    logits = draw(int_arrays(np.int8, (batch, classes)))
    label_value = st.one_of(st.integers(0, max(classes - 1, 0)), st.integers(0, max(classes - 1, 0)),
                            st.sampled_from([-1, classes, 2**40, -(2**63)]))
    n_labels = batch if draw(st.integers(0, 12)) else batch + 1
    labels = np.array(draw(st.lists(label_value, min_size=n_labels, max_size=n_labels)), np.int64)
    if draw(st.booleans()) and (labels.size == 0 or (labels.min() >= -(2**31) and labels.max() < 2**31)):
        labels = labels.astype(np.int32)
    exponent = draw(st.one_of(st.integers(-30, 20), EXPONENT))
    rounding = draw(st.sampled_from(["pseudo_stochastic", "stochastic", "pseudo_stochastic", "nearest"]))
    seed = draw(st.one_of(st.just([3, 3]), SEED)) if rounding == "stochastic" else None
    return ce_case(logits, exponent, labels, rounding, seed)


def test_fuzz_softmax_cross_entropy_grad(pool):
    examples = [
        # A row of 2**23 classes at exponent -20: the normaliser must not wrap to 0 (SIGFPE, defect 2).
        wide_ce_case(1, 2**23, 0, -20, 3),
        wide_ce_case(1, 2**21 + 1, -128, -20, 0, tail=127),
        wide_ce_case(2, 2**20, 127, 0, 5),
        ce_case(np.zeros((3, 0), np.int8), 0, np.zeros(3, np.int64), tag="no-classes"),
        ce_case(np.zeros((0, 0), np.int8), 0, np.zeros(0, np.int64), tag="no-classes"),
        ce_case(np.ones((2, 3), np.int8), 2**32 - 20, np.zeros(2, np.int64), tag="int32-range"),
    ]
    fuzz(pool, "int_softmax_cross_entropy_grad", ce_cases(), 50, examples)


# ---------------------------------------------------------------------- SGD

def sgd_case(w, g, mu, momentum=0, buffer=None, weight_decay=0, tag="random"):
    kwargs = {"mu": mu, "momentum": momentum, "momentum_buffer": buffer, "weight_decay": weight_decay}
    args = (w, g)
    problems = []
    if isinstance(mu, int) and not 1 <= mu <= 30:
        problems.append("mu")
    if not (isinstance(momentum, int) and 0 <= momentum <= 16):
        problems.append("momentum")
    if not (isinstance(weight_decay, int) and 0 <= weight_decay <= 1024):
        problems.append("weight_decay")
    if momentum and buffer is None:
        problems.append("momentum_buffer")
    if np.shape(w) != np.shape(g):
        problems.append("shape")
    if problems:
        return error_case("integer_sgd_update", args, kwargs, "|".join(problems), tag="invalid-args",
                          types=("ValueError",))
    bits = {np.dtype(np.int8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32}[w.dtype]

    def reference():
        mu_value = int(mu) if isinstance(mu, int) else int(np.asarray(mu))
        if not 1 <= mu_value <= 30:
            raise O.Refused(r"mu")
        if momentum and np.shape(buffer) != np.shape(w):
            raise O.Refused(r"momentum_buffer|shape")
        return ref.sgd_update(w, g, mu_value, momentum, buffer, weight_decay, bits)

    def compare(got, want):
        new_w, new_buffer = got
        H.dtype_is(new_w, w.dtype, "new_w")
        arrays_equal(new_w, want[0], "new_w")
        if momentum:
            arrays_equal(new_buffer, want[1], "new_momentum_buffer")

    return oracle_case("integer_sgd_update", args, kwargs, reference, compare, tag=tag)


@st.composite
def sgd_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32]))
    limit = {np.int8: 127, np.int16: 32767, np.int32: 2**31 - 1}[dtype]
    values = st.one_of(st.integers(-limit, limit), st.sampled_from([-limit, limit, 0]))
    shape = draw(small_shape(max_dims=2, max_side=8))
    w = draw(hnp.arrays(dtype, shape, elements=values))
    g = draw(int_arrays(np.int32, shape if draw(st.integers(0, 15)) else shape + (1,)))
    mu = draw(st.one_of(st.integers(1, 30), st.integers(1, 30), st.sampled_from([0, 31, -1, 2**32 + 5])))
    momentum = draw(st.one_of(st.just(0), st.integers(0, 16), st.sampled_from([17, -1])))
    buffer = draw(hnp.arrays(dtype, shape, elements=values)) if momentum and draw(st.integers(0, 10)) else None
    weight_decay = draw(st.one_of(st.just(0), st.integers(0, 1024), st.sampled_from([1024, 1025, -1])))
    return sgd_case(w, g, mu, momentum, buffer, weight_decay)


def test_fuzz_integer_sgd_update(pool):
    g = np.array([-(2**31), 2**31 - 1, 5], np.int32)
    examples = [
        sgd_case(np.array([127, -127, 3], np.int8), g, 30, 16, np.array([127, -127, 0], np.int8), 1024,
                 tag="extreme"),
        sgd_case(np.array([2**31 - 1, -(2**31 - 1), 0], np.int32), g, 1, 0, None, 1024, tag="extreme"),
        sgd_case(np.zeros(3, np.int16), g, 2**32 + 5, tag="int32-range"),
    ]
    fuzz(pool, "integer_sgd_update", sgd_cases(), 50, examples)


@st.composite
def int8_weights_cases(draw):
    w16 = draw(int_arrays(np.int16, small_shape(max_dims=2, max_side=8)))
    return oracle_case("int8_weights", (w16,), {},
                       lambda: np.clip(O.round_shift(w16, 8, "pseudo_stochastic"), -127, 127),
                       lambda got, want: (H.dtype_is(got, np.int8), arrays_equal(got, want)))


def test_fuzz_int8_weights(pool):
    examples = [error_case("int8_weights", (np.ones(3, np.int8),), {}, r"int16", types=("ValueError",))]
    fuzz(pool, "int8_weights", int8_weights_cases(), 20, examples)


# ------------------------------------------------------------- carrier ops

def carrier(q, e):
    return np.asarray(np.asarray(q, np.float64) * 2.0**e, np.float32)


@st.composite
def carriers(draw, shape, raw=True):
    """A float32 carrier q * 2**e, or (sometimes) raw floats with extremes."""
    if raw and draw(st.integers(0, 3)) == 0:
        return draw(hnp.arrays(np.float32, shape, elements=FLOAT))
    e = draw(st.one_of(st.integers(-12, 4), st.sampled_from([-120, -114, 93, 100])))
    return carrier(draw(int_arrays(np.int8, shape, st.integers(-127, 127))), e)


def gradient_exponent_ok(q, e):
    """A carrier gradient needs its exponent in range (it is dequantized)."""
    if np.size(q) and not O.in_exponent_range(e):
        raise O.Refused(r"exponent|out of range")


def dense_case(x, kernel, kernel_exponent, dy, bias=None, rounding="nearest", tag="random",
               record_exponent=False):
    kwargs = {"dy": dy, "rounding": rounding, "seed": [11, 2] if rounding == "stochastic" else None}
    args = (x, var(kernel), kernel_exponent)
    if bias is not None:
        kwargs["bias"] = var(bias)
    if record_exponent:
        kwargs["error_exponent"] = var(np.int32(12345))
    if not O.in_int32(kernel_exponent):
        shape_problem = x.shape[-1] != kernel.shape[0] or (bias is not None and bias.shape != kernel.shape[1:])
        return error_case("carrier_dense", args, kwargs,
                          r"kernel_exponent" + (r"|features|kernel|bias|shape" if shape_problem else ""),
                          tag="int32-range", types=None if shape_problem else ("ValueError",))

    def reference():
        problems = []
        if x.shape[-1] != kernel.shape[0]:
            problems.append(r"features|kernel|shape")
        if bias is not None and bias.shape != kernel.shape[1:]:
            problems.append(r"bias")
        try:
            qx, ex = O.quantize(x)
        except O.Refused as refused:
            problems.append(refused.pattern)
        if not O.in_exponent_range(kernel_exponent):
            problems.append(r"exponent")
        if problems:
            raise O.Refused("|".join(problems))
        rows = int(np.prod(x.shape[:-1]))
        flat = qx.reshape(rows, kernel.shape[0])
        acc = flat @ kernel.astype(np.int64)
        if bias is not None:
            acc = ref.add_bias(acc, bias, -ex)
        if not O.fits_int32(acc):
            raise O.Refused(r"overflow")
        q, e = O.requantize(acc, ex + kernel_exponent, rounding, seed=(11, 2))
        if q.size and not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        y = carrier(q, e).reshape(*x.shape[:-1], kernel.shape[1])
        err, ee = O.quantize(dy)
        err_flat = err.reshape(rows, kernel.shape[1])
        dx_q, dx_e = O.requantize(err_flat @ kernel.T.astype(np.int64), ee + kernel_exponent, "nearest")
        gradient_exponent_ok(dx_q, dx_e)
        return {"y": y, "y_exponent": e, "dx": carrier(dx_q, dx_e).reshape(x.shape),
                "dkernel": flat.T @ err_flat, "dbias": err_flat.sum(axis=0), "ee": ee}

    def compare(got, want):
        arrays_equal(got["y"], want["y"], "y")
        if int(got["y_exponent"]) != want["y_exponent"] and want["y"].size:
            raise Failure(f"y_exponent is {int(got['y_exponent'])}, expected {want['y_exponent']}")
        arrays_equal(got["d0"], want["dx"], "dx")
        H.dtype_is(got["dv0"], np.int32, "dkernel")
        arrays_equal(got["dv0"], want["dkernel"], "dkernel")
        if bias is not None:
            arrays_equal(got["dv1"], want["dbias"], "dbias")
        if record_exponent and int(got["error_exponent"]) != want["ee"]:
            raise Failure(f"error_exponent holds {int(got['error_exponent'])}, expected {want['ee']}")

    return oracle_case("carrier_dense", args, kwargs, reference, compare, tag=tag,
                       allow=r"exponent|out of range" if not (x.size and kernel.size) else None)


@st.composite
def dense_cases(draw):
    batch = draw(st.integers(0, 4))
    features, units = draw(st.integers(0, 6)), draw(st.integers(0, 5))
    lead = (batch,) if draw(st.integers(0, 4)) else (batch, 2)
    x = draw(carriers(lead + (features if draw(st.integers(0, 15)) else features + 1,)))
    kernel = draw(int_arrays(np.int8, (features, units)))
    bias = draw(int_arrays(np.int32, (units,), st.integers(-(2**20), 2**20))) if draw(st.booleans()) else None
    dy = draw(carriers(lead + (units,), raw=False))
    ek = draw(st.one_of(st.integers(-10, 0), st.sampled_from([-120, 100, -121, 2**32 - 7])))
    return dense_case(x, kernel, ek, dy, bias, draw(st.sampled_from(MODES)), record_exponent=draw(st.booleans()),
                      tag="random-degenerate" if 0 in kernel.shape else "random")


def test_fuzz_carrier_dense(pool):
    x = np.ones((3, 2), np.float32)
    examples = [
        # A [2, 0] kernel with a [0] bias: an empty result, not SIGFPE (defect 2).
        dense_case(x, np.zeros((2, 0), np.int8), -7, np.zeros((3, 0), np.float32), np.zeros(0, np.int32),
                   tag="degenerate-kernel"),
        dense_case(x, np.zeros((2, 0), np.int8), -7, np.zeros((3, 0), np.float32), tag="degenerate-kernel"),
        dense_case(np.ones((3, 0), np.float32), np.zeros((0, 4), np.int8), -7, np.ones((3, 4), np.float32),
                   np.arange(4, dtype=np.int32), tag="degenerate-kernel"),
        dense_case(np.zeros((0, 2), np.float32), np.ones((2, 3), np.int8), -7, np.zeros((0, 3), np.float32),
                   np.zeros(3, np.int32), tag="degenerate-kernel"),
        dense_case(np.array([[1e-40, 2.0**-149]], np.float32), np.ones((2, 2), np.int8), -7,
                   np.ones((1, 2), np.float32), tag="subnormal"),
        dense_case(np.array([[3.0e38, 1.0]], np.float32), np.ones((2, 2), np.int8), -7,
                   np.ones((1, 2), np.float32), tag="huge"),
        dense_case(x, np.ones((2, 2), np.int8), 2**32 - 7, np.ones((3, 2), np.float32), tag="int32-range"),
        dense_case(np.full((1, 2), 127.0, np.float32), np.full((2, 2), 127, np.int8), 0,
                   np.ones((1, 2), np.float32), np.full(2, 2**31 - 1, np.int32), tag="bias-overflow"),
    ]
    fuzz(pool, "carrier_dense", dense_cases(), 40, examples)


def conv_layer_case(x, kernel, kernel_exponent, dy, strides, padding, bias=None, rounding="nearest",
                    tag="random"):
    kwargs = {"dy": dy, "strides": strides, "padding": padding, "rounding": rounding,
              "seed": [5, 1] if rounding == "stochastic" else None}
    if bias is not None:
        kwargs["bias"] = var(bias)
    args = (x, var(kernel), kernel_exponent)
    s = (strides, strides)

    def reference():
        problems = []
        try:
            O.conv_out_shape(x.shape, kernel.shape, s, padding, (1, 1))
        except O.Refused as refused:
            problems.append(refused.pattern)
        try:
            qx, ex = O.quantize(x)
        except O.Refused as refused:
            problems.append(refused.pattern)
        if not O.in_exponent_range(kernel_exponent):
            problems.append(r"exponent")
        if problems:
            raise O.Refused("|".join(problems))
        acc = O.conv2d(qx, kernel, s, padding, (1, 1))
        if bias is not None:
            acc = ref.add_bias(acc, bias, -ex)
        if not O.fits_int32(acc):
            raise O.Refused(r"overflow")
        q, e = O.requantize(acc, ex + kernel_exponent, rounding, seed=(5, 1))
        if q.size and not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        err, ee = O.quantize(dy)
        dx_q, dx_e = O.requantize(O.conv2d_backprop_input(x.shape, kernel, err, s, padding, (1, 1)),
                                    ee + kernel_exponent, "nearest")
        gradient_exponent_ok(dx_q, dx_e)
        return {"y": carrier(q, e), "dx": carrier(dx_q, dx_e),
                "dkernel": O.conv2d_backprop_filter(qx, kernel.shape, err, s, padding, (1, 1))}

    def compare(got, want):
        arrays_equal(got["y"], want["y"], "y")
        arrays_equal(got["d0"], want["dx"], "dx")
        arrays_equal(got["dv0"], want["dkernel"], "dkernel")

    return oracle_case("carrier_conv2d", args, kwargs, reference, compare, tag=tag,
                       allow=r"exponent|out of range" if not (x.size and kernel.size) else None)


@st.composite
def conv_layer_cases(draw):
    n, h, w, c = draw(st.integers(0, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(0, 3))
    kh, kw, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 3))
    strides, padding = draw(st.integers(1, 2)), draw(PAD)
    x = draw(carriers((n, h, w, c)))
    kernel = draw(int_arrays(np.int8, (kh, kw, c, o)))
    try:
        ys = O.conv_out_shape(x.shape, kernel.shape, (strides, strides), padding, (1, 1))
    except O.Refused:
        ys = (n, 1, 1, o)
    dy = draw(carriers(ys, raw=False))
    bias = draw(int_arrays(np.int32, (o,), st.integers(-(2**20), 2**20))) if draw(st.booleans()) else None
    return conv_layer_case(x, kernel, draw(st.integers(-9, -5)), dy, strides, padding, bias,
                           draw(st.sampled_from(MODES)), tag="random-degenerate" if 0 in kernel.shape else "random")


def test_fuzz_carrier_conv2d(pool):
    examples = [
        conv_layer_case(np.ones((1, 3, 3, 2), np.float32), np.zeros((3, 3, 2, 0), np.int8), -7,
                        np.zeros((1, 3, 3, 0), np.float32), 1, "SAME", np.zeros(0, np.int32), tag="degenerate-kernel"),
        conv_layer_case(np.ones((1, 3, 3, 0), np.float32), np.zeros((3, 3, 0, 2), np.int8), -7,
                        np.ones((1, 3, 3, 2), np.float32), 1, "SAME", np.ones(2, np.int32), tag="degenerate-kernel"),
    ]
    fuzz(pool, "carrier_conv2d", conv_layer_cases(), 30, examples)


def relu_case(x, dy, tag="random"):
    def reference():
        if not np.all(np.isfinite(x)):
            raise O.Refused(r"NaN|Inf")
        return np.maximum(x, np.float32(0)), np.where(x > 0, dy, np.float32(0))

    def compare(got, want):
        y = np.asarray(got["y"])
        tiny = (np.abs(x) < O.TINY) & (x > 0)
        # A positive subnormal may pass through or count as zero.
        ok = (y == want[0]) | (tiny & (y == 0))
        if y.shape != want[0].shape or not ok.all():
            arrays_equal(y, want[0], "y")
        if dy is not None:
            dx = np.asarray(got["d0"])
            ok = (dx == want[1]) | tiny
            if dx.shape != want[1].shape or not ok.all():
                arrays_equal(dx, want[1], "dx")

    return oracle_case("carrier_relu", (x,), {"dy": dy}, reference, compare, tag=tag)


@st.composite
def relu_cases(draw):
    shape = draw(small_shape(max_dims=4, max_side=5))
    x = draw(carriers(shape))
    return relu_case(x, draw(carriers(shape, raw=False)))


def test_fuzz_carrier_relu(pool):
    examples = [
        either_case("carrier_relu", (full((2**31 - 1, 2**31 - 1, 0), 0.0, np.float32),), {}, "huge-empty",
                    check=lambda got: empty_result((2**31 - 1, 2**31 - 1, 0))(got["y"])),
        either_case("carrier_relu", (full((1, 2**20, 2**20, 0), 0.0, np.float32),),
                    {"dy": full((1, 2**20, 2**20, 0), 0.0, np.float32)}, "huge-empty"),
        relu_case(np.array([1e-40, -1e-40, 3e38, -0.0], np.float32), np.ones(4, np.float32), tag="subnormal"),
    ]
    fuzz(pool, "carrier_relu", relu_cases(), 25, examples)


def carrier_pool_case(op, x, dy, pool_size, strides, padding, tag="random"):
    kwargs = {"dy": dy, "pool_size": pool_size, "strides": strides, "padding": padding}
    ks = [pool_size] * 2
    ss = ks if strides is None else [strides] * 2
    direct = op == "carrier_max_pool2d" and ss[0] >= ks[0] and ss[1] >= ks[1]

    def reference():
        if op == "carrier_max_pool2d" and direct:
            if not np.all(np.isfinite(x)):
                raise O.Refused(r"NaN|Inf")
            y = O.max_pool(x, ks, ss, padding)
            dx = O.max_pool_grad(x, dy, ks, ss, padding, np.float32)
            return {"y": y, "dx": dx}
        qx, ex = O.quantize(x)
        err, ee = O.quantize(dy)
        if op == "carrier_max_pool2d":
            y = carrier(O.max_pool(qx, ks, ss, padding), ex)
            acc = O.max_pool_grad(qx, err, ks, ss, padding)
            dq, de = O.requantize(acc, ee, "nearest")
            gradient_exponent_ok(dq, de)
            return {"y": y, "dx": carrier(dq, de)}
        acc = O.avg_pool_acc(qx, ks, ss, padding)
        q, e = O.requantize(acc, ex - 16, "nearest")
        if q.size and not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        gacc = O.avg_pool_grad_acc(x.shape, err, ks, ss, padding)
        dq, de = O.requantize(gacc, ee - 16, "nearest")
        gradient_exponent_ok(dq, de)
        return {"y": carrier(q, e), "dx": carrier(dq, de)}

    def compare(got, want):
        arrays_equal(got["y"], want["y"], "y")
        # Raw floats in the bit-comparing path: -0.0 < +0.0 and subnormals decide ties by bits.
        if not direct or not np.any((np.abs(x) < O.TINY) & ((x != 0) | np.signbit(x))):
            arrays_equal(got["d0"], want["dx"], "dx")

    return oracle_case(op, (x,), kwargs, reference, compare, tag=tag,
                       allow=r"exponent|out of range" if not x.size else None)


@st.composite
def carrier_pool_cases(draw, op):
    xs = (draw(st.integers(0, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(0, 3)))
    pool_size = draw(st.integers(1, 3))
    strides = draw(st.one_of(st.none(), st.integers(1, 3)))
    padding = draw(PAD)
    ss = pool_size if strides is None else strides
    if padding == "VALID" and min(xs[1], xs[2]) < pool_size:
        padding = "SAME"
    ys = (xs[0], *[O.window(xs[1 + i], pool_size, ss, 1, padding)[0] for i in (0, 1)], xs[3])
    # Carriers only for the gradient: ties between -0.0 and +0.0 of raw floats order by bits.
    x = draw(carriers(xs, raw=draw(st.integers(0, 3)) == 0))
    return carrier_pool_case(op, x, draw(carriers(ys, raw=False)), pool_size, strides, padding)


def test_fuzz_carrier_pools(pool):
    examples = [
        either_case("carrier_max_pool2d", (full((1, 2**20, 2**20, 0), 0.0, np.float32),), {"pool_size": 2},
                    "huge-empty"),
        either_case("carrier_avg_pool2d", (full((1, 2**20, 2**20, 0), 0.0, np.float32),), {"pool_size": 2},
                    "huge-empty"),
        either_case("carrier_max_pool2d", (full((0, 2**31 - 1, 2**31 - 1, 1), 0.0, np.float32),),
                    {"pool_size": 2, "strides": 1}, "huge-empty"),
    ]
    fuzz(pool, "carrier_max_pool2d", carrier_pool_cases("carrier_max_pool2d"), 30, examples)
    fuzz(pool, "carrier_avg_pool2d", carrier_pool_cases("carrier_avg_pool2d"), 25)


def carrier_add_case(a, b, dy, rounding="nearest", tag="random"):
    kwargs = {"dy": dy, "rounding": rounding, "seed": [1, 1] if rounding == "stochastic" else None}

    def reference():
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise O.Refused(r"shape") from None
        if a.shape != b.shape and dy.shape != shape:
            raise O.Refused(r"shape")
        qa, ea = O.quantize(a)
        qb, eb = O.quantize(b)
        qa, qb = np.broadcast_to(qa, shape), np.broadcast_to(qb, shape)
        acc, acc_e = O.aligned_add(qa, ea, qb, eb)
        q, e = O.requantize(acc, acc_e, rounding, seed=(1, 1))
        if q.size and not O.in_exponent_range(e):
            raise O.Refused(r"exponent|out of range")
        grads = [dy, dy]
        if a.shape != b.shape:  # a broadcast operand's error: the requantized int32 sum over its axes
            err, e_err = O.quantize(dy)
            grads = []
            for operand in (a, b):
                axes = tuple(i for i in range(len(shape)) if i < len(shape) - operand.ndim
                             or operand.shape[i - len(shape) + operand.ndim] == 1)
                total = err.astype(np.int64).sum(axis=axes).reshape(operand.shape)
                grads.append(carrier(*O.requantize(total, e_err, "nearest")))
        return {"y": carrier(q, e), "exact": O.value_of(qa, ea) + O.value_of(qb, eb), "e": e,
                "zero": not qa.any() or not qb.any(), "far": abs(ea - eb) > 23, "grads": grads}

    def compare(got, want):
        y = np.asarray(got["y"], np.float64)
        if want["zero"]:
            arrays_equal(y, want["exact"], "y (x + 0 must be x)")
        elif not want["far"]:
            arrays_equal(got["y"], want["y"], "y")
        elif np.any(np.abs(y - want["exact"]) > 2.0 ** want["e"]):
            raise Failure("y is more than one unit from the exact sum")
        arrays_equal(got["d0"], want["grads"][0], "da")
        arrays_equal(got["d1"], want["grads"][1], "db")

    return oracle_case("carrier_add", (a, b), kwargs, reference, compare, tag=tag)


@st.composite
def carrier_add_cases(draw):
    shape = draw(small_shape(max_dims=3, max_side=5))
    a = draw(carriers(shape))
    kind = draw(st.integers(0, 15))
    if kind == 0:
        b_shape = shape + (1,)  # broadcasts only where shape allows it
    elif kind < 5:
        b_shape = tuple(1 if draw(st.booleans()) else side for side in shape)[draw(st.integers(0, len(shape))):]
    else:
        b_shape = shape
    b = draw(carriers(b_shape))
    if draw(st.integers(0, 4)) == 0:
        b = np.zeros_like(b)
    try:
        out_shape = np.broadcast_shapes(shape, b_shape)
    except ValueError:
        out_shape = shape
    return carrier_add_case(a, b, draw(carriers(out_shape, raw=False)), draw(st.sampled_from(MODES)))


def test_fuzz_carrier_add(pool):
    examples = [carrier_add_case(np.zeros(2, np.float32), carrier([100, -3], -30), np.ones(2, np.float32),
                                 tag="add-zero")]
    fuzz(pool, "carrier_add", carrier_add_cases(), 30, examples)


def dropout_case(x, dy, keep_bits, seed, tag="random"):
    kwargs = {"dy": dy, "keep_bits": keep_bits, "seed": seed}
    if not (isinstance(keep_bits, int) and not isinstance(keep_bits, bool) and 1 <= keep_bits <= 16):
        return error_case("carrier_dropout", (x,), kwargs, r"keep_bits", tag="invalid-args", types=("ValueError",))
    seed_problems, _ = seed_args(seed)
    if seed is None or seed_problems:
        return error_case("carrier_dropout", (x,), kwargs, r"seed", tag="invalid-args", types=("ValueError",))

    def reference():
        qx, ex = O.quantize(x)
        if x.size and not O.in_exponent_range(ex + keep_bits):
            raise O.Refused(r"exponent|out of range")
        err, ee = O.quantize(dy)
        if dy.size and not O.in_exponent_range(ee + keep_bits):
            raise O.Refused(r"exponent|out of range")
        return carrier(qx, ex + keep_bits), carrier(err, ee + keep_bits) if dy.size else dy

    def compare(got, want):
        y, dx = np.asarray(got["y"]), np.asarray(got["d0"])
        kept_y, kept_dx = want
        if y.shape != x.shape or dx.shape != x.shape:
            raise Failure(f"shapes {y.shape}, {dx.shape}, expected {x.shape}")
        kept = (y == kept_y) & (dx == kept_dx)
        dropped = (y == 0) & (dx == 0)
        if not (kept | dropped).all():
            i = tuple(np.argwhere(~(kept | dropped))[0])
            raise Failure(f"element {i}: y = {y[i]!r}, dx = {dx[i]!r}; expected both kept "
                          f"({kept_y[i]!r}, {kept_dx[i]!r}) or both 0 (one mask for both passes)")

    return oracle_case("carrier_dropout", (x,), kwargs, reference, compare, tag=tag)


@st.composite
def dropout_cases(draw):
    shape = draw(small_shape(max_dims=3, max_side=6))
    keep_bits = draw(st.one_of(st.integers(1, 4), st.sampled_from([16, 0, 17, -1, True, 1.0])))
    seed = draw(st.one_of(st.just([3, 9]), SEED))
    return dropout_case(draw(carriers(shape)), draw(carriers(shape, raw=False)), keep_bits, seed)


def test_fuzz_carrier_dropout(pool):
    examples = [dropout_case(carrier(np.full(4, 127), 93), np.ones(4, np.float32), 16, [1, 2],
                             tag="exponent-range")]
    fuzz(pool, "carrier_dropout", dropout_cases(), 20, examples)


def carrier_ce_case(labels, logits, upstream, rounding="pseudo_stochastic", tag="random"):
    kwargs = {"dy": upstream, "rounding": rounding, "seed": [2, 2] if rounding == "stochastic" else None}
    labels_array = np.asarray(labels)

    def reference():
        if logits.ndim != 2 or labels_array.shape != (logits.shape[0],):
            raise O.Refused(r"labels|shape|rank")
        if labels_array.size and (labels_array.min() < 0 or labels_array.max() >= logits.shape[1]):
            raise O.Refused(r"labels?|out of range|valid range")
        q, e = O.quantize(logits)
        err, err_e = ref.softmax_cross_entropy_grad(q, e, labels_array, rounding, seed=(2, 2))
        scale, scale_e = O.quantize(upstream)
        acc = np.asarray(err, np.int64).reshape(logits.shape) * scale[:, None]
        dq, de = O.requantize(acc, err_e + scale_e, "nearest")
        gradient_exponent_ok(dq, de)
        return carrier(dq, de)

    def compare(got, want):
        if np.shape(got["y"]) != (logits.shape[0],):
            raise Failure(f"loss has shape {np.shape(got['y'])}, expected {(logits.shape[0],)}")
        arrays_equal(got["d0"], want, "dlogits")

    return oracle_case("carrier_cross_entropy", (labels_array, logits), kwargs, reference, compare, tag=tag)


@st.composite
def carrier_ce_cases(draw):
    batch, classes = draw(st.integers(0, 5)), draw(st.integers(1, 8))
    logits = draw(carriers((batch, classes)))
    labels = np.array(draw(st.lists(st.one_of(st.integers(0, classes - 1), st.integers(0, classes - 1),
                                              st.sampled_from([-1, classes])), min_size=batch, max_size=batch)),
                      np.int64)
    upstream = draw(carriers((batch,), raw=False))
    return carrier_ce_case(labels, logits, upstream, draw(st.sampled_from(["pseudo_stochastic", "stochastic"])))


def test_fuzz_carrier_cross_entropy(pool):
    fuzz(pool, "carrier_cross_entropy", carrier_ce_cases(), 25)


# ------------------------------------------------------------------ raw ops

BAD_LIST = st.one_of(st.lists(st.sampled_from([1, 2, 0, -1, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1]),
                              min_size=0, max_size=3))


def list_ok(values, allow_huge=True):
    return len(values) == 2 and all(v >= 1 for v in values) and (allow_huge or max(values) <= I32)


def raw(name, *args, **attrs):
    return ("raw", (name, *args), attrs)


def raw_case(call, expect, tag, allow_oom=False):
    op, args, attrs = call
    return Case(op, args, attrs, expect, tag=tag, allow_oom=allow_oom)


@st.composite
def raw_conv_cases(draw):
    strides, dilations = draw(BAD_LIST), draw(BAD_LIST)
    if draw(st.booleans()):
        strides = [1, 1]
    elif draw(st.booleans()):
        dilations = [1, 1]
    padding = draw(st.sampled_from(["SAME", "VALID", "FULL", "same", ""]))
    x = draw(int_arrays(np.int8, (1, draw(st.integers(1, 5)), draw(st.integers(1, 5)), 2)))
    w = draw(int_arrays(np.int8, (draw(st.integers(1, 3)), draw(st.integers(1, 3)), 2, 2)))
    op = draw(st.sampled_from(["int_ops_conv2d", "int_ops_conv2d_backprop_input", "int_ops_conv2d_backprop_filter"]))
    attrs = {"strides": strides, "dilations": dilations, "padding": padding}
    problems = []
    if not list_ok(strides, allow_huge=False):
        problems.append("strides")
    if not list_ok(dilations, allow_huge=False):
        problems.append("dilations")
    if padding not in ("SAME", "VALID"):
        problems.append("padding")
    if op == "int_ops_conv2d":
        args = (x, w)
    else:
        try:
            ys = O.conv_out_shape(x.shape, w.shape, strides, padding, dilations) if not problems else (1, 1, 1, 2)
        except O.Refused:
            ys = (1, 1, 1, 2)
        dy = draw(int_arrays(np.int8, ys))
        args = (np.array(x.shape, np.int32), w, dy) if op.endswith("input") else (x, np.array(w.shape, np.int32), dy)
    call = raw(op, *args, **attrs)
    huge = max(strides + dilations, default=0) > I32
    if problems and (not list_ok(strides) or not list_ok(dilations) or padding not in ("SAME", "VALID")):
        return raw_case(call, expect_error("|".join(problems)), "raw-attrs")
    if problems:  # values beyond int32 only: a clean refusal naming them, or the exact result
        problems = []
    if op != "int_ops_conv2d":
        # The result is checked by the public-op tests; here: no crash, a clean error at most.
        return raw_case(call, expect_value(lambda got: None, allow=r"smaller|window|strides|dilations|overflow"),
                        "raw-valid")

    def reference():
        return O.conv2d(x, w, strides, padding, dilations)

    try:
        want = reference()
    except O.Refused as refused:
        return raw_case(call, expect_error(refused.pattern + (r"|strides|dilations" if huge else "")), "raw-valid")
    return raw_case(call, expect_value(lambda got: arrays_equal(got, want),
                                       allow=r"strides|dilations|int32|overflow" if huge else None), "raw-valid")


@st.composite
def raw_pool_cases(draw):
    ksize, strides = draw(BAD_LIST), draw(BAD_LIST)
    if draw(st.booleans()):
        ksize = draw(st.sampled_from([[1, 1], [2, 2], [3, 1]]))
    if draw(st.booleans()):
        strides = draw(st.sampled_from([[1, 1], [2, 2], [1, 3]]))
    padding = draw(st.sampled_from(["SAME", "VALID", "VALID", "FULL"]))
    xs = (draw(st.integers(0, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 2)))
    op = draw(st.sampled_from(["int_ops_max_pool", "int_ops_max_pool_grad", "int_ops_avg_pool",
                               "int_ops_avg_pool_grad", "int_ops_max_pool_carrier"]))
    attrs = {"ksize": ksize, "strides": strides, "padding": padding}
    problems = [p for p, v in (("ksize", ksize), ("strides", strides)) if not list_ok(v)]
    if padding not in ("SAME", "VALID"):
        problems.append("padding")
    x = draw(int_arrays(np.int8, xs))
    try:
        ys = (xs[0], *[O.window(xs[1 + i], ksize[i], strides[i], 1, padding)[0] for i in (0, 1)], xs[3]) \
            if not problems else (1, 1, 1, 1)
    except O.Refused:
        ys = (xs[0], 1, 1, xs[3])
    if max(ys) > 64:
        ys = (1, 1, 1, 1)
    dy = draw(int_arrays(np.int8, ys))
    args = {"int_ops_max_pool": (x,), "int_ops_max_pool_grad": (x, dy), "int_ops_avg_pool": (x,),
            "int_ops_avg_pool_grad": (np.array(xs, np.int32), dy),
            "int_ops_max_pool_carrier": (carrier(x, -3),)}[op]
    call = raw(op, *args, **attrs)
    huge = [name for name, v in (("ksize", ksize), ("strides", strides)) if max(v, default=0) > I32]
    if problems:
        return raw_case(call, expect_error("|".join(problems + huge)), "raw-attrs")
    # Attribute values beyond int32 may be refused by name (or handled exactly).
    allow_huge = "|".join(huge + ["int32", "window"]) if huge else None
    if op == "int_ops_max_pool":
        try:
            want = O.max_pool(x, ksize, strides, padding)
        except O.Refused as refused:
            return raw_case(call, expect_error(refused.pattern + (f"|{allow_huge}" if huge else "")), "raw-valid")
        return raw_case(call, expect_value(lambda got: arrays_equal(got, want), allow=allow_huge), "raw-valid")
    if op == "int_ops_max_pool_carrier":
        overlap = strides[0] < ksize[0] or strides[1] < ksize[1] or ksize[0] * ksize[1] > 256
        try:
            want = O.max_pool(carrier(x, -3), ksize, strides, padding)
        except O.Refused as refused:
            return raw_case(call, expect_error(refused.pattern + r"|overlap|ksize|strides"), "raw-valid")
        return raw_case(call, expect_value(lambda got: arrays_equal(got[0], want),
                                           allow=r"overlap|ksize|strides|windows" if overlap or huge else None),
                        "raw-valid")
    return raw_case(call, expect_value(lambda got: None, allow=r"smaller|window|dy|shape|overflow|ksize|strides"),
                    "raw-valid")


@st.composite
def raw_misc_cases(draw):
    kind = draw(st.integers(0, 12))
    i32 = lambda *v: np.array(v, np.int32)  # noqa: E731
    if kind == 0:  # max_pool_carrier_grad with crafted tap indices
        xs = (1, 4, 4, 1)
        which = draw(hnp.arrays(np.uint8, (1, 2, 2, 1), elements=st.one_of(st.integers(0, 3),
                                                                              st.sampled_from([4, 200, 255]))))
        dy = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
        call = raw("int_ops_max_pool_carrier_grad", i32(*xs), dy, which, ksize=[2, 2], strides=[2, 2],
                   padding="VALID")
        if which.max() < 4:
            want = np.zeros(xs, np.float32)
            for a in range(2):
                for b in range(2):
                    t = int(which[0, a, b, 0])
                    want[0, 2 * a + t // 2, 2 * b + t % 2, 0] = dy[0, a, b, 0]
            return raw_case(call, expect_value(lambda got: arrays_equal(got, want)), "raw-which")
        return raw_case(call, expect_value(lambda got: None, allow=r"which|tap|range"), "raw-which")
    if kind == 1:  # mask of the wrong size
        n = draw(st.integers(0, 100))
        words = draw(st.integers(0, 5))
        call = raw("int_ops_relu_grad", np.ones(n, np.float32), np.full(words, -1, np.int32))
        if words == -(-n // 32):
            return raw_case(call, expect_value(lambda got: arrays_equal(got, np.ones(n, np.float32))), "raw-mask")
        return raw_case(call, expect_error(r"mask|words"), "raw-mask")
    if kind == 2:  # requantize seed / exponent shapes
        seed = draw(st.sampled_from([np.zeros(0, np.int64), np.zeros(3, np.int64), np.zeros((2, 2), np.int64),
                                     np.zeros(2, np.int64)]))
        exponent = draw(st.sampled_from([np.int32(0), i32(1, 2), np.zeros((1,), np.int32)]))
        rounding = draw(st.sampled_from(list(MODES) + ["up", ""]))
        call = raw(draw(st.sampled_from(["int_ops_requantize", "int_ops_requantize_to_carrier"])),
                   i32(1000, -3), exponent, seed, rounding=rounding)
        if call[1][0] == "int_ops_requantize":
            call[2]["out_type"] = draw(st.sampled_from(["int8", "int16"]))
        if seed.shape == (2,) and np.ndim(exponent) == 0 and rounding in MODES:
            return raw_case(call, expect_value(lambda got: None), "raw-valid")
        return raw_case(call, expect_error(r"seed|exponent|rounding|scalar|rank|shape"), "raw-shapes")
    if kind == 3:  # round_shift limit attribute
        limit = draw(st.sampled_from([-1, -(2**63), 2**31, 2**40, 2**63 - 1, 0, 2**31 - 1]))
        shift = draw(st.sampled_from([np.int32(3), i32(3, 4)]))
        call = raw("int_ops_round_shift", i32(100, -(2**31)), shift, np.zeros(2, np.int64), limit=limit)
        if np.ndim(shift):
            return raw_case(call, expect_error(r"shift|scalar|rank"), "raw-shapes")
        want = ref.round_shift(np.array([100, -(2**31)]), 3, "nearest")
        if 0 <= limit:
            want = np.clip(want, -limit, limit)
            return raw_case(call, expect_value(lambda got: arrays_equal(got, want), allow=r"limit"), "raw-limit")
        return raw_case(call, expect_error(r"limit"), "raw-limit")
    if kind == 4:  # aligned add of different shapes, bypassing the Python check
        a = draw(int_arrays(np.int8, draw(small_shape(max_dims=2, max_side=3))))
        b = draw(int_arrays(np.int8, draw(small_shape(max_dims=2, max_side=3))))
        call = raw("int_ops_aligned_add", a, np.int32(0), b, np.int32(draw(st.sampled_from([0, -30, 30]))))
        if a.shape == b.shape:
            return raw_case(call, expect_value(lambda got: None), "raw-valid")
        return raw_case(call, expect_error(r"shape"), "raw-shapes")
    if kind == 5:  # sgd attributes
        momentum = draw(st.sampled_from([0, 4, 16, 17, -1, 2**40]))
        decay = draw(st.sampled_from([0, 3, 1024, 1025, -1, 2**40]))
        mu = draw(st.sampled_from([5, 0, 31, -5, 2**31 - 1]))
        n = draw(st.integers(0, 4))
        buffer_n = n if draw(st.integers(0, 3)) else n + 1
        w = np.ones(n, np.int8)
        call = raw("int_ops_sgd_update", w, np.full(n, 1000, np.int32), np.zeros(buffer_n if momentum else 0, np.int8),
                   np.int32(mu), momentum=momentum, weight_decay=decay)
        problems = [p for p, bad in (("momentum", not 0 <= momentum <= 16), ("weight_decay", not 0 <= decay <= 1024),
                                     ("mu", not 1 <= mu <= 30), ("momentum_buffer|shape", momentum and buffer_n != n))
                    if bad]
        if problems:
            return raw_case(call, expect_error("|".join(problems)), "raw-attrs")
        want = ref.sgd_update(w, np.full(n, 1000), mu, momentum, np.zeros(n, np.int8) if momentum else None, decay)
        return raw_case(call, expect_value(lambda got: arrays_equal(got[0], want[0])), "raw-valid")
    if kind == 6:  # cross-entropy labels/logits shapes
        logits = draw(int_arrays(np.int8, draw(small_shape(min_dims=1, max_dims=3, max_side=3))))
        labels = draw(st.sampled_from([np.zeros((2, 1), np.int64), np.zeros(2, np.int32), np.zeros(0, np.int64)]))
        seed = draw(st.sampled_from([np.zeros(2, np.int64), np.zeros(5, np.int64)]))
        call = raw("int_ops_softmax_cross_entropy_grad", logits, np.int32(0), labels, seed)
        valid = logits.ndim == 2 and labels.shape == (logits.shape[0],) and seed.shape == (2,) and \
            (labels.size == 0 or logits.shape[1] > 0)
        if valid:
            return raw_case(call, expect_value(lambda got: None), "raw-valid")
        return raw_case(call, expect_error(r"labels|logits|seed|rank|shape|range"), "raw-shapes")
    if kind == 7:  # dequantize / quantize / bit_length with odd ranks
        exponent = draw(st.sampled_from([np.int32(0), i32(1, 2), np.zeros((1, 1), np.int32)]))
        call = raw("int_ops_dequantize", np.ones((2, 2), np.int8), exponent)
        if np.ndim(exponent) == 0:
            return raw_case(call, expect_value(lambda got: arrays_equal(got, np.ones((2, 2), np.float32))), "raw-valid")
        return raw_case(call, expect_error(r"exponent|scalar|rank"), "raw-shapes")
    if kind == 8:  # matmul of the wrong rank
        shape = draw(small_shape(min_dims=0, max_dims=3, max_side=3))
        call = raw("int_ops_mat_mul", draw(int_arrays(np.int8, shape)), np.ones((3, 2), np.int8))
        if len(shape) == 2 and shape[1] == 3:
            return raw_case(call, expect_value(lambda got: None), "raw-valid")
        return raw_case(call, expect_error(r"rank|shape|inner|Dimensions|match"), "raw-shapes")
    if kind == 9:  # dense with odd variables
        kernel = draw(st.sampled_from([np.ones((2, 3), np.float32), np.ones((2, 3), np.int16), np.ones(3, np.int8),
                                       np.ones((2, 3, 1), np.int8), np.ones((2, 3), np.int8)]))
        bias = draw(st.sampled_from([[], [np.ones(3, np.int8)], [np.ones(4, np.int32)], [np.ones(3, np.int32)],
                                     [np.ones((1, 3), np.int32)]]))
        x = draw(st.sampled_from([np.ones((4, 2), np.float32), np.ones(2, np.float32), np.ones((1, 1, 2), np.float32)]))
        exponent = draw(st.sampled_from([np.int32(-7), np.int32(-121), i32(1, 2)]))
        seed = draw(st.sampled_from([np.zeros(2, np.int64), np.zeros(1, np.int64)]))
        call = raw("int_ops_dense", x, handle(kernel), [handle(b) for b in bias], exponent, seed, [])
        valid = kernel.dtype == np.int8 and kernel.shape == (2, 3) and x.shape == (4, 2) and \
            all(b.dtype == np.int32 and b.shape == (3,) for b in bias) and np.ndim(exponent) == 0 and \
            exponent == -7 and seed.shape == (2,)
        if valid:
            return raw_case(call, expect_value(lambda got: None), "raw-valid")
        return raw_case(call, expect_error(r"kernel|bias|x|exponent|seed|rank|shape|int8|int32|dtype|features"),
                        "raw-variables")
    if kind == 10:  # conv2d layer with odd attributes and variables
        strides = draw(st.one_of(st.just([1, 1]), BAD_LIST))
        kernel = draw(st.sampled_from([np.ones((2, 2, 1, 2), np.int8), np.ones((2, 2, 1, 2), np.float32),
                                       np.ones((2, 2, 2), np.int8), np.ones((2, 2, 3, 2), np.int8)]))
        call = raw("int_ops_conv2d_layer", np.ones((1, 3, 3, 1), np.float32), handle(kernel), [], np.int32(-7),
                   np.zeros(2, np.int64), [], padding="SAME", strides=strides)
        valid = list_ok(strides) and kernel.dtype == np.int8 and kernel.shape == (2, 2, 1, 2)
        if valid:
            return raw_case(call, expect_value(lambda got: None,
                                               allow=r"strides|int32" if max(strides) > I32 else None),
                            "raw-valid")
        return raw_case(call, expect_error(r"strides|filter|kernel|channels|rank|shape|int8|dtype"), "raw-variables")
    if kind == 12:  # quantize of any rank, both output types
        x = draw(hnp.arrays(np.float32, draw(small_shape(max_dims=4, max_side=3)), elements=FLOAT))
        out_type = draw(st.sampled_from(["int8", "int16"]))
        call = raw("int_ops_quantize", x, out_type=out_type)
        try:
            want = O.quantize(x, 8 if out_type == "int8" else 16)
        except O.Refused as refused:
            return raw_case(call, expect_error(refused.pattern), "raw-valid")
        return raw_case(call, expect_value(check_pair(*want)), "raw-valid")
    # avg_pool_grad / max_pool_carrier_grad with odd input_sizes
    sizes = draw(st.sampled_from([[1, 2, 2], [1, -2, 2, 1], [I32] * 4, [1, 2, 2, 1], [0, I32, I32, 1],
                                  [1, 2**30, 2**30, 1]]))
    dy = np.ones((1, 1, 1, 1), np.int8)
    op = draw(st.sampled_from(["int_ops_avg_pool_grad", "int_ops_max_pool_carrier_grad"]))
    args = (np.array(sizes, np.int32), dy) if op == "int_ops_avg_pool_grad" else \
        (np.array(sizes, np.int32), dy.astype(np.float32), np.zeros((1, 1, 1, 1), np.uint8))
    call = raw(op, *args, ksize=[2, 2], strides=[2, 2], padding="VALID")
    if sizes == [1, 2, 2, 1]:
        return raw_case(call, expect_value(lambda got: None), "raw-valid")
    return raw_case(call, expect_error(HUGE + r"|input_sizes|dy|shape|negative|vector"), "raw-sizes", allow_oom=True)


def test_fuzz_raw_ops(pool):
    """The raw ops of _loader.load(), called without the Python checks, as TF users can."""
    x4, w4 = np.ones((1, 5, 5, 2), np.int8), np.ones((3, 3, 2, 4), np.int8)
    examples = [
        raw_case(raw("int_ops_conv2d", x4, w4, strides=[0, 1], padding="SAME"), expect_error(r"strides"), "raw-attrs"),
        raw_case(raw("int_ops_conv2d", x4, w4, strides=[1], padding="SAME"), expect_error(r"strides"), "raw-attrs"),
        raw_case(raw("int_ops_conv2d", x4, w4, strides=[1, 1], dilations=[2**62, 2**62], padding="SAME"),
                 expect_value(lambda got: arrays_equal(got, O.conv2d(x4, w4, (1, 1), "SAME", (2**62, 2**62))),
                              allow=r"dilations|overflow|int32"), "raw-attrs"),
        raw_case(raw("int_ops_max_pool", x4, ksize=[2**62, 2**62], strides=[1, 1], padding="SAME"),
                 expect_value(lambda got: arrays_equal(got, O.max_pool(x4, (2**62, 2**62), (1, 1), "SAME")),
                              allow=r"ksize|overflow|int32"), "raw-attrs"),
        raw_case(raw("int_ops_avg_pool", x4, ksize=[2**62, 2**62], strides=[1, 1], padding="SAME"),
                 expect_value(lambda got: arrays_equal(got, O.avg_pool_acc(x4, (2**62, 2**62), (1, 1), "SAME")),
                              allow=r"ksize|overflow|int32"), "raw-attrs"),
        raw_case(raw("int_ops_max_pool_carrier_grad", np.array([1, 4, 4, 1], np.int32),
                     np.ones((1, 2, 2, 1), np.float32),
                     np.full((1, 2, 2, 1), 255, np.uint8), ksize=[2, 2], strides=[2, 2], padding="VALID"),
                 expect_value(lambda got: None, allow=r"which|tap|range"), "raw-which"),
        raw_case(raw("int_ops_sgd_update", np.ones(3, np.int8), np.ones(3, np.int32), np.zeros(0, np.int8),
                     np.int32(5), momentum=2**40), expect_error(r"momentum"), "raw-attrs"),
        raw_case(raw("int_ops_round_shift", np.ones(2, np.int32), np.int32(1), np.zeros(2, np.int64), limit=-1),
                 expect_error(r"limit"), "raw-limit"),
    ]
    fuzz(pool, "raw_conv", raw_conv_cases(), 40, examples)
    fuzz(pool, "raw_pool", raw_pool_cases(), 40)
    fuzz(pool, "raw_misc", raw_misc_cases(), 70)


# --------------------------------------------------------- graph mode (traced)

@st.composite
def traced_cases(draw):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
        k2 = k if draw(st.integers(0, 3)) else k + 1
        x, w = draw(int_arrays(np.int8, (m, k))), draw(int_arrays(np.int8, (k2, n)))
        case = matmul_case(x, w)
        return Case("traced", ("int_matmul", x, w), {}, case.expect, tag="traced")
    if kind == 1:
        q = draw(int_arrays(np.int8, draw(small_shape(max_side=3))))
        e = draw(st.one_of(st.integers(-125, 105), st.sampled_from([-(2**31), 2**31 - 1])))
        expect = expect_value(lambda got: arrays_equal(got, ref.dequantize(q, e))) if O.in_exponent_range(e) else \
            expect_error(r"exponent.*out of range")
        return Case("traced", ("dequantize", q, np.int32(e)), {}, expect, tag="traced")
    x = draw(int_arrays(np.int8, (1, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2)))))
    w = draw(int_arrays(np.int8, (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), 2)))
    case = conv_case("int_conv2d", x, w, None, {"strides": 1, "padding": "SAME", "dilations": 1})
    return Case("traced", ("int_conv2d", x, w), {"padding": "SAME"}, case.expect, tag="traced")


def in_graph(case):
    """The same case with the op inside a tf.function, arguments captured as constants."""
    return Case("in_graph", (case.op, *case.args), case.kwargs, case.expect, tag="graph-" + case.tag,
                allow_oom=case.allow_oom, timeout=case.timeout)


def test_fuzz_traced(pool):
    """The same checks inside tf.function: unknown shapes (kernel-side validation), and constant
    arguments (the shape functions see the huge sizes)."""
    w, dy = np.ones((1, 1, 1, 1), np.int8), np.ones((1, 1, 1, 1), np.int8)
    same = {"strides": 1, "padding": "SAME", "dilations": 1}
    sizes = HUGE + r"|sizes|out_backprop|dy"
    examples = [in_graph(c) for c in [
        error_case("int_conv2d_backprop_input", ([I32] * 4, w, dy), same, sizes, tag="huge-sizes", allow_oom=True),
        error_case("int_conv2d_backprop_filter", (w, [I32] * 4, dy), same, sizes, tag="huge-sizes", allow_oom=True),
        error_case("int_avg_pool2d_grad", ([I32] * 4, dy, 0), {"pool_size": 1}, sizes, tag="huge-sizes",
                   allow_oom=True),
        huge_matmul_case(2**40, 2**40, 0),
        either_case("int_max_pool2d", (full((1, 2**20, 2**20, 0), 0, np.int8),), {"pool_size": 1}, "huge-empty",
                    check=empty_result((1, 2**20, 2**20, 0), np.int8)),
        wide_ce_case(1, 2**23, 0, -20, 3),
    ]]
    fuzz(pool, "traced", traced_cases(), 25, examples)


# ------------------------------------------------------------------- Keras

def keras_layer_case(cls, config, x, training=False, tag="random"):
    config = dict(config)
    args = (cls, config, x)
    kwargs = {"training": training}
    inputs = x if not isinstance(x, list) else None

    def reference():
        if cls == "IntFlatten":
            return {"y": x.reshape(x.shape[0], int(np.prod(x.shape[1:])))}
        if cls == "IntDropout" and not training:
            return {"y": x}
        if cls == "IntReLU":
            if not np.all(np.isfinite(x)):
                raise O.Refused(r"NaN|Inf")
            return {"y": np.maximum(x, np.float32(0)), "tiny_ok": True}
        if cls == "IntAdd":
            a, b = x
            try:
                shape = np.broadcast_shapes(a.shape, b.shape)  # IntAdd broadcasts as Keras' Add
            except ValueError:
                raise O.Refused(r"shape") from None
            qa, ea = O.quantize(a)
            qb, eb = O.quantize(b)
            qa, qb = np.broadcast_to(qa, shape), np.broadcast_to(qb, shape)
            acc, acc_e = O.aligned_add(qa, ea, qb, eb)
            q, e = O.requantize(acc, acc_e, config.get("rounding", "nearest"), seed=(config.get("seed", 0), 1))
            if q.size and not O.in_exponent_range(e):
                raise O.Refused(r"exponent|out of range")
            return {"y": carrier(q, e), "exact": O.value_of(qa, ea) + O.value_of(qb, eb),
                    "far": abs(ea - eb) > 23 and qa.any() and qb.any(), "e": e}
        if cls in ("IntMaxPool2D", "IntAveragePooling2D", "IntGlobalAveragePooling2D"):
            if cls == "IntGlobalAveragePooling2D":
                ks = ss = (x.shape[1], x.shape[2])
                padding = "VALID"
            else:
                ks = (config.get("pool_size", 2),) * 2
                ss = (config.get("strides") or ks[0],) * 2
                padding = config.get("padding", "valid").upper()
            if cls == "IntMaxPool2D" and ss[0] >= ks[0] and ss[1] >= ks[1]:
                if not np.all(np.isfinite(x)):
                    raise O.Refused(r"NaN|Inf")
                return {"y": O.max_pool(x, ks, ss, padding)}
            qx, ex = O.quantize(x)
            if cls == "IntMaxPool2D":
                return {"y": carrier(O.max_pool(qx, ks, ss, padding), ex)}
            acc = O.avg_pool_acc(qx, ks, ss, padding)
            q, e = O.requantize(acc, ex - 16, config.get("rounding", "nearest"), seed=(config.get("seed", 0), 1))
            if q.size and not O.in_exponent_range(e):
                raise O.Refused(r"exponent|out of range")
            y = carrier(q, e)
            return {"y": y.reshape(y.shape[0], y.shape[3]) if cls == "IntGlobalAveragePooling2D" else y}
        if cls == "IntDropout":
            qx, ex = O.quantize(x)
            bits = int(round(-np.log2(1 - config["rate"])))
            return {"kept": carrier(qx, ex + bits)}
        # IntDense / IntConv2D: finished from the layer's kernel in compare.
        qx, ex = O.quantize(x)
        if cls == "IntConv2D":
            k = config.get("kernel_size", 1)
            s_, d = config.get("strides", 1), config.get("dilation_rate", 1)
            O.conv_out_shape(x.shape, (k, k, x.shape[3], 1), (s_, s_), config.get("padding", "valid").upper(), (d, d))
        return {"qx": qx, "ex": ex}

    def compare(got, want):
        y = np.asarray(got["y"])
        declared = got.get("declared_shape")
        if declared is not None and (not isinstance(declared, list) or
                                     any(d not in (-1, a) for d, a in zip(declared, y.shape)) or
                                     len(declared) != y.ndim):
            raise Failure(f"compute_output_shape says {declared}, the output has shape {y.shape}")
        if cls in ("IntDense", "IntConv2D"):
            kernel, ek = got["kernel"], int(got["kernel_exponent"])
            H.dtype_is(kernel, np.int8, "kernel")
            qx, ex = want["qx"], want["ex"]
            rounding = config.get("rounding", "nearest")
            if cls == "IntDense":
                acc = qx.reshape(int(np.prod(x.shape[:-1])), kernel.shape[0]) @ kernel.astype(np.int64)
            else:
                s = config.get("strides", 1)
                d = config.get("dilation_rate", 1)
                acc = O.conv2d(qx, kernel, (s, s), config.get("padding", "valid").upper(), (d, d))
            if "bias" in got:
                acc = ref.add_bias(acc, got["bias"], -ex)
            q, e = O.requantize(acc, ex + ek, rounding, seed=(config.get("seed", 0), 1))
            want_y = carrier(q, e).reshape(y.shape) if q.size == y.size else carrier(q, e)
            arrays_equal(y, want_y, "y")
            if q.size and int(got["output_exponent"]) != e:
                raise Failure(f"output_exponent {int(got['output_exponent'])}, expected {e}")
            return
        if cls == "IntDropout" and training:
            kept = want["kept"]
            if y.shape != x.shape or not ((y == kept) | (y == 0)).all():
                raise Failure("dropout output is neither the kept input nor 0")
            return
        if cls == "IntAdd" and want["far"]:
            if np.any(np.abs(y.astype(np.float64) - want["exact"]) > 2.0 ** want["e"]):
                raise Failure("y is more than one unit from the exact sum")
            return
        if cls == "IntAdd" and not want["far"] and (not H.materialize(x[0]).any() or not H.materialize(x[1]).any()):
            arrays_equal(y.astype(np.float64), want["exact"], "y (x + 0 must be x)")
            return
        if want.get("tiny_ok"):
            tiny = (np.abs(x) < O.TINY) & (x > 0)
            if y.shape == want["y"].shape and ((y == want["y"]) | (tiny & (y == 0))).all():
                return
        arrays_equal(y, want["y"], "y")

    case = oracle_case("keras_layer", args, kwargs, reference, compare, tag=tag, timeout=H.SLOW_TIMEOUT / 3)
    return case


def keras_config_case(cls, config, x=None, types=("ValueError", "TypeError")):
    """A constructor argument that must be refused (at construction, or at the call on x) naming it."""
    kwargs = {"build_only": True} if x is None else {}
    return Case("keras_layer", (cls, config, x), kwargs,
                expect_error("|".join(config) + r"|must be", types=types), tag="config")


@st.composite
def keras_layer_cases(draw):
    cls = draw(st.sampled_from(["IntDense", "IntConv2D", "IntReLU", "IntMaxPool2D", "IntAveragePooling2D",
                                "IntGlobalAveragePooling2D", "IntFlatten", "IntDropout", "IntAdd"]))
    rounding = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 1000))
    if draw(st.integers(0, 7)) == 0:
        bad = {"IntDense": {"units": draw(st.sampled_from([0, -1, 1.5, "3"]))},
               "IntConv2D": {"filters": 2, "kernel_size": draw(st.sampled_from([0, -1, (1, 2, 3), (2, 0)]))},
               "IntMaxPool2D": {"pool_size": draw(st.sampled_from([0, -2, (1, 0)]))},
               "IntAveragePooling2D": {"pool_size": 2, "padding": draw(st.sampled_from(["full", "", 3]))},
               "IntDropout": {"rate": draw(st.sampled_from([0.0, 1.0, 0.3, -0.5, 0.6]))}}
        if cls in bad:
            return keras_config_case(cls, bad[cls])
        cls = "IntDense"
        return keras_config_case(cls, {"units": 2, "rounding": "banker"})
    batch = draw(st.integers(0, 3))
    if cls == "IntDense":
        x = draw(carriers((batch, draw(st.integers(1, 5)))))
        return keras_layer_case(cls, {"units": draw(st.integers(1, 4)), "use_bias": draw(st.booleans()),
                                      "rounding": rounding, "seed": seed}, x, draw(st.booleans()))
    if cls == "IntAdd":
        shape = (batch, draw(st.integers(1, 4)))
        a = draw(carriers(shape))
        b = np.zeros(shape, np.float32) if draw(st.integers(0, 3)) == 0 else draw(carriers(shape))
        return keras_layer_case(cls, {"rounding": rounding, "seed": seed}, [a, b])
    if cls == "IntFlatten" or cls == "IntReLU":
        x = draw(carriers(draw(small_shape(min_dims=2, max_dims=4, max_side=4))))
        return keras_layer_case(cls, {}, x)
    if cls == "IntDropout":
        x = draw(carriers((batch, draw(st.integers(1, 5)))))
        return keras_layer_case(cls, {"rate": draw(st.sampled_from([0.5, 0.75, 0.875])), "seed": seed}, x,
                                draw(st.booleans()))
    xs = (batch, draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 3)))
    x = draw(carriers(xs))
    if cls == "IntConv2D":
        k = draw(st.integers(1, 3))
        padding = draw(st.sampled_from(["same", "valid"]))
        if padding == "valid" and min(xs[1], xs[2]) < k:
            padding = "same"
        return keras_layer_case(cls, {"filters": draw(st.integers(1, 3)), "kernel_size": k,
                                      "strides": draw(st.integers(1, 2)), "padding": padding,
                                      "use_bias": draw(st.booleans()), "rounding": rounding, "seed": seed},
                                x, draw(st.booleans()))
    if cls == "IntGlobalAveragePooling2D":
        return keras_layer_case(cls, {"rounding": rounding, "seed": seed}, x)
    p = draw(st.integers(1, 3))
    padding = "same" if min(xs[1], xs[2]) < p else draw(st.sampled_from(["same", "valid"]))
    config = {"pool_size": p, "strides": draw(st.one_of(st.none(), st.integers(1, 3))), "padding": padding}
    if cls == "IntAveragePooling2D":
        config.update(rounding=rounding, seed=seed)
    return keras_layer_case(cls, config, x)


def test_fuzz_keras_layers(pool):
    examples = [
        keras_layer_case("IntDense", {"units": 2, "seed": 1}, np.array([[np.nan, 1.0]], np.float32), tag="nan"),
        keras_layer_case("IntDense", {"units": 2, "seed": 1}, np.array([[1e-40, -1e-42]], np.float32), tag="subnormal"),
        keras_layer_case("IntConv2D", {"filters": 2, "kernel_size": 3, "padding": "same", "seed": 1},
                         np.full((1, 3, 3, 1), 3.0e38, np.float32), tag="huge"),
        keras_layer_case("IntReLU", {}, np.array([[np.inf, 1.0]], np.float32), tag="nan"),
        keras_layer_case("IntMaxPool2D", {"pool_size": 2}, np.full((1, 2, 2, 1), np.nan, np.float32), tag="nan"),
        keras_layer_case("IntAdd", {"seed": 1}, [np.zeros((1, 2), np.float32), carrier([100, -3], -30)],
                         tag="add-zero"),
        keras_config_case("IntConv2D", {"filters": 2, "kernel_size": 3, "strides": 2**32 + 1},
                          np.ones((1, 3, 3, 1), np.float32), types=None),
    ]
    fuzz(pool, "keras_layers", keras_layer_cases(), 40, examples)


def keras_loss_case(sparse, y_true, y_pred, grad=False, tag="random"):
    config = {"sparse": sparse}
    classes = y_pred.shape[-1]

    def reference():
        if sparse:
            labels = np.asarray(y_true).reshape(-1)
            if labels.shape[0] != y_pred.shape[0]:
                raise O.Refused(r"labels|shape")
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise O.Refused(r"label|range")
            labels = labels.astype(np.int64)
        else:
            if y_true.shape != y_pred.shape:
                raise O.Refused(r"one-hot|width|classes|shape|match|label")
            labels = np.argmax(y_true, axis=-1)
        if not grad:
            return None
        q, e = O.quantize(y_pred)
        err, err_e = ref.softmax_cross_entropy_grad(q, e, labels)
        batch = y_pred.shape[0]
        scale, scale_e = O.quantize(np.full(batch, np.float32(1.0 / batch)))
        acc = np.asarray(err, np.int64).reshape(y_pred.shape) * scale[:, None]
        dq, de = O.requantize(acc, err_e + scale_e, "nearest")
        return carrier(dq, de)

    def compare(got, want):
        if np.ndim(got["loss"]) != 0:
            raise Failure(f"loss is not a scalar: {got['loss']!r}")
        if y_pred.shape[0] and not np.isfinite(got["loss"]):
            raise Failure(f"loss is not finite: {got['loss']!r}")
        if grad:
            arrays_equal(got["dlogits"], want, "dlogits")

    return oracle_case("keras_loss", (config, y_true, y_pred), {"grad": grad}, reference, compare, tag=tag)


@st.composite
def keras_loss_cases(draw):
    batch = draw(st.sampled_from([1, 2, 4, 8, 3]))
    classes = draw(st.integers(1, 6))
    y_pred = draw(carriers((batch, classes), raw=False))
    sparse = draw(st.booleans())
    if sparse:
        labels = draw(st.lists(st.one_of(st.integers(0, classes - 1), st.sampled_from([classes, -1])),
                               min_size=batch, max_size=batch))
        y_true = np.array(labels, np.float32).reshape(batch, 1) if draw(st.booleans()) else np.array(labels, np.float32)
    else:
        width = classes if draw(st.integers(0, 2)) else draw(st.integers(1, 7))
        labels = draw(st.lists(st.integers(0, width - 1), min_size=batch, max_size=batch))
        y_true = np.eye(width, dtype=np.float32)[labels]
    return keras_loss_case(sparse, y_true, y_pred, grad=batch in (1, 2, 4, 8))


def test_fuzz_keras_loss(pool):
    y_pred = carrier(np.array([[10, -5, 3], [0, 1, 2]]), -4)
    examples = [
        # One-hot labels of the wrong width (defect 8).
        keras_loss_case(False, np.eye(4, dtype=np.float32)[[0, 3]], y_pred, tag="one-hot-width"),
        keras_loss_case(False, np.eye(2, dtype=np.float32)[[0, 1]], y_pred, tag="one-hot-width"),
        keras_loss_case(False, np.eye(3, dtype=np.float32)[[0, 2]], y_pred, grad=True, tag="one-hot"),
        keras_loss_case(True, np.array([3.0, 0.0], np.float32), y_pred, tag="labels-range"),
    ]
    fuzz(pool, "keras_loss", keras_loss_cases(), 25, examples)


def sgd_keras_case(config, variables, gradients, steps=1, tag="random"):
    def reference():
        mu, momentum = config.get("mu", 5), config.get("momentum", 0)
        decay, bits = config.get("weight_decay", 0), config.get("weight_bits", 8)
        if not (isinstance(mu, int) and not isinstance(mu, bool) and 1 <= mu <= 30):
            raise O.Refused(r"mu")
        if not (isinstance(momentum, int) and 0 <= momentum <= 16):
            raise O.Refused(r"momentum")
        if not (isinstance(decay, int) and 0 <= decay <= 1024):
            raise O.Refused(r"weight_decay")
        if bits not in (8, 16):
            raise O.Refused(r"weight_bits")
        history = []
        state = []
        for v in variables:
            if v.dtype == np.int8 and bits == 16:
                state.append({"w": v.astype(np.int64) * 256, "bits": 16, "m": np.zeros(v.shape, np.int64)})
            else:
                b = {np.dtype(np.int8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32}.get(v.dtype)
                state.append({"w": v.astype(np.int64 if b else np.float32), "bits": b,
                              "m": np.zeros(v.shape, np.int64)})
        for _ in range(steps):
            values = []
            for v, g, s in zip(variables, gradients, state):
                if s["bits"] is None:
                    if g.dtype != np.float32:
                        raise O.Refused(r"gradient")
                    s["w"] = (s["w"] - np.float32(config.get("learning_rate", 0.01)) * g).astype(np.float32)
                    values.append(s["w"])
                    continue
                if g.dtype != np.int32:
                    raise O.Refused(r"int32 gradient|gradient")
                new_w, new_m = ref.sgd_update(s["w"], g, mu, momentum, s["m"] if momentum else None, decay, s["bits"])
                s["w"] = new_w
                if momentum:
                    s["m"] = new_m
                if v.dtype == np.int8 and bits == 16:
                    values.append(np.clip(O.round_shift(new_w, 8, "pseudo_stochastic"), -127, 127))
                else:
                    values.append(new_w)
            history.append(values)
        return history

    def compare(got, want):
        for step, (got_values, want_values) in enumerate(zip(got["history"], want)):
            for i, (g, w) in enumerate(zip(got_values, want_values)):
                if np.asarray(g).dtype.kind == "f":
                    np.testing.assert_allclose(g, w, rtol=1e-6)
                else:
                    arrays_equal(g, w, f"variable {i} after step {step + 1}")

    return oracle_case("keras_sgd", (config, variables, gradients), {"steps": steps}, reference, compare, tag=tag,
                       timeout=H.SLOW_TIMEOUT / 3)


@st.composite
def keras_sgd_cases(draw):
    config = {"mu": draw(st.one_of(st.integers(1, 30), st.sampled_from([0, 31, 2**32 + 5, 1.5]))),
              "momentum": draw(st.one_of(st.just(0), st.integers(0, 16), st.sampled_from([17, -1]))),
              "weight_decay": draw(st.one_of(st.just(0), st.integers(0, 1024), st.sampled_from([1025]))),
              "weight_bits": draw(st.sampled_from([8, 8, 16, 4]))}
    n = draw(st.integers(1, 6))
    variables = [draw(int_arrays(np.int8, (n,), st.integers(-127, 127))),
                 draw(int_arrays(np.int32, (n,), st.integers(-(2**20), 2**20)))]
    gradients = [draw(int_arrays(np.int32, (n,))), draw(int_arrays(np.int32, (n,)))]
    if draw(st.integers(0, 4)) == 0:
        variables.append(draw(hnp.arrays(np.float32, (n,), elements=st.floats(-2, 2, width=32))))
        gradients.append(draw(hnp.arrays(np.float32, (n,), elements=st.floats(-2, 2, width=32))))
    return sgd_keras_case(config, variables, gradients, steps=draw(st.integers(1, 2)))


def test_fuzz_keras_optimizer(pool):
    w = np.array([127, -127, 0], np.int8)
    g = np.array([-(2**31), 2**31 - 1, 3], np.int32)
    examples = [
        sgd_keras_case({"mu": 30, "momentum": 16, "weight_decay": 1024, "weight_bits": 16}, [w], [g], 2,
                       tag="extreme"),
        sgd_keras_case({"mu": 2**32 + 5}, [w], [g], tag="int32-range"),
        sgd_keras_case({"mu": 5}, [w], [g.astype(np.float32)], tag="float-gradient"),
    ]
    fuzz(pool, "keras_optimizer", keras_sgd_cases(), 20, examples)


@st.composite
def callback_cases(draw):
    if draw(st.booleans()):
        every = draw(st.sampled_from([None, 1, 7, 0, -1, 1.5, 2**40, "3"]))
        ok = every is None or (isinstance(every, int) and every >= 1)
        expect = expect_value(lambda got: None) if ok else expect_error(r"every_n_batches", types=("ValueError",))
        return Case("keras_callback", ("ExponentTracker", {"every_n_batches": every}), {}, expect, tag="tracker")
    value = draw(st.sampled_from([1, 5, 30, 0, 31, -1, 2**32 + 5, np.int64(4), 4.0, "5", None]))
    ok = isinstance(value, (int, np.integer)) and 1 <= value <= 30
    expect = expect_value(lambda got: arrays_equal(got["mu"], np.int32(value))) if ok else \
        expect_error(r"schedule|mu", types=("ValueError",))
    return Case("keras_callback", ("MuScheduler", {}), {"schedule_value": value}, expect, tag="mu-scheduler",
                timeout=H.SLOW_TIMEOUT / 3)


def test_fuzz_keras_callbacks(pool):
    fuzz(pool, "keras_callbacks", callback_cases(), 15)


def test_keras_fit_and_crafted_checkpoints(pool):
    """A small training run with every callback, then .keras files with a rewritten int8 kernel."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 6, 6, 1)).astype(np.float32)
    x[0, 0, 0, 0] = 1e-40  # a subnormal in the batch counts as zero
    y = rng.integers(0, 3, 8).astype(np.float32)

    def fit_ok(got):
        if not np.all(np.isfinite(got["loss"])):
            raise Failure(f"loss not finite: {got['loss']}")
        if got["kernel_dtypes"] != ["int8", "int8"]:
            raise Failure(f"kernel dtypes {got['kernel_dtypes']}")
        if not got["tracked"] or not got["reloaded_equal"]:
            raise Failure("ExponentTracker recorded nothing or the reloaded weights differ")
        if got["predict"].shape != (8, 3) or not np.all(np.isfinite(got["predict"])):
            raise Failure("predict is wrong")

    def loaded(value):
        return lambda got: arrays_equal(got["kernel"], np.full((3, 2), value, np.int8))

    examples = [
        Case("keras_fit", (x, y), {"epochs": 2, "optimizer": {"mu": 5, "momentum": 8, "weight_bits": 16}},
             expect_value(fit_ok), tag="fit", timeout=H.SLOW_TIMEOUT),
        # A kernel rewritten with another dtype must not load as cast values (defect 7).
        checkpoint_case(np.int8, 7),
        checkpoint_case(np.int16, 300),
        checkpoint_case(np.float32, 1.5),
        checkpoint_case(np.float64, 1e9),
        checkpoint_case(np.int8, 7, shape=(3, 5)),
    ]
    fuzz(pool, "keras_fit_and_checkpoints", checkpoint_cases(), 6, examples)


CHECKPOINT_ERROR = r"dtype|int8|int16|int32|float|kernel|weight|shape|mismatch|cast|range|integer"


def checkpoint_case(dtype, value, shape=None):
    """An IntDense .keras file whose (3, 2) int8 kernel is rewritten as `value` of `dtype`.

    Integer values an int8 weight can hold may load exactly (or be refused);
    anything else (out of range, fractional, NaN, another shape) must be refused.
    """
    kwargs = {} if shape is None else {"shape": shape}
    exact = shape is None and np.isfinite(value) and value == int(value) and -128 <= value <= 127
    if exact:
        expect = expect_value(lambda got: arrays_equal(got["kernel"], np.full((3, 2), int(value), np.int8)),
                              allow=CHECKPOINT_ERROR)
    else:
        expect = expect_error(CHECKPOINT_ERROR)
    return Case("crafted_checkpoint", (np.dtype(dtype).name, value), kwargs, expect, tag="checkpoint",
                timeout=H.SLOW_TIMEOUT)


@st.composite
def checkpoint_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16, np.float32,
                                  np.float64]))
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    values = [0, 7, -127, -128, 127, 128, 300, -129, 2**31 - 1, 44.0, 1.5, float("nan"), float("inf"), -1e9]
    value = draw(st.sampled_from([v for v in values if (info is None and np.isfinite(np.dtype(dtype).type(v))
                                                        or np.isnan(v)) or
                                  (info is not None and float(v).is_integer() and info.min <= v <= info.max)]))
    return checkpoint_case(dtype, value)


# ------------------------------------------------------------ harness

def test_harness_reports_crashes_and_hangs(pool):
    """A case that aborts or hangs is a failure that names the case, and the next case runs."""
    runner = H.Runner(pool, "harness selftest (2 failures expected)")
    runner.check(Case("selftest", ("abort",), {}, expect_value(lambda got: None), tag="abort"), explicit=True)
    runner.check(Case("selftest", ("hang",), {}, expect_value(lambda got: None), tag="hang", timeout=3),
                 explicit=True)
    runner.check(Case("selftest", ("fine",), {}, expect_value(lambda got: None), tag="fine"), explicit=True)
    assert len(runner.failures) == 2, runner.failures
    assert "selftest('abort')" in runner.failures[0] and "SIGABRT" in runner.failures[0], runner.failures[0]
    assert "selftest('hang')" in runner.failures[1] and "HUNG" in runner.failures[1], runner.failures[1]


# ------------------------------------------------------- oracle self-check

@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), n=st.integers(0, 2), size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       c=st.integers(1, 3), k=st.tuples(st.integers(1, 3), st.integers(1, 3)), o=st.integers(1, 3),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=PAD)
def test_fuzz_oracles_agree_with_reference(data, n, size, c, k, o, s, d, padding):
    """fuzz_oracles.py (in-bounds taps) against reference.py (padding), where both apply; no worker."""
    x = data.draw(int_arrays(np.int8, (n, *size, c)))
    w = data.draw(int_arrays(np.int8, (*k, c, o)))
    eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    if padding == "VALID" and any(a < b for a, b in zip(size, eff)):
        return
    y = O.conv2d(x, w, s, padding, d)
    np.testing.assert_array_equal(y, ref.conv2d(x, w, s, padding, d))
    dy = data.draw(int_arrays(np.int8, y.shape))
    np.testing.assert_array_equal(O.conv2d_backprop_input(x.shape, w, dy, s, padding, d),
                                  ref.conv2d_backprop_input(x.shape, w, dy, s, padding, d))
    np.testing.assert_array_equal(O.conv2d_backprop_filter(x, w.shape, dy, s, padding, d),
                                  ref.conv2d_backprop_filter(x, w.shape, dy, s, padding, d))
    if padding == "VALID" and any(a < b for a, b in zip(size, k)):
        return
    np.testing.assert_array_equal(O.max_pool(x, k, s, padding), ref.max_pool(x, k, s, padding))
    yp = O.max_pool(x, k, s, padding)
    dyp = data.draw(int_arrays(np.int8, yp.shape))
    np.testing.assert_array_equal(O.max_pool_grad(x, dyp, k, s, padding), ref.max_pool_grad(x, dyp, k, s, padding))
    np.testing.assert_array_equal(O.avg_pool_acc(x, k, s, padding), ref.avg_pool_acc(x, k, s, padding))
    np.testing.assert_array_equal(O.avg_pool_grad_acc(x.shape, dyp, k, s, padding),
                                  ref.avg_pool_grad_acc(x.shape, dyp, k, s, padding))
    logits = data.draw(int_arrays(np.int8, (n + 1, c + 2)))
    labels = np.array(data.draw(st.lists(st.integers(0, c + 1), min_size=n + 1, max_size=n + 1)))
    e = data.draw(st.integers(-30, 20))
    mode = data.draw(st.sampled_from(["pseudo_stochastic", "stochastic"]))
    for axis in (0, 1):
        out, pad = O.window(size[axis], k[axis], s[axis], 1, padding)
        want_counts = [sum(1 for _, _, t in O.taps(out, pad, size[axis], k[axis], s[axis], 1) if t == tap)
                       for tap in range(k[axis])]
        assert O.tap_counts(out, pad, size[axis], k[axis], s[axis]) == want_counts
    got, _ = O.softmax_cross_entropy_grad(logits, e, labels, mode, (4, 5))
    want, _ = ref.softmax_cross_entropy_grad(logits, e, labels, mode, (4, 5))
    np.testing.assert_array_equal(got, np.asarray(want).reshape(got.shape))

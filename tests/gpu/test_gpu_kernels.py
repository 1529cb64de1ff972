"""Every CUDA kernel (cc/gpu) against the CPU core, bit for bit.

Needs only NumPy, nvcc and (for the comparisons) a CUDA GPU: the harness
library is built with nvcc from cc/gpu + cc/core (tests/gpu/build.py). Without
nvcc everything here skips. Without a GPU the GPU comparisons skip; what still
runs: the build, the CPU side of the C API, and the GPU kernels' own index
arithmetic (GEMM readers and depth split, pooling elements) emulated on the
host against the CPU core ("emulated" cases).
"""

import ctypes
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import build  # noqa: E402
import reference  # noqa: E402
from harness import (I32, I64, U64, ROUNDINGS, In, InOut, Out, OutInt, assert_same, run_both,  # noqa: E402
                     run_cpu, run_emulated, run_gpu)

MODES = list(ROUNDINGS)


@pytest.fixture(scope="module")
def lib():
    try:
        return build.load()
    except build.NvccMissing as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def gpu(lib):
    if lib.ki_device_count() == 0:
        pytest.skip("no CUDA GPU visible: the GPU kernels are compiled but not run here")
    return lib


@pytest.fixture(params=["emulated", "gpu"])
def backend(request, lib):
    """How the GPU side runs: its index arithmetic on the host, or the GPU."""
    if request.param == "gpu" and lib.ki_device_count() == 0:
        pytest.skip("no CUDA GPU visible: the GPU kernels are compiled but not run here")
    return request.param


def compare(lib, backend, name, *args, what=""):
    """The CPU core against the GPU kernel (or its host emulation)."""
    other = run_gpu if backend == "gpu" else run_emulated
    cpu, result = run_cpu(lib, name, *args), other(lib, name, *args)
    assert_same(cpu, result, f"{backend} {name} {what}")
    return cpu, result


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def int8s(rng, shape, low=-128, high=127):
    return rng.integers(low, high + 1, size=shape).astype(np.int8)


# ------------------------------------------------ the harness itself (no GPU)

def test_harness_builds_with_sm80_and_sm90_code(lib):
    data = open(build.LIBRARY, "rb").read()
    assert b"sm_80" in data and b"sm_90" in data
    assert lib.ki_device_count() >= 0


def test_cpu_side_of_the_c_api_matches_the_reference(lib, rng):
    # The comparisons below trust the CPU wrappers; check their plumbing here.
    x, w = int8s(rng, (7, 13)), int8s(rng, (13, 5))
    out = run_cpu(lib, "matmul", In(x), In(w), I64(7), I64(5), I64(13), I32(0), I32(0), Out((7, 5), np.int32))
    np.testing.assert_array_equal(out.outputs[0], reference.matmul(x, w))
    acc = rng.integers(-(2**20), 2**20, size=300).astype(np.int32)
    for mode in MODES:
        res = run_cpu(lib, "requantize8", In(acc), I64(acc.size), I32(-10), I32(ROUNDINGS[mode]), U64(3), U64(9),
                      Out(acc.shape, np.int8), OutInt())
        q, e = reference.requantize(acc, -10, mode, seed=(3, 9))
        np.testing.assert_array_equal(res.outputs[0], q)
        assert res.outputs[1] == e
    carrier = run_cpu(lib, "requantize_carrier", In(acc), I64(acc.size), I32(-10), I32(ROUNDINGS["nearest"]), U64(0),
                      U64(0), Out(acc.shape, np.float32), OutInt())
    q, e = reference.requantize(acc, -10, "nearest")
    np.testing.assert_array_equal(carrier.outputs[0], reference.dequantize(q, e))
    bad = run_cpu(lib, "dequantize8", In(np.zeros(3, np.int8)), I64(3), I32(101), Out((3,), np.float32))
    assert bad.rc != 0 and "out of range" in bad.error


# ------------------------------------------------------------ DFP

@pytest.mark.parametrize("bits", [8, 16])
def test_quantize(gpu, rng, bits):
    cases = {
        "normal": rng.normal(size=5000).astype(np.float32),
        "images": rng.uniform(0, 1, size=(4, 28, 28)).astype(np.float32),
        "carrier": (int8s(rng, 3000).astype(np.float32) * 2.0**-5),
        "power_of_two_max": np.array([1.0, 0.5, -0.25, 0.75], np.float32),
        "large": (rng.normal(size=1 << 20) * 1e4).astype(np.float32),
        "tiny": np.array([1e-38, -3e-39, 2e-45], np.float32),
        "zeros": np.zeros(100, np.float32),
        "empty": np.zeros(0, np.float32),
        "nan": np.array([1.0, np.nan, 2.0], np.float32),
        "inf": np.array([1.0, 2.0, -np.inf], np.float32),
        "too_large_exponent": np.array([3e38], np.float32),
    }
    dtype = np.int8 if bits == 8 else np.int16
    for name, x in cases.items():
        cpu, gpu_result = run_both(gpu, f"quantize{bits}", In(x), I64(x.size), Out(x.shape, dtype), OutInt())
        assert_same(cpu, gpu_result, name)
        if cpu.rc:
            assert cpu.error == gpu_result.error, name


@pytest.mark.parametrize("bits", [8, 16])
def test_dequantize(gpu, rng, bits):
    dtype = np.int8 if bits == 8 else np.int16
    info = np.iinfo(dtype)
    q = rng.integers(info.min, info.max + 1, size=10000).astype(dtype)
    for e in (-120, -30, -7, 0, 13, 100, 101, -121):
        assert_same(*run_both(gpu, f"dequantize{bits}", In(q), I64(q.size), I32(e), Out(q.shape, np.float32)),
                    f"e={e}")


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("mode", MODES)
def test_requantize(gpu, rng, bits, mode):
    dtype = np.int8 if bits == 8 else np.int16
    cases = [
        rng.integers(-(2**31), 2**31, size=1 << 18, dtype=np.int64).astype(np.int32),
        rng.integers(-(2**12), 2**12, size=777).astype(np.int32),
        rng.integers(-100, 100, size=50).astype(np.int32),  # no shift
        np.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max, 0, -1, 1], np.int32),
        np.zeros(0, np.int32),
    ]
    for i, acc in enumerate(cases):
        for e, seed in ((-20, (0, 0)), (-3, (12345, 67)), (-240, (1, 2))):
            assert_same(*run_both(gpu, f"requantize{bits}", In(acc), I64(acc.size), I32(e), I32(ROUNDINGS[mode]),
                                  U64(seed[0]), U64(seed[1]), Out(acc.shape, dtype), OutInt()),
                        f"case {i}, e={e}")
            if bits == 8:
                assert_same(*run_both(gpu, "requantize_carrier", In(acc), I64(acc.size), I32(e),
                                      I32(ROUNDINGS[mode]), U64(seed[0]), U64(seed[1]), Out(acc.shape, np.float32),
                                      OutInt()), f"carrier case {i}, e={e}")


@pytest.mark.parametrize("mode", MODES)
def test_round_shift_and_bit_length(gpu, rng, mode):
    x = rng.integers(-(2**31), 2**31, size=5000, dtype=np.int64).astype(np.int32)
    for shift in (0, 1, 2, 7, 16, 31, 32, 40, 63, 64, -1):
        for limit in (127, 2**31 - 1):
            assert_same(*run_both(gpu, "round_shift", In(x), I64(x.size), I32(shift), I32(ROUNDINGS[mode]), U64(5),
                                  U64(6), I32(limit), Out(x.shape, np.int32)), f"shift={shift}")
    for values in (x, x >> 20, np.zeros(10, np.int32), np.zeros(0, np.int32)):
        assert_same(*run_both(gpu, "bit_length", In(values), I64(values.size), OutInt()))


def test_aligned_add_and_bias(gpu, rng):
    a, b = int8s(rng, 4097), int8s(rng, 4097)
    for ea, eb in ((0, 0), (-7, -3), (-3, -7), (10, -30), (-100, 100), (5, 4)):
        assert_same(*run_both(gpu, "aligned_add", In(a), I32(ea), In(b), I32(eb), I64(a.size),
                              Out(a.shape, np.int32), OutInt()), f"{ea},{eb}")
    acc = rng.integers(-(2**24), 2**24, size=(300, 37)).astype(np.int32)
    bias = rng.integers(-(2**20), 2**20, size=37).astype(np.int32)
    for shift in (-12, -1, 0, 3, 8, 31, 32):
        assert_same(*run_both(gpu, "add_bias", InOut(acc), I64(300), I64(37), In(bias), I32(shift)),
                    f"shift={shift}")


def test_relu_and_grad_against_numpy(gpu, rng):
    x = (int8s(rng, 10001).astype(np.float32) * 2.0**-4)
    x[:4] = [0.0, -0.0, 1e-40, -1e-40]
    words = -(-x.size // 32)
    res = run_gpu(gpu, "relu", In(x), I64(x.size), Out(x.shape, np.float32), Out((words,), np.uint32))
    assert res.rc == 0
    bits = x.view(np.int32)
    np.testing.assert_array_equal(res.outputs[0].view(np.int32), np.where(bits > 0, bits, 0))
    # Bit i % 32 of word i / 32 is set when element i was positive.
    padded = np.zeros(words * 32, bool)
    padded[: x.size] = bits > 0
    mask = np.packbits(padded, bitorder="little").view("<u4")
    np.testing.assert_array_equal(res.outputs[1], mask)
    dy = (int8s(rng, x.size).astype(np.float32) * 2.0**-6)
    grad = run_gpu(gpu, "relu_grad", In(dy), In(mask), I64(x.size), Out(x.shape, np.float32))
    np.testing.assert_array_equal(grad.outputs[0].view(np.int32), np.where(bits > 0, dy.view(np.int32), 0))
    bad = run_gpu(gpu, "relu", In(np.array([1.0, np.nan], np.float32)), I64(2), Out((2,), np.float32),
                  Out((1,), np.uint32))
    assert bad.rc != 0 and "NaN" in bad.error


# ------------------------------------------------------------ GEMM and convolution

@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (17, 33, 45), (128, 128, 128), (300, 200, 64), (64, 48, 5000),
                                   (5, 7, 0), (0, 4, 3), (3, 2, 200000)])
@pytest.mark.parametrize("tx,tw", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_matmul(lib, backend, rng, M, N, K, tx, tw):
    x = int8s(rng, (K, M) if tx else (M, K))
    w = int8s(rng, (N, K) if tw else (K, N))
    compare(lib, backend, "matmul", In(x), In(w), I64(M), I64(N), I64(K), I32(tx), I32(tw),
            Out((M, N), np.int32), what=f"{M}x{N}x{K} tx={tx} tw={tw}")


def test_matmul_extremes_and_overflow(lib, backend):
    # -128 * -128 = 2**14: the largest product; 131071 of them still fit int32.
    for K in (131071, 131072, 140000):
        x = np.full((2, K), -128, np.int8)
        w = np.full((K, 3), -128, np.int8)
        _, result = compare(lib, backend, "matmul", In(x), In(w), I64(2), I64(3), I64(K), I32(0), I32(0),
                            Out((2, 3), np.int32), what=f"K={K}")
        if K > 131071:
            assert "int32 overflow" in result.error


def test_half_matmul_is_a_gemm(gpu, rng):
    # Only the benchmark's yardstick: check it computes a product.
    x = rng.integers(-4, 5, size=(100, 64)).astype(np.float16)
    w = rng.integers(-4, 5, size=(64, 70)).astype(np.float16)
    res = run_gpu(gpu, "half_matmul", In(x), In(w), I64(100), I64(70), I64(64), Out((100, 70), np.float32))
    np.testing.assert_array_equal(res.outputs[0], x.astype(np.float32) @ w.astype(np.float32))


CONV_CASES = [
    # x shape, filter (kh, kw, out), strides, dilations, same
    ((2, 8, 8, 3), (3, 3, 4), (1, 1), (1, 1), True),
    ((2, 9, 7, 5), (3, 3, 6), (2, 2), (1, 1), False),
    ((1, 10, 10, 4), (3, 3, 5), (1, 1), (2, 2), True),
    ((3, 6, 6, 16), (1, 1, 32), (1, 1), (1, 1), False),
    ((2, 11, 11, 3), (5, 5, 8), (2, 2), (1, 1), True),
    ((4, 5, 5, 64), (3, 3, 64), (1, 1), (1, 1), True),
    ((2, 7, 8, 2), (2, 3, 3), (3, 2), (1, 2), True),
    ((160, 32, 32, 3), (3, 3, 8), (1, 1), (1, 1), True),  # backprop-filter depth 163840 > 131071
]


def conv_geometry(x_shape, f, strides, dilations):
    return np.array([*x_shape, f[0], f[1], f[2], *strides, *dilations], np.int64)


@pytest.mark.parametrize("x_shape,f,strides,dilations,same", CONV_CASES)
def test_conv2d_all_passes(lib, backend, rng, x_shape, f, strides, dilations, same):
    geometry = conv_geometry(x_shape, f, strides, dilations)
    out_hw = np.zeros(2, np.int64)
    assert lib.ki_conv_output(geometry.ctypes.data_as(ctypes.c_void_p), I32(same),
                              out_hw.ctypes.data_as(ctypes.c_void_p)) == 0
    y_shape = (x_shape[0], int(out_hw[0]), int(out_hw[1]), f[2])
    w_shape = (f[0], f[1], x_shape[3], f[2])
    x, w, dy = int8s(rng, x_shape), int8s(rng, w_shape), int8s(rng, y_shape)
    g = In(geometry)
    compare(lib, backend, "conv2d", g, I32(same), In(x), In(w), Out(y_shape, np.int32))
    compare(lib, backend, "conv2d_backprop_input", g, I32(same), In(w), In(dy), Out(x_shape, np.int32))
    compare(lib, backend, "conv2d_backprop_filter", g, I32(same), In(x), In(dy), Out(w_shape, np.int32))


# ------------------------------------------------------------ pooling

POOL_CASES = [
    ((2, 8, 8, 3), (2, 2), (2, 2), False),
    ((2, 9, 9, 4), (3, 3), (2, 2), True),
    ((1, 7, 5, 2), (3, 2), (1, 1), True),
    ((3, 6, 6, 8), (6, 6), (1, 1), False),
    ((2, 10, 10, 5), (3, 3), (3, 3), True),
]


def pool_geometry(lib, x_shape, pool, strides, same):
    """The harness' geometry argument and the pooled shape."""
    geometry = np.array([*x_shape, *pool, *strides], np.int64)
    out_hw = np.zeros(2, np.int64)
    assert lib.ki_pool_output(geometry.ctypes.data_as(ctypes.c_void_p), I32(same),
                              out_hw.ctypes.data_as(ctypes.c_void_p)) == 0
    return In(geometry), (x_shape[0], int(out_hw[0]), int(out_hw[1]), x_shape[3])


@pytest.mark.parametrize("x_shape,pool,strides,same", POOL_CASES)
def test_pooling(lib, backend, rng, x_shape, pool, strides, same):
    g, y_shape = pool_geometry(lib, x_shape, pool, strides, same)
    for low, high in ((-128, 127), (-2, 2)):  # the narrow range makes ties
        x, dy = int8s(rng, x_shape, low, high), int8s(rng, y_shape)
        compare(lib, backend, "max_pool", g, I32(same), In(x), Out(y_shape, np.int8))
        compare(lib, backend, "max_pool_grad", g, I32(same), In(x), In(dy), Out(x_shape, np.int32))
        compare(lib, backend, "avg_pool", g, I32(same), In(x), Out(y_shape, np.int32))
        compare(lib, backend, "avg_pool_grad", g, I32(same), In(dy), Out(x_shape, np.int32))


@pytest.mark.parametrize("x_shape,pool,strides,same", [c for c in POOL_CASES if c[2][0] >= c[1][0] and c[2][1] >= c[1][1]])
def test_max_pool_on_carrier_bits(lib, backend, rng, x_shape, pool, strides, same):
    g, y_shape = pool_geometry(lib, x_shape, pool, strides, same)
    for low, high in ((-127, 127), (-2, 2)):
        x = (int8s(rng, x_shape, low, high).astype(np.float32) * 2.0**-5)
        x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
        cpu, _ = compare(lib, backend, "max_pool_carrier", g, I32(same), In(x), Out(y_shape, np.float32),
                         Out(y_shape, np.uint8))
        dy = int8s(rng, y_shape).astype(np.float32) * 2.0**-7
        compare(lib, backend, "max_pool_carrier_grad", g, I32(same), In(dy), In(cpu.outputs[1]),
                Out(x_shape, np.float32))
    x[0, 0, 0, 0] = np.inf
    cpu, other = compare(lib, backend, "max_pool_carrier", g, I32(same), In(x), Out(y_shape, np.float32),
                         Out(y_shape, np.uint8))
    assert cpu.rc != 0 and "NaN or Inf" in other.error
    overlapping = np.array([*x_shape, 3, 3, 1, 1], np.int64)
    cpu, other = compare(lib, backend, "max_pool_carrier", In(overlapping), I32(1), In(x), Out(x_shape, np.float32),
                         Out(x_shape, np.uint8))
    assert "must not overlap" in other.error


# ------------------------------------------------------------ training

@pytest.mark.parametrize("mode", ["pseudo_stochastic", "stochastic"])
@pytest.mark.parametrize("classes", [1, 10, 1000])
def test_cross_entropy_grad(gpu, rng, mode, classes):
    logits = int8s(rng, (67, classes))
    labels = rng.integers(0, classes, size=67).astype(np.int64)
    for e in (-25, -20, -9, -7, -6, -3, 0, 4, 30):
        assert_same(*run_both(gpu, "ce_grad", In(logits), I64(67), I64(classes), I32(e), In(labels),
                              I32(ROUNDINGS[mode]), U64(77), U64(e + 100), Out(logits.shape, np.int8)), f"e={e}")
    int32_labels = run_gpu(gpu, "ce_grad_int32_labels", In(logits), I64(67), I64(classes), I32(-3),
                           In(labels.astype(np.int32)), I32(ROUNDINGS[mode]), U64(77), U64(97),
                           Out(logits.shape, np.int8))
    cpu = run_cpu(gpu, "ce_grad", In(logits), I64(67), I64(classes), I32(-3), In(labels), I32(ROUNDINGS[mode]),
                  U64(77), U64(97), Out(logits.shape, np.int8))
    assert_same(cpu, int32_labels, "int32 labels")


def test_cross_entropy_grad_rejects_labels_out_of_range(gpu, rng):
    logits = int8s(rng, (4, 10))
    labels = np.array([1, 2, 10, 3], np.int64)
    res = run_gpu(gpu, "ce_grad", In(logits), I64(4), I64(10), I32(-3), In(labels), I32(1), U64(0), U64(0),
                  Out(logits.shape, np.int8))
    assert res.rc != 0 and "labels[2] = 10 is out of range [0, 10)" in res.error


@pytest.mark.parametrize("bits,dtype", [(8, np.int8), (16, np.int16), (32, np.int32)])
@pytest.mark.parametrize("momentum,decay", [(0, 0), (14, 0), (0, 5), (8, 100)])
def test_sgd_update(gpu, rng, bits, dtype, momentum, decay):
    info = np.iinfo(dtype)
    n = 70000
    w = rng.integers(max(info.min, -(2**20)), min(info.max, 2**20), size=n).astype(dtype)
    buffer = rng.integers(-100, 100, size=n).astype(dtype)
    for scale in (2**30, 2**12, 3, 0):
        g = rng.integers(-scale, scale + 1, size=n).astype(np.int32)
        for mu in (1, 3, 5, 30):
            assert_same(*run_both(gpu, f"sgd{bits}", InOut(w), In(g), I64(n), I32(mu), I32(momentum), I32(decay),
                                  InOut(buffer)), f"scale={scale} mu={mu}")
    bad = run_gpu(gpu, f"sgd{bits}", InOut(w), In(g), I64(n), I32(0), I32(0), I32(0), InOut(buffer))
    assert bad.rc != 0 and "mu" in bad.error


def test_cpu_side_of_adam_matches_the_reference(lib, rng):
    w = rng.integers(-127, 128, 300).astype(np.int8)
    g = rng.integers(-2**20, 2**20, 300).astype(np.int32)
    m, v = np.zeros(300, np.int32), np.zeros(300, np.int32)
    out = run_cpu(lib, "adam8", InOut(w), In(g), InOut(m), InOut(v), I64(300), I64(1), I64(58982), I64(65470), I32(0))
    assert out.rc == 0, out.error
    want = reference.adam_update(w, g, m, v, 1)
    for got, expected in zip(out.outputs, want):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("bits,dtype", [(8, np.int8), (16, np.int16), (32, np.int32)])
def test_adam_update(gpu, rng, bits, dtype):
    info = np.iinfo(dtype)
    n = 70000
    w = rng.integers(max(info.min + 1, -(2**20)), min(info.max, 2**20), size=n).astype(dtype)
    m = rng.integers(-2**15, 2**15 + 1, size=n).astype(np.int32)
    v = rng.integers(0, 2**30 + 1, size=n).astype(np.int32)
    for scale in (2**30, 2**12, 3, 0):
        g = rng.integers(-scale, scale + 1, size=n).astype(np.int32)
        for t, betas, shift in ((1, (58982, 65470), 0), (7, (0, 65535), -16), (2**40, (65535, 0), 16)):
            assert_same(*run_both(gpu, f"adam{bits}", InOut(w), In(g), InOut(m), InOut(v), I64(n), I64(t),
                                  I64(betas[0]), I64(betas[1]), I32(shift)), f"scale={scale} t={t}")
    bad = run_both(gpu, f"adam{bits}", InOut(w), In(g), InOut(m), InOut(v), I64(n), I64(0), I64(1), I64(1), I32(0))
    assert bad[0].rc != 0 and bad[0].error == bad[1].error and "step 0" in bad[0].error


# ------------------------------------------------------------ batch normalization

NORM_EPS = reference.epsilon_pair(1e-3)


def norm_training_args(q, x_e, gamma, beta, gamma_e, eps=NORM_EPS, mode="nearest", seed=(0, 0), rows=None):
    """Arguments of ki_*_batch_norm_training; outputs: y, y_e, x_sum, r, k, mean, mean_e, variance, variance_e."""
    n, channels = q.shape
    return (In(q), I64(n if rows is None else rows), I64(channels), I32(x_e), In(gamma), In(beta), I32(gamma_e),
            I64(eps[0]), I32(eps[1]), I32(ROUNDINGS[mode]), U64(seed[0]), U64(seed[1]), Out(q.shape, np.float32),
            OutInt(), Out((channels,), np.int64), Out((channels,), np.int64), Out((channels,), np.int32),
            Out((channels,), np.int32), OutInt(), Out((channels,), np.int32), OutInt())


def norm_inference_args(q, x_e, gamma, beta, gamma_e, mean, mean_e, variance, variance_e, eps=NORM_EPS,
                        mode="nearest", seed=(0, 0)):
    """Arguments of ki_*_batch_norm_inference; outputs: y, y_e, count, r, k."""
    n, channels = q.shape
    return (In(q), I64(n), I64(channels), I32(x_e), In(gamma), In(beta), I32(gamma_e), I64(eps[0]), I32(eps[1]),
            In(mean), I32(mean_e), In(variance), I32(variance_e), I32(ROUNDINGS[mode]), U64(seed[0]), U64(seed[1]),
            Out(q.shape, np.float32), OutInt(), Out((channels,), np.int64), Out((channels,), np.int64),
            Out((channels,), np.int32))


def norm_frozen_grad_args(err, err_e, x_e, count, r, k, gamma, gamma_e):
    """Arguments of ki_*_batch_norm_frozen_grad; outputs: dx, dx_e."""
    n, channels = err.shape
    return (In(err), I32(err_e), I64(n), I64(channels), I32(x_e), In(np.asarray(count, np.int64)),
            In(np.asarray(r, np.int64)), In(np.asarray(k, np.int32)), In(gamma), I32(gamma_e),
            Out(err.shape, np.float32), OutInt())


def norm_grad_args(err, err_e, q, x_e, x_sum, r, k, gamma, gamma_e):
    """Arguments of ki_*_batch_norm_grad; outputs: dx, dx_e, dgamma, dbeta."""
    n, channels = err.shape
    return (In(err), I32(err_e), In(q), I64(n), I64(channels), I32(x_e), In(np.asarray(x_sum, np.int64)),
            In(np.asarray(r, np.int64)), In(np.asarray(k, np.int32)), In(gamma), I32(gamma_e),
            Out(err.shape, np.float32), OutInt(), Out((channels,), np.int32), Out((channels,), np.int32))


def norm_case(rng, rows, channels):
    """int8 inputs with a constant channel and a narrow one, gamma and beta."""
    q = int8s(rng, (rows, channels))
    if channels > 1 and rows:
        q[:, 0] = 17          # constant: V = 0, the epsilon term alone
        q[:, 1] = int8s(rng, rows, -1, 1)
    gamma = int8s(rng, channels)
    beta = rng.integers(-(2**12), 2**12, size=channels).astype(np.int32)
    return q, gamma, beta


def test_cpu_side_of_batch_norm_matches_the_reference(lib, rng):
    # Plumbing of the ki_cpu_batch_norm_* wrappers (no GPU needed).
    q, gamma, beta = norm_case(rng, 40, 6)
    train = run_cpu(lib, "batch_norm_training", *norm_training_args(q, -5, gamma, beta, -9))
    assert train.rc == 0, train.error
    y, y_e, x_sum, r, k, mean, mean_e, variance, variance_e = train.outputs
    ref = reference.batch_norm_train(q, -5, gamma, -9, beta, *NORM_EPS)
    np.testing.assert_array_equal(y, reference.dequantize(ref["y_q"], ref["y_exponent"]))
    assert y_e == ref["y_exponent"] and mean_e == ref["batch_mean_exponent"]
    assert variance_e == ref["batch_variance_exponent"]
    np.testing.assert_array_equal(x_sum, ref["S1"])
    np.testing.assert_array_equal(r, ref["r"])
    np.testing.assert_array_equal(k, ref["k"])
    np.testing.assert_array_equal(mean, ref["batch_mean"])
    np.testing.assert_array_equal(variance, ref["batch_variance"])
    inference = run_cpu(lib, "batch_norm_inference",
                        *norm_inference_args(q, -5, gamma, beta, -9, mean, mean_e, variance, variance_e))
    assert inference.rc == 0, inference.error
    info = reference.batch_norm_inference(q, -5, gamma, -9, beta, mean, mean_e, variance, variance_e, *NORM_EPS,
                                          details=True)
    np.testing.assert_array_equal(inference.outputs[0], reference.dequantize(info["y_q"], info["y_exponent"]))
    assert inference.outputs[1] == info["y_exponent"]
    count, r_inf, k_inf = inference.outputs[2:]
    np.testing.assert_array_equal(count, [1 << j for j in info["j"]])
    np.testing.assert_array_equal(r_inf, info["r"])
    np.testing.assert_array_equal(k_inf, info["k"])
    err = int8s(rng, q.shape)
    frozen = run_cpu(lib, "batch_norm_frozen_grad", *norm_frozen_grad_args(err, -11, -5, count, r_inf, k_inf, gamma,
                                                                           -9))
    assert frozen.rc == 0, frozen.error
    dx_q, dx_e = reference.batch_norm_frozen_grad(err, -11, info["j"], -5, info["r"], info["k"], gamma, -9)
    np.testing.assert_array_equal(frozen.outputs[0], reference.dequantize(dx_q, dx_e))
    assert frozen.outputs[1] == dx_e
    err = int8s(rng, q.shape)
    grad = run_cpu(lib, "batch_norm_grad", *norm_grad_args(err, -11, q, -5, x_sum, r, k, gamma, -9))
    assert grad.rc == 0, grad.error
    dx_q, dx_e, dgamma, dbeta = reference.batch_norm_grad(err, -11, ref["xhat"], -5, r, k, gamma, -9)
    np.testing.assert_array_equal(grad.outputs[0], reference.dequantize(dx_q, dx_e))
    assert grad.outputs[1] == dx_e
    np.testing.assert_array_equal(grad.outputs[2], dgamma)
    np.testing.assert_array_equal(grad.outputs[3], dbeta)


# (600001, 2): more row blocks than the sums kernel launches, so its threads stride over rows.
NORM_SHAPES = [(1, 1), (7, 3), (64, 16), (1000, 5), (333, 130), (300, 300), (40, 1000), (600001, 2), (0, 4),
               (5, 0)]


@pytest.mark.parametrize("rows,channels", NORM_SHAPES)
def test_batch_norm(gpu, rng, rows, channels):
    q, gamma, beta = norm_case(rng, rows, channels)
    for x_e, gamma_e, eps in ((-7, -6, NORM_EPS), (3, -9, NORM_EPS), (-30, -2, NORM_EPS),
                              (40, -6, (16384, -30))):  # the last: epsilon vanishes, a constant channel gives 0
        for mode in MODES:
            seed = (rows + 7, channels + x_e)
            cpu, gpu_result = run_both(gpu, "batch_norm_training",
                                       *norm_training_args(q, x_e, gamma, beta, gamma_e, eps, mode, seed))
            assert_same(cpu, gpu_result, f"training {rows}x{channels} x_e={x_e} {mode}")
            assert cpu.rc == 0, cpu.error
            _, _, x_sum, r, k, mean, mean_e, variance, variance_e = cpu.outputs
            # Inference with the batch's statistics, and with a mean far from the data.
            shifted = (mean.astype(np.int64) * 3 // 2 + 2**29 * (channels > 2)).clip(-(2**31) + 1, 2**31 - 1)
            for moving_mean, moving_mean_e in ((mean, mean_e), (shifted.astype(np.int32), mean_e + 9)):
                cpu_inference, gpu_inference = run_both(
                    gpu, "batch_norm_inference", *norm_inference_args(q, x_e, gamma, beta, gamma_e, moving_mean,
                                                                      moving_mean_e, variance, variance_e, eps, mode,
                                                                      seed))
                assert_same(cpu_inference, gpu_inference, f"inference {rows}x{channels} x_e={x_e} {mode}")
                if mode == "nearest" and rows and channels:
                    count, r_inf, k_inf = cpu_inference.outputs[2:]
                    assert_same(*run_both(gpu, "batch_norm_frozen_grad",
                                          *norm_frozen_grad_args(int8s(rng, q.shape), -9, x_e, count, r_inf, k_inf,
                                                                 gamma, gamma_e)),
                                f"frozen grad {rows}x{channels} x_e={x_e}")
        for err_e in (-11, 5):
            err = int8s(rng, q.shape)
            if rows > 1 and channels > 2:
                err[:, 2] = 0  # an all-zero channel
            assert_same(*run_both(gpu, "batch_norm_grad", *norm_grad_args(err, err_e, q, x_e, x_sum, r, k, gamma,
                                                                          gamma_e)),
                        f"grad {rows}x{channels} x_e={x_e} err_e={err_e}")


def test_batch_norm_errors_match(gpu, rng):
    q, gamma, beta = norm_case(rng, 8, 3)
    cases = {
        "too many rows": norm_training_args(q, -7, gamma, beta, -6, rows=2**23 + 1),
        "epsilon": norm_training_args(q, -7, gamma, beta, -6, eps=(100, -20)),
        "result exponent": norm_training_args(q, 110, gamma, beta, 100),
    }
    for name, args in cases.items():
        cpu, gpu_result = run_both(gpu, "batch_norm_training", *args)
        assert cpu.rc != 0 and cpu.error == gpu_result.error, name
    mean = np.array([5, 2**20, -7], np.int32)
    for variance, message in ((np.array([3, -4, -1], np.int32), "got -4 in channel 1"),
                              (np.array([3, 4, 1], np.int32), "")):
        cpu, gpu_result = run_both(gpu, "batch_norm_inference",
                                   *norm_inference_args(q, -7, gamma, beta, -6, mean, -10, variance, -20))
        assert_same(cpu, gpu_result, message)
        assert cpu.error == gpu_result.error and message in cpu.error
    cpu, gpu_result = run_both(gpu, "batch_norm_inference",
                               *norm_inference_args(q, -7, gamma, beta, -6, mean, 400, mean, -20))
    assert cpu.rc != 0 and cpu.error == gpu_result.error
    # Inference constants that the inference pass cannot produce.
    for count, r, k in (([1, 3, 1], [1, 1, 1], [0, 0, 0]), ([1, 1, 1], [1, -1, 1], [0, 0, 0]),
                        ([1, 1, 2**24], [1, 1, 1], [0, 0, 0])):
        cpu, gpu_result = run_both(gpu, "batch_norm_frozen_grad",
                                   *norm_frozen_grad_args(int8s(rng, q.shape), -7, -7, count, r, k, gamma, -6))
        assert cpu.rc != 0 and "not what the inference pass gives" in cpu.error and cpu.error == gpu_result.error
    # Saved forward constants that the forward pass cannot produce.
    err = int8s(rng, q.shape)
    for x_sum, r, k in (([0, 8 * 128 + 1, 0], [1, 1, 1], [0, 0, 0]), ([0, 0, 0], [1, 2**40, 1], [0, 0, 0]),
                        ([0, 0, 0], [1, 1, 1], [0, 0, 31])):
        cpu, gpu_result = run_both(gpu, "batch_norm_grad", *norm_grad_args(err, -7, q, -7, x_sum, r, k, gamma, -6))
        assert cpu.rc != 0 and "not what the forward pass gives" in cpu.error and cpu.error == gpu_result.error


# ------------------------------------------------------------ layer normalization

def layer_norm_args(q, x_e, gamma, beta, gamma_e, eps=NORM_EPS, mode="nearest", seed=(0, 0)):
    """Arguments of ki_*_layer_norm; outputs: y, y_e, x_sum, r, k (per row)."""
    rows, features = q.shape
    return (In(q), I64(rows), I64(features), I32(x_e), In(gamma), In(beta), I32(gamma_e), I64(eps[0]), I32(eps[1]),
            I32(ROUNDINGS[mode]), U64(seed[0]), U64(seed[1]), Out(q.shape, np.float32), OutInt(),
            Out((rows,), np.int64), Out((rows,), np.int64), Out((rows,), np.int32))


def layer_norm_grad_args(err, err_e, q, x_e, x_sum, r, k, gamma, gamma_e, dx_bits=8):
    """Arguments of ki_*_layer_norm_grad; outputs: dx, dx_e, dgamma, dbeta."""
    rows, features = err.shape
    return (In(err), I32(err_e), In(q), I64(rows), I64(features), I32(x_e), In(np.asarray(x_sum, np.int64)),
            In(np.asarray(r, np.int64)), In(np.asarray(k, np.int32)), In(gamma), I32(gamma_e), I32(dx_bits),
            Out(err.shape, np.float32), OutInt(), Out((features,), np.int32), Out((features,), np.int32))


def layer_norm_case(rng, rows, features):
    """int8 rows with a constant row and a narrow one, gamma and beta."""
    q = int8s(rng, (rows, features))
    if rows > 1 and features:
        q[0, :] = -23          # constant: V = 0, the epsilon term alone
        q[1, :] = int8s(rng, features, -1, 1)
    gamma = int8s(rng, features)
    beta = rng.integers(-(2**12), 2**12, size=features).astype(np.int32)
    return q, gamma, beta


def test_cpu_side_of_layer_norm_matches_the_reference(lib, rng):
    # Plumbing of the ki_cpu_layer_norm* wrappers (no GPU needed).
    q, gamma, beta = layer_norm_case(rng, 9, 40)
    fwd = run_cpu(lib, "layer_norm", *layer_norm_args(q, -5, gamma, beta, -9))
    assert fwd.rc == 0, fwd.error
    y, y_e, x_sum, r, k = fwd.outputs
    ref = reference.layer_norm(q, -5, gamma, -9, beta, *NORM_EPS)
    np.testing.assert_array_equal(y, reference.dequantize(ref["y_q"], ref["y_exponent"]))
    assert y_e == ref["y_exponent"]
    np.testing.assert_array_equal(x_sum, ref["x_sum"])
    np.testing.assert_array_equal(r, ref["r"])
    np.testing.assert_array_equal(k, ref["k"])
    err = int8s(rng, q.shape)
    for dx_bits in (8, 16):
        grad = run_cpu(lib, "layer_norm_grad", *layer_norm_grad_args(err, -11, q, -5, x_sum, r, k, gamma, -9,
                                                                     dx_bits))
        assert grad.rc == 0, grad.error
        dx_q, dx_e, dgamma, dbeta = reference.layer_norm_grad(err, -11, ref["xhat"], -5, r, k, gamma, -9, dx_bits)
        np.testing.assert_array_equal(grad.outputs[0], reference.dequantize(dx_q, dx_e))
        assert grad.outputs[1] == dx_e
        np.testing.assert_array_equal(grad.outputs[2], dgamma)
        np.testing.assert_array_equal(grad.outputs[3], dbeta)


# (70000, 3): more rows than the per-row kernel's blocks; (2, 5000): more features than a block's threads.
LAYER_NORM_SHAPES = [(1, 1), (7, 3), (64, 16), (33, 257), (4, 768), (2, 5000), (70000, 3), (0, 4), (5, 0)]


@pytest.mark.parametrize("rows,features", LAYER_NORM_SHAPES)
def test_layer_norm(gpu, rng, rows, features):
    q, gamma, beta = layer_norm_case(rng, rows, features)
    for x_e, gamma_e, eps in ((-7, -6, NORM_EPS), (3, -9, NORM_EPS), (40, -6, (16384, -30))):
        for mode in MODES:
            seed = (rows + 3, features + x_e)
            cpu, gpu_result = run_both(gpu, "layer_norm", *layer_norm_args(q, x_e, gamma, beta, gamma_e, eps, mode,
                                                                           seed))
            assert_same(cpu, gpu_result, f"layer norm {rows}x{features} x_e={x_e} {mode}")
            assert cpu.rc == 0, cpu.error
        _, _, x_sum, r, k = cpu.outputs
        for err_e, dx_bits in ((-11, 8), (5, 8), (-11, 16)):
            err = int8s(rng, q.shape)
            if rows > 2 and features:
                err[2, :] = 0  # an all-zero row
            assert_same(*run_both(gpu, "layer_norm_grad", *layer_norm_grad_args(err, err_e, q, x_e, x_sum, r, k,
                                                                                gamma, gamma_e, dx_bits)),
                        f"layer norm grad {rows}x{features} x_e={x_e} err_e={err_e} dx_bits={dx_bits}")


def test_layer_norm_errors_match(gpu, rng):
    q, gamma, beta = layer_norm_case(rng, 3, 8)
    for name, args in {"epsilon": layer_norm_args(q, -7, gamma, beta, -6, eps=(100, -20)),
                       "result exponent": layer_norm_args(q, 110, gamma, np.full_like(beta, 2**30), 100)}.items():
        cpu, gpu_result = run_both(gpu, "layer_norm", *args)
        assert cpu.rc != 0 and cpu.error == gpu_result.error, name
    err = int8s(rng, q.shape)
    for x_sum, r, k in (([0, 8 * 128 + 1, 0], [1, 1, 1], [0, 0, 0]), ([0, 0, 0], [1, 2**40, 1], [0, 0, 0]),
                        ([0, 0, 0], [1, 1, 1], [0, 0, 31])):
        cpu, gpu_result = run_both(gpu, "layer_norm_grad", *layer_norm_grad_args(err, -7, q, -7, x_sum, r, k, gamma,
                                                                                 -6))
        assert cpu.rc != 0 and "which no forward pass" in cpu.error and cpu.error == gpu_result.error
    cpu, gpu_result = run_both(gpu, "layer_norm_grad", *layer_norm_grad_args(err, -7, q, -7, [0, 0, 0], [1, 1, 1],
                                                                             [0, 0, 0], gamma, -6, dx_bits=12))
    assert cpu.rc != 0 and "dx_bits must be 8 or 16, got 12" in cpu.error and cpu.error == gpu_result.error


# ------------------------------------------------------------ softmax

NO_MASK = ctypes.c_void_p()  # a null mask: every entry kept
# (multiplier, shift): none, attention's 1 / sqrt(key_dim) for key_dim 64 (~181 * 2**-11), and the largest ones.
SOFTMAX_SCALES = [(1, 0), (181, 11), (65535, 62), (65535, 0)]


def softmax_args(q, e, mask=None, scale=(1, 0), n=None):
    """Arguments of ki_*_softmax; output: P (int32 at exponent -22)."""
    rows, features = q.shape
    return (In(q), NO_MASK if mask is None else In(np.asarray(mask, np.uint8)), I64(rows),
            I64(features if n is None else n), I32(e), I64(scale[0]), I32(scale[1]), Out(q.shape, np.int32))


def softmax_grad_args(err, err_e, y, y_e, scale=(1, 0), n=None):
    """Arguments of ki_*_softmax_grad; outputs: dx, dx_e."""
    rows, features = err.shape
    return (In(err), I32(err_e), In(y), I32(y_e), I64(rows), I64(features if n is None else n), I64(scale[0]),
            I32(scale[1]), Out(err.shape, np.float32), OutInt())


def softmax_case(rng, rows, n):
    """int8 logits with a constant row and a narrow one; a mask with a fully masked row and a one-entry row."""
    q = int8s(rng, (rows, n))
    if rows > 1 and n:
        q[0, :] = 5            # constant: equal probabilities
        q[1, :] = int8s(rng, n, -1, 1)
    mask = rng.random((rows, n)) < 0.7
    if rows > 2:
        mask[2, :] = False     # every entry masked: all zero
    if rows > 3 and n:
        mask[3, :] = False
        mask[3, -1] = True     # one entry kept: probability 1
    return q, mask


def softmax_output(lib, probabilities):
    """The forward's int8 output (nearest) and its exponent: y and y_e of the backward."""
    res = run_cpu(lib, "requantize8", In(probabilities), I64(probabilities.size), I32(-22),
                  I32(ROUNDINGS["nearest"]), U64(0), U64(0), Out(probabilities.shape, np.int8), OutInt())
    assert res.rc == 0, res.error
    return res.outputs[0], res.outputs[1]


def test_cpu_side_of_softmax_matches_the_reference(lib, rng):
    # Plumbing of the ki_cpu_softmax* wrappers (no GPU needed).
    q, mask = softmax_case(rng, 9, 40)
    for e, scale in ((-5, (1, 0)), (-3, (181, 11)), (2, (65535, 62))):
        for m in (None, mask):
            fwd = run_cpu(lib, "softmax", *softmax_args(q, e, m, scale))
            assert fwd.rc == 0, fwd.error
            np.testing.assert_array_equal(fwd.outputs[0], reference.softmax_probabilities(q, e, m, scale))
        y, y_e = softmax_output(lib, fwd.outputs[0])
        err = int8s(rng, q.shape)
        grad = run_cpu(lib, "softmax_grad", *softmax_grad_args(err, -11, y, y_e, scale))
        assert grad.rc == 0, grad.error
        dx_q, dx_e = reference.softmax_grad(err, -11, y, y_e, scale)
        np.testing.assert_array_equal(grad.outputs[0], reference.dequantize(dx_q, dx_e))
        assert grad.outputs[1] == dx_e
    bad = run_cpu(lib, "softmax_grad", *softmax_grad_args(err, -11, y, 1))
    assert bad.rc != 0 and "y_exponent" in bad.error


# (70000, 3): more rows than the per-row kernel's blocks; (33, 257), (2, 5000): more entries than a block's threads.
SOFTMAX_SHAPES = [(1, 1), (7, 3), (64, 16), (33, 257), (4, 768), (2, 5000), (70000, 3), (0, 4), (5, 0)]


@pytest.mark.parametrize("rows,n", SOFTMAX_SHAPES)
def test_softmax(gpu, rng, rows, n):
    q, mask = softmax_case(rng, rows, n)
    for scale in SOFTMAX_SCALES:
        for e in (-7, -3, 0, 6, -60):  # 6: most numerators underflow (unscaled); -60: all equal
            for m in (mask, None):
                cpu, gpu_result = run_both(gpu, "softmax", *softmax_args(q, e, m, scale))
                assert_same(cpu, gpu_result, f"softmax {rows}x{n} e={e} scale={scale} mask={m is not None}")
                assert cpu.rc == 0, cpu.error
            y, y_e = softmax_output(gpu, cpu.outputs[0])  # the unmasked forward's output
            for err_e in (-11, 5):
                err = int8s(rng, q.shape)
                if rows > 2 and n:
                    err[2, :] = 0  # an all-zero row
                cpu, gpu_result = run_both(gpu, "softmax_grad", *softmax_grad_args(err, err_e, y, y_e, scale))
                assert_same(cpu, gpu_result, f"softmax grad {rows}x{n} e={e} scale={scale} err_e={err_e}")
                assert cpu.rc == 0, cpu.error
        # Any int8 y at the ends of the exponent range, and an all-zero error (dx = 0 at exponent 0).
        for y, y_e in ((int8s(rng, q.shape), -22), (int8s(rng, q.shape, 0, 127), 0)):
            for err in (int8s(rng, q.shape), np.zeros(q.shape, np.int8)):
                cpu, gpu_result = run_both(gpu, "softmax_grad", *softmax_grad_args(err, -7, y, y_e, scale))
                assert_same(cpu, gpu_result, f"softmax grad {rows}x{n} y_e={y_e} scale={scale}")
                assert cpu.rc == 0, cpu.error


def test_softmax_errors_match(gpu, rng):
    q, mask = softmax_case(rng, 4, 8)
    y, y_e = softmax_output(gpu, reference.softmax_probabilities(q, -5).astype(np.int32))
    err = int8s(rng, q.shape)
    for scale in ((0, 0), (65536, 0), (1, -1), (1, 63)):
        for name, args in (("softmax", softmax_args(q, -5, mask, scale)),
                           ("softmax_grad", softmax_grad_args(err, -7, y, y_e, scale))):
            cpu, gpu_result = run_both(gpu, name, *args)
            assert cpu.rc != 0 and "scale" in cpu.error and cpu.error == gpu_result.error, (name, scale)
    # Rows too long for exact sums (checked before anything is read).
    for name, args in (("softmax", softmax_args(q[:1], -5, n=2**21 + 1)),
                       ("softmax_grad", softmax_grad_args(err[:1], -7, y[:1], y_e, n=2**21 + 1))):
        cpu, gpu_result = run_both(gpu, name, *args)
        assert cpu.rc != 0 and "2097153 entries" in cpu.error and cpu.error == gpu_result.error, name
    # y_exponent outside [-22, 0]: not a softmax output's.
    for bad_e in (1, -23, 40):
        cpu, gpu_result = run_both(gpu, "softmax_grad", *softmax_grad_args(err, -7, y, bad_e))
        assert cpu.rc != 0 and "y_exponent" in cpu.error and cpu.error == gpu_result.error, bad_e
    # A result exponent outside [-120, 100].
    for err_e, y_exp in ((-200, y_e), (150, 0)):
        cpu, gpu_result = run_both(gpu, "softmax_grad", *softmax_grad_args(err, err_e, y, y_exp))
        assert cpu.rc != 0 and "result exponent" in cpu.error and cpu.error == gpu_result.error, err_e


# ------------------------------------------------------------ GELU

GELU_EXPONENTS = (-80, -30, -20, -16, -12, -9, -7, -5, -3, 0, 4, 5, 40)


def gelu_case(rng, n):
    """int8 mantissas, the first 256 of them every value."""
    q = int8s(rng, n)
    q[: min(n, 256)] = np.arange(-128, 128)[: min(n, 256)]
    return q


def test_cpu_side_of_gelu_matches_the_reference(lib, rng):
    # Plumbing of the ki_cpu_gelu* wrappers (no GPU needed).
    q = np.arange(-128, 128).astype(np.int8)
    for e in (-20, -7, -3, 0, 5):
        fwd = run_cpu(lib, "gelu", In(q), I64(q.size), I32(e), Out(q.shape, np.int32))
        assert fwd.rc == 0, fwd.error
        np.testing.assert_array_equal(fwd.outputs[0], [reference.gelu_value(v, e) for v in q])
        err = int8s(rng, q.size)
        grad = run_cpu(lib, "gelu_grad", In(err), In(q), I64(q.size), I32(e), Out(q.shape, np.int32))
        assert grad.rc == 0, grad.error
        np.testing.assert_array_equal(grad.outputs[0],
                                      err.astype(np.int64) * [reference.gelu_derivative(v, e) for v in q])


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 5000, 1 << 20])
def test_gelu(gpu, rng, n):
    q = gelu_case(rng, n)
    err = int8s(rng, n)
    err[: min(n, 3)] = (-128, 0, 127)[: min(n, 3)]
    for e in GELU_EXPONENTS:
        assert_same(*run_both(gpu, "gelu", In(q), I64(n), I32(e), Out(q.shape, np.int32)), f"gelu n={n} e={e}")
        assert_same(*run_both(gpu, "gelu_grad", In(err), In(q), I64(n), I32(e), Out(q.shape, np.int32)),
                    f"gelu grad n={n} e={e}")


# ------------------------------------------------------------ embedding

ID_TYPES = {32: np.int32, 64: np.int64}


def embedding_args(ids, table, e, bits):
    """Arguments of ki_*_embedding{bits}; output: the looked-up rows (float32)."""
    vocab, dim = table.shape
    return (In(np.asarray(ids, ID_TYPES[bits])), I64(np.size(ids)), In(table), I64(vocab), I64(dim), I32(e),
            Out((np.size(ids), dim), np.float32))


def embedding_grad_args(err, ids, vocab, bits, n=None):
    """Arguments of ki_*_embedding_grad{bits}; output: dtable (int32 [vocab, dim])."""
    rows, dim = err.shape
    return (In(err), In(np.asarray(ids, ID_TYPES[bits])), I64(rows if n is None else n), I64(vocab), I64(dim),
            Out((vocab, dim), np.int32))


def test_cpu_side_of_embedding_matches_the_reference(lib, rng):
    # Plumbing of the ki_cpu_embedding* wrappers (no GPU needed).
    table = int8s(rng, (11, 6))
    ids = rng.integers(0, 11, size=40)
    err = int8s(rng, (40, 6))
    for bits in ID_TYPES:
        fwd = run_cpu(lib, f"embedding{bits}", *embedding_args(ids, table, -5, bits))
        assert fwd.rc == 0, fwd.error
        np.testing.assert_array_equal(fwd.outputs[0], reference.embedding(ids, table, -5))
        grad = run_cpu(lib, f"embedding_grad{bits}", *embedding_grad_args(err, ids, 11, bits))
        assert grad.rc == 0, grad.error
        np.testing.assert_array_equal(grad.outputs[0], reference.embedding_grad(err, ids, 11))
        bad = run_cpu(lib, f"embedding{bits}", *embedding_args([3, 11], table, -5, bits))
        assert bad.rc != 0 and "id 11 at position 1 is out of range [0, 11)" in bad.error


# (n, vocab, dim): (3000, 1, 300) every id the same row, wider than a block; (70000, 3, 5) many colliding adds.
EMBEDDING_SHAPES = [(1, 1, 1), (7, 10, 4), (1000, 50, 64), (3000, 1, 300), (70000, 3, 5), (0, 5, 3), (5, 100, 0),
                    (0, 0, 4)]


@pytest.mark.parametrize("bits", list(ID_TYPES))
@pytest.mark.parametrize("n,vocab,dim", EMBEDDING_SHAPES)
def test_embedding(gpu, rng, bits, n, vocab, dim):
    table = int8s(rng, (vocab, dim))
    ids = rng.integers(0, max(vocab, 1), size=n)
    if n > 1:
        ids[:2] = (0, vocab - 1)  # the first and the last row
    for e in (-120, -7, 0, 100):
        assert_same(*run_both(gpu, f"embedding{bits}", *embedding_args(ids, table, e, bits)),
                    f"embedding{bits} {n}x{vocab}x{dim} e={e}")
    for err in (int8s(rng, (n, dim)), np.full((n, dim), -128, np.int8), np.zeros((n, dim), np.int8)):
        assert_same(*run_both(gpu, f"embedding_grad{bits}", *embedding_grad_args(err, ids, vocab, bits)),
                    f"embedding_grad{bits} {n}x{vocab}x{dim}")


@pytest.mark.parametrize("bits", list(ID_TYPES))
def test_embedding_errors_match(gpu, rng, bits):
    table = int8s(rng, (10, 4))
    many = rng.integers(0, 10, size=100000)
    many[[70001, 99999]] = (10, -1)  # the first bad position is past the first blocks
    cases = {
        "id 10 at position 2 is out of range [0, 10)": [1, 2, 10, 3],
        "id -1 at position 0 is out of range [0, 10)": [-1, 2, 3],
        "id 12 at position 1 is out of range": [0, 12, -3, 11],
        "id 10 at position 70001 is out of range": many,
        f"id {np.iinfo(ID_TYPES[bits]).min} at position 1": [0, np.iinfo(ID_TYPES[bits]).min],
        f"id {np.iinfo(ID_TYPES[bits]).max} at position 0": [np.iinfo(ID_TYPES[bits]).max],
    }
    for message, ids in cases.items():
        ids = np.asarray(ids, ID_TYPES[bits])
        cpu, gpu_result = run_both(gpu, f"embedding{bits}", *embedding_args(ids, table, -7, bits))
        assert cpu.rc != 0 and message in cpu.error and cpu.error == gpu_result.error, message
        err = int8s(rng, (ids.size, 4))
        cpu, gpu_result = run_both(gpu, f"embedding_grad{bits}", *embedding_grad_args(err, ids, 10, bits))
        assert cpu.rc != 0 and message in cpu.error and cpu.error == gpu_result.error, message
    # Any id is out of an empty vocabulary.
    cpu, gpu_result = run_both(gpu, f"embedding{bits}", *embedding_args([0], np.zeros((0, 4), np.int8), -7, bits))
    assert cpu.rc != 0 and "out of range [0, 0)" in cpu.error and cpu.error == gpu_result.error
    # More ids than the gradient's int32 sums allow (checked before anything is read).
    err = int8s(rng, (3, 4))
    cpu, gpu_result = run_both(gpu, f"embedding_grad{bits}", *embedding_grad_args(err, [0, 1, 2], 10, bits,
                                                                                   n=2**24))
    assert cpu.rc != 0 and "16777216 ids in one call" in cpu.error and cpu.error == gpu_result.error


# ------------------------------------------------------------ batched products

def batch_matmul_args(x, w, batch, M, N, K, tx, tw):
    """Arguments of ki_*_batch_matmul; output: [batch, M, N] int32."""
    return (In(x), In(w), I64(batch), I64(M), I64(N), I64(K), I32(tx), I32(tw), Out((batch, M, N), np.int32))


def batch_matmul_case(rng, batch, M, N, K, tx, tw):
    x = int8s(rng, (batch, K, M) if tx else (batch, M, K))
    w = int8s(rng, (batch, N, K) if tw else (batch, K, N))
    return x, w


def test_cpu_side_of_batch_matmul_matches_the_reference(lib, rng):
    # Plumbing of ki_cpu_batch_matmul (no GPU needed).
    for batch in (1, 5):
        for tx, tw in ((0, 0), (1, 0), (0, 1), (1, 1)):
            x, w = batch_matmul_case(rng, batch, 7, 5, 13, tx, tw)
            res = run_cpu(lib, "batch_matmul", *batch_matmul_args(x, w, batch, 7, 5, 13, tx, tw))
            assert res.rc == 0, res.error
            np.testing.assert_array_equal(res.outputs[0], reference.batch_matmul(x, w, tx, tw))


# (batch, M, N, K): one product (the CPU's MatMul path), attention-like shapes, a split depth, empty dimensions.
BATCH_MATMUL_SHAPES = [(1, 1, 1, 1), (1, 17, 33, 45), (3, 17, 33, 45), (4, 64, 64, 64), (12, 7, 5, 300),
                       (2, 128, 130, 64), (2, 3, 2, 200000), (0, 4, 4, 4), (3, 0, 4, 4), (3, 4, 0, 4), (3, 4, 4, 0)]


@pytest.mark.parametrize("batch,M,N,K", BATCH_MATMUL_SHAPES)
@pytest.mark.parametrize("tx,tw", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_batch_matmul(gpu, rng, batch, M, N, K, tx, tw):
    x, w = batch_matmul_case(rng, batch, M, N, K, tx, tw)
    cpu, gpu_result = run_both(gpu, "batch_matmul", *batch_matmul_args(x, w, batch, M, N, K, tx, tw))
    assert_same(cpu, gpu_result, f"batch matmul {batch}x{M}x{N}x{K} tx={tx} tw={tw}")
    assert cpu.rc == 0, cpu.error


def test_batch_matmul_overflow_matches(gpu):
    # -128 * -128 = 2**14: 131071 products fit int32, 131072 do not; only the second product of three overflows.
    for K in (131071, 131072):
        x = np.full((3, 2, K), -128, np.int8)
        w = np.full((3, K, 3), -128, np.int8)
        w[0] = 0
        cpu, gpu_result = run_both(gpu, "batch_matmul", *batch_matmul_args(x, w, 3, 2, 3, K, 0, 0))
        assert_same(cpu, gpu_result, f"K={K}")
        if K > 131071:
            assert "int32 overflow" in cpu.error and cpu.error == gpu_result.error


# ------------------------------------------------ DFP16 (int16 operands, int64 results)

def int16s(rng, shape):
    return rng.integers(-32767, 32768, size=shape).astype(np.int16)


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (17, 33, 45), (128, 64, 300), (5, 7, 0), (3, 2, 200000)])
@pytest.mark.parametrize("tx,tw", [(0, 0), (1, 1)])
def test_matmul16(gpu, rng, M, N, K, tx, tw):
    x = int16s(rng, (K, M) if tx else (M, K))
    w = int16s(rng, (N, K) if tw else (K, N))
    assert_same(*run_both(gpu, "matmul16", In(x), In(w), I64(M), I64(N), I64(K), I32(tx), I32(tw),
                          Out((M, N), np.int64)), f"{M}x{N}x{K}")


@pytest.mark.parametrize("geometry,same", [((2, 9, 8, 3, 3, 3, 5, 1, 1, 1, 1), 1), ((1, 10, 11, 4, 3, 2, 7, 2, 3, 1, 1), 0),
                                           ((2, 9, 9, 2, 3, 3, 4, 1, 1, 2, 2), 1)])
def test_conv2d16(gpu, rng, geometry, same):
    n, h, w_, c, kh, kw, o = geometry[:7]
    out_hw = np.zeros(2, np.int64)
    assert gpu.ki_conv_output(np.ascontiguousarray(geometry, np.int64).ctypes.data_as(ctypes.c_void_p), same,
                              out_hw.ctypes.data_as(ctypes.c_void_p)) == 0
    oh, ow = (int(v) for v in out_hw)
    x, w, dy = int16s(rng, (n, h, w_, c)), int16s(rng, (kh, kw, c, o)), int16s(rng, (n, oh, ow, o))
    g = In(np.asarray(geometry, np.int64))
    assert_same(*run_both(gpu, "conv2d16", g, I32(same), In(x), In(w), Out((n, oh, ow, o), np.int64)), "fwd")
    assert_same(*run_both(gpu, "conv2d16_backprop_input", g, I32(same), In(w), In(dy), Out(x.shape, np.int64)),
                "bwd input")
    assert_same(*run_both(gpu, "conv2d16_backprop_filter", g, I32(same), In(x), In(dy), Out(w.shape, np.int64)),
                "bwd filter")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bits", [8, 16])
def test_requantize64(gpu, rng, mode, bits):
    acc = rng.integers(-(2**50), 2**50, size=4099, dtype=np.int64)
    for e, seed in ((-40, (0, 0)), (-90, (12345, 67))):
        assert_same(*run_both(gpu, "requantize64", In(acc), I64(acc.size), I32(e), I32(ROUNDINGS[mode]), I32(bits),
                              U64(seed[0]), U64(seed[1]), Out(acc.shape, np.float32), OutInt()), f"e={e}")

"""Runs a CPU-core function and its CUDA twin on the same inputs (NumPy only).

    lib = build.load()
    cpu, gpu = run_both(lib, "matmul", In(x), In(w), I64(M), ..., Out((M, N), np.int32))

Arguments are described once: In(array) is an input, Out(shape, dtype) an
output array, InOut(array) an array updated in place, OutInt() an int
written through a pointer, and I32/I64/U64/Flag plain values. The CPU
function gets host pointers, the GPU function device copies; `run_both`
returns, for each, (return code, error message, outputs as NumPy arrays).
`run_emulated` runs a GPU kernel's index arithmetic on the host (no GPU).
"""

import ctypes

import numpy as np


class In:
    def __init__(self, array):
        self.array = np.ascontiguousarray(array)


class InOut(In):
    pass


class Out:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)


class OutInt:
    pass


def I32(v):
    return ctypes.c_int(int(v))


def I64(v):
    return ctypes.c_int64(int(v))


def U64(v):
    return ctypes.c_uint64(int(v) & (2**64 - 1))


ROUNDINGS = {"nearest": 0, "pseudo_stochastic": 1, "stochastic": 2, "truncate": 3}


class Result:
    def __init__(self, rc, error, outputs):
        self.rc, self.error, self.outputs = rc, error, outputs

    def __repr__(self):
        return f"Result(rc={self.rc}, error={self.error!r})"


def _check(lib, rc):
    if rc != 0:
        raise RuntimeError(lib.ki_last_error().decode())


def run_cpu(lib, name, *args, prefix="ki_cpu_"):
    call, outputs = [], []
    for a in args:
        if isinstance(a, In):
            array = a.array.copy() if isinstance(a, InOut) else a.array
            call.append(array.ctypes.data_as(ctypes.c_void_p))
            if isinstance(a, InOut):
                outputs.append(array)
        elif isinstance(a, Out):
            array = np.zeros(a.shape, a.dtype)
            call.append(array.ctypes.data_as(ctypes.c_void_p))
            outputs.append(array)
        elif isinstance(a, OutInt):
            value = ctypes.c_int(0)
            call.append(ctypes.byref(value))
            outputs.append(value)
        else:
            call.append(a)
    rc = getattr(lib, prefix + name)(*call)
    error = lib.ki_last_error().decode() if rc else ""
    return Result(rc, error, [o.value if isinstance(o, ctypes.c_int) else o for o in outputs])


def run_emulated(lib, name, *args):
    """The GPU kernel's index arithmetic run on the host (ki_emu_*)."""
    return run_cpu(lib, name, *args, prefix="ki_emu_")


def run_gpu(lib, name, *args):
    call, fetch, allocations = [], [], []
    try:
        for a in args:
            if isinstance(a, (In, Out)):
                shape, dtype = (a.array.shape, a.array.dtype) if isinstance(a, In) else (a.shape, a.dtype)
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                pointer = lib.ki_malloc(nbytes)
                if not pointer:
                    raise MemoryError(f"ki_malloc({nbytes}) failed")
                allocations.append(pointer)
                if isinstance(a, In):
                    _check(lib, lib.ki_to_device(ctypes.c_void_p(pointer), a.array.ctypes.data_as(ctypes.c_void_p),
                                                 I64(nbytes)))
                if isinstance(a, (Out, InOut)):
                    fetch.append((pointer, shape, dtype, nbytes))
                call.append(ctypes.c_void_p(pointer))
            elif isinstance(a, OutInt):
                value = ctypes.c_int(0)
                call.append(ctypes.byref(value))
                fetch.append(value)
            else:
                call.append(a)
        rc = getattr(lib, "ki_gpu_" + name)(*call)
        error = lib.ki_last_error().decode() if rc else ""
        outputs = []
        for f in fetch:
            if isinstance(f, ctypes.c_int):
                outputs.append(f.value)
                continue
            pointer, shape, dtype, nbytes = f
            array = np.zeros(shape, dtype)
            _check(lib, lib.ki_to_host(array.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(pointer), I64(nbytes)))
            outputs.append(array)
        return Result(rc, error, outputs)
    finally:
        for pointer in allocations:
            lib.ki_free(ctypes.c_void_p(pointer))


def run_both(lib, name, *args):
    return run_cpu(lib, name, *args), run_gpu(lib, name, *args)


def assert_same(cpu, gpu, what=""):
    """Both succeed with bit-identical outputs, or both fail."""
    assert (cpu.rc == 0) == (gpu.rc == 0), f"{what}: CPU {cpu!r} vs GPU {gpu!r}"
    if cpu.rc:
        return
    for i, (c, g) in enumerate(zip(cpu.outputs, gpu.outputs)):
        if isinstance(c, np.ndarray):
            assert c.dtype == g.dtype and c.shape == g.shape
            mismatch = np.flatnonzero(c.view(np.uint8) != g.view(np.uint8)) if c.size else []
            assert len(mismatch) == 0, (
                f"{what}: output {i} differs in {len(mismatch)} bytes, first at byte {mismatch[0]}")
        else:
            assert c == g, f"{what}: output {i}: CPU {c} vs GPU {g}"

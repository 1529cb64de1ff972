"""Builds the GPU test harness: cc/gpu + cc/core + tests/gpu/harness.cu.cc
compiled by nvcc into one shared library with a C API (no TensorFlow).

    python tests/gpu/build.py          # prints the library's path

`library()` builds when a source is newer than the library and returns its
path; `load()` returns it as a ctypes.CDLL. nvcc comes from $NVCC, the PATH,
or /usr/local/cuda/bin.
"""

import concurrent.futures
import ctypes
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.path.join(ROOT, "build", "gpu_harness")
LIBRARY = os.path.join(BUILD_DIR, "libki_gpu_harness.so")
ARCH_FLAGS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=[sm_90,compute_90]"]
COMMON_FLAGS = ["-std=c++17", "-O3", "-I" + ROOT, "-Xcompiler", "-fPIC"]


class NvccMissing(RuntimeError):
    pass


def nvcc_candidates():
    """The nvcc binaries that exist, in order of preference."""
    found = (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc")
    return [c for c in found if c and os.path.exists(c)]


def nvcc():
    for candidate in nvcc_candidates():
        return candidate
    raise NvccMissing("nvcc not found (set NVCC, put it on PATH, or install CUDA in /usr/local/cuda)")


def _sources():
    core = os.path.join(ROOT, "cc", "core")
    gpu = os.path.join(ROOT, "cc", "gpu")
    sources = [os.path.join(core, f) for f in sorted(os.listdir(core)) if f.endswith(".cc")]
    sources += [os.path.join(gpu, f) for f in sorted(os.listdir(gpu)) if f.endswith(".cu.cc")]
    sources.append(os.path.join(ROOT, "tests", "gpu", "harness.cu.cc"))
    headers = [os.path.join(d, f) for d in (core, gpu) for f in os.listdir(d) if f.endswith((".h", ".cuh"))]
    return sources, headers


# cc/BUILD's isa_srcs and the flags of bazel/int_op_library.bzl.
ISA_FLAGS = {
    "gemm_avx2.cc": ["-mavx2"],
    "gemm_avx512.cc": ["-mavx512f", "-mavx512bw", "-mavx512vnni"],
    "conv_avx512.cc": ["-mavx512f", "-mavx512bw", "-mavx512vnni"],
    "norm_avx2.cc": ["-mavx2"],
    "norm_avx512.cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"],
}


def _compile(compiler, source):
    obj = os.path.join(BUILD_DIR, os.path.relpath(source, ROOT).replace(os.sep, "_") + ".o")
    flags = list(COMMON_FLAGS)
    if source.endswith(".cu.cc"):
        flags = ["-x", "cu"] + ARCH_FLAGS + flags
    elif "_avx" in os.path.basename(source):
        # Instruction-set sources chosen at run time: their flags as in cc/BUILD's isa_srcs.
        if os.path.basename(source) not in ISA_FLAGS:
            raise RuntimeError(f"{source}: add its flags (cc/BUILD isa_srcs) to ISA_FLAGS in {__file__}")
        flags += ["-Xcompiler", ",".join(ISA_FLAGS[os.path.basename(source)])]
    result = subprocess.run([compiler, *flags, "-c", source, "-o", obj], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nvcc failed on {source}:\n{result.stderr}")
    return obj


def library():
    sources, headers = _sources()
    newest = max(os.path.getmtime(p) for p in sources + headers + [__file__])
    if os.path.exists(LIBRARY) and os.path.getmtime(LIBRARY) >= newest:
        return LIBRARY
    compiler = nvcc()
    os.makedirs(BUILD_DIR, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(lambda s: _compile(compiler, s), sources))
    result = subprocess.run([compiler, "-shared", *ARCH_FLAGS, "-o", LIBRARY + ".tmp", *objects],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nvcc failed to link the harness:\n{result.stderr}")
    os.replace(LIBRARY + ".tmp", LIBRARY)
    return LIBRARY


def load():
    lib = ctypes.CDLL(library())
    lib.ki_last_error.restype = ctypes.c_char_p
    lib.ki_malloc.restype = ctypes.c_void_p
    lib.ki_malloc.argtypes = [ctypes.c_int64]
    lib.ki_free.argtypes = [ctypes.c_void_p]
    return lib


if __name__ == "__main__":
    try:
        print(library())
    except NvccMissing as error:
        sys.exit(str(error))

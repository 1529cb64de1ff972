"""int8 tensor-core GEMM and convolution throughput on the GPU, and the ratio
to an fp16 tensor-core GEMM of the same (implicit-GEMM) shape, in one run.

    python benchmarks/gpu.py [--iterations 50]

Uses the NumPy-only harness (tests/gpu/build.py: cc/gpu + cc/core built by
nvcc); needs nvcc and a CUDA GPU, and says so otherwise. TOPS = 2 *
multiply-accumulates per second. The fp16 yardstick is our own WMMA kernel
with the same tiling (no cuBLAS is installed here), so the ratio compares
the data types on one kernel design; the hardware's int8/fp16 peak ratio on
an H100 is 2x.
"""

import argparse
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "gpu"))

import numpy as np  # noqa: E402

import build  # noqa: E402

GEMMS = [(4096, 4096, 4096), (8192, 8192, 8192), (25088, 64, 288), (8192, 128, 576), (288, 64, 25088)]
# x shape, filter (kh, kw, out), stride: VGG-small's layers at batch 256.
CONVS = [
    ((256, 32, 32, 3), (3, 3, 128), 1),
    ((256, 32, 32, 128), (3, 3, 128), 1),
    ((256, 16, 16, 128), (3, 3, 256), 1),
    ((256, 8, 8, 256), (3, 3, 512), 1),
]
PASSES = ("fwd", "bwd-input", "bwd-filter")


def timed(lib, fn, *args):
    ms = ctypes.c_float(0)
    if fn(*args, ctypes.byref(ms)) != 0:
        raise RuntimeError(lib.ki_last_error().decode())
    return ms.value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    try:
        lib = build.load()
    except build.NvccMissing as error:
        sys.exit(f"benchmarks/gpu.py: {error}")
    if lib.ki_device_count() == 0:
        sys.exit("benchmarks/gpu.py: no CUDA GPU visible (the kernels compile here but need a GPU to run)")
    name = ctypes.create_string_buffer(256)
    lib.ki_device_name(name, 256)
    print(f"device: {name.value.decode()}, {args.iterations} iterations per problem")
    it = ctypes.c_int(args.iterations)

    print(f"\n{'GEMM M x N x K':>24} {'int8 TOPS':>10} {'fp16 TOPS':>10} {'int8/fp16':>10}")
    for M, N, K in GEMMS:
        shape = [ctypes.c_int64(v) for v in (M, N, K)]
        t8 = timed(lib, lib.ki_gpu_time_matmul, *shape, ctypes.c_int(0), it)
        t16 = timed(lib, lib.ki_gpu_time_matmul, *shape, ctypes.c_int(1), it)
        ops = 2 * M * N * K
        print(f"{f'{M} x {N} x {K}':>24} {ops / t8 / 1e9:10.1f} {ops / t16 / 1e9:10.1f} {t16 / t8:10.2f}")

    print(f"\n{'conv (x, filter)':>34} {'pass':>10} {'int8 TOPS':>10} {'fp16 GEMM':>10} {'int8/fp16':>10}")
    for x_shape, f, stride in CONVS:
        geometry = np.array([*x_shape, *f, stride, stride, 1, 1], np.int64)
        out_hw = np.zeros(2, np.int64)
        lib.ki_conv_output(geometry.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(1),
                           out_hw.ctypes.data_as(ctypes.c_void_p))
        pixels_out = x_shape[0] * out_hw[0] * out_hw[1]
        pixels_in = x_shape[0] * x_shape[1] * x_shape[2]
        taps = f[0] * f[1]
        shapes = {  # the implicit GEMM of each pass: M x N x K
            "fwd": (pixels_out, f[2], taps * x_shape[3]),
            "bwd-input": (pixels_in, x_shape[3], taps * f[2]),
            "bwd-filter": (taps * x_shape[3], f[2], pixels_out),
        }
        for index, pass_name in enumerate(PASSES):
            M, N, K = (int(v) for v in shapes[pass_name])
            t8 = timed(lib, lib.ki_gpu_time_conv2d, geometry.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(1),
                       ctypes.c_int(index), it)
            t16 = timed(lib, lib.ki_gpu_time_matmul, ctypes.c_int64(M), ctypes.c_int64(N), ctypes.c_int64(K),
                        ctypes.c_int(1), it)
            ops = 2 * M * N * K
            label = f"{x_shape} {f}"
            print(f"{label:>34} {pass_name:>10} {ops / t8 / 1e9:10.1f} {ops / t16 / 1e9:10.1f} {t16 / t8:10.2f}")


if __name__ == "__main__":
    main()

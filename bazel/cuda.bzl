"""cuda_library: TensorFlow-free .cu.cc sources compiled by nvcc.

Each source becomes one position-independent object (a genrule running
nvcc), for sm_80 and sm_90 with sm_90 PTX for newer GPUs; the objects and
the static CUDA runtime form a cc_library that the op library links.
"""

load("@local_config_cuda//:defs.bzl", "CUDA_FOUND", "NVCC")

CUDA_ARCH_FLAGS = [
    "-gencode arch=compute_80,code=sm_80",
    "-gencode arch=compute_90,code=[sm_90,compute_90]",
]

def cuda_library(name, srcs, hdrs, deps = []):
    """A cc_library of nvcc-compiled objects.

    Args:
      name: library name.
      srcs: .cu.cc files.
      hdrs: every header they include (so that edits rebuild them).
      deps: libraries the objects call.
    """
    if not CUDA_FOUND:
        native.genrule(
            name = name + "_missing_nvcc",
            outs = [name + "_missing_nvcc.txt"],
            cmd = "echo 'nvcc not found: install the CUDA toolkit (or set CUDA_PATH) to build --config=cuda' >&2; exit 1",
        )
        native.cc_library(name = name, srcs = [":" + name + "_missing_nvcc.txt"])
        return
    objects = []
    for src in srcs:
        obj = "_objs_cuda/" + name + "/" + src.replace("/", "_").replace(".cu.cc", ".pic.o")
        native.genrule(
            name = name + "_" + src.replace("/", "_").replace(".", "_"),
            srcs = [src] + hdrs,
            outs = [obj],
            cmd = " ".join([
                NVCC,
                "-x cu -std=c++17 -O3 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden",
                "-I. -I$(GENDIR)",
            ] + CUDA_ARCH_FLAGS + ["-c $(location " + src + ") -o $@"]),
        )
        objects.append(obj)
    native.cc_library(
        name = name,
        srcs = objects,
        hdrs = hdrs,
        deps = deps + ["@local_config_cuda//:cudart_static"],
        alwayslink = 1,
    )

"""Repository rule that finds nvcc (CUDA toolkit) for `--config=cuda`.

Looks at $CUDA_PATH, then nvcc on the PATH, then /usr/local/cuda. Exposes the
toolkit's headers and static runtime as @local_config_cuda//:cuda_headers and
:cudart_static, and NVCC / CUDA_FOUND in defs.bzl. Without a toolkit the
CPU build is unaffected; a `--config=cuda` build stops with a clear error.
"""

def _find_cuda(rctx):
    candidates = []
    if rctx.os.environ.get("CUDA_PATH"):
        candidates.append(rctx.os.environ["CUDA_PATH"])
    nvcc = rctx.which("nvcc")
    if nvcc:
        real = rctx.path(nvcc).realpath
        candidates.append(str(real.dirname.dirname))
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if rctx.path(root + "/bin/nvcc").exists and rctx.path(root + "/include/cuda_runtime.h").exists:
            return root
    return None

def _cuda_configure_impl(rctx):
    root = _find_cuda(rctx)
    if root == None:
        rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
cc_library(name = "cuda_headers")
cc_library(name = "cudart_static")
""")
        rctx.file("defs.bzl", "CUDA_FOUND = False\nNVCC = None\n")
        return
    rctx.symlink(root + "/include", "include")
    lib = root + "/lib64/libcudart_static.a"
    if not rctx.path(lib).exists:
        lib = root + "/lib/libcudart_static.a"
    rctx.symlink(lib, "lib/libcudart_static.a")
    rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "cuda_headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp"]),
    includes = ["include"],
)

cc_library(
    name = "cudart_static",
    srcs = ["lib/libcudart_static.a"],
    linkopts = ["-ldl", "-lrt", "-lpthread"],
)
""")
    rctx.file("defs.bzl", "CUDA_FOUND = True\nNVCC = %r\n" % (root + "/bin/nvcc"))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH", "PATH"],
    local = True,
)

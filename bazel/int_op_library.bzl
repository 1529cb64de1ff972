"""The one macro that builds a TensorFlow custom-op shared library."""

load("@local_config_tf//:build_defs.bzl", "TF_COPTS")

SANITIZER_COPTS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]

def core_libraries():
    """:core and :core_asan: the TensorFlow-free code, plain and sanitized.

    The AVX2 and AVX-512 VNNI kernels alone are compiled for those
    instruction sets; gemm.cc and conv.cc pick them at run time, so the
    library still runs (slower) on CPUs without them.
    """
    avx512 = ["-mavx512f", "-mavx512bw", "-mavx512vnni"]
    kernels = {"gemm_avx2": ["-mavx2"], "gemm_avx512": avx512, "conv_avx512": avx512}
    for suffix, extra in (("", ["-O3"]), ("_asan", ["-O1"] + SANITIZER_COPTS)):
        for kernel, isa in kernels.items():
            native.cc_library(
                name = kernel + suffix,
                srcs = ["core/%s.cc" % kernel],
                hdrs = ["core/conv.h", "core/gemm.h", "core/parallel.h", "core/status.h"],
                copts = extra + isa + ["-fPIC"],
            )
        native.cc_library(
            name = "core" + suffix,
            srcs = native.glob(["core/*.cc"], exclude = ["core/%s.cc" % k for k in kernels]),
            hdrs = native.glob(["core/*.h"]),
            copts = extra + ["-fPIC", "-fvisibility=hidden"],
            deps = [":" + kernel + suffix for kernel in kernels],
            visibility = ["//visibility:public"],
        )

def int_op_library(name, srcs, deps = [], copts = [], linkopts = []):
    """A shared library loadable with tf.load_op_library.

    Args:
      name: output name, e.g. "_int_ops.so".
      srcs: op registrations and kernel adapters (TensorFlow-facing sources).
      deps: TensorFlow-free libraries the kernels call.
      copts: extra compiler flags.
      linkopts: extra linker flags.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        linkshared = 1,
        copts = TF_COPTS + [
            "-O3",
            "-fvisibility=hidden",
            "-fvisibility-inlines-hidden",
            "-Wno-sign-compare",
            "-Wno-deprecated-declarations",
        ] + copts,
        linkopts = linkopts,
        deps = deps + [
            "@local_config_tf//:tf_headers",
            "@local_config_tf//:tf_framework",
        ],
    )

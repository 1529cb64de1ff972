"""The macros that build the library: the TensorFlow-free core, one library
per family, and the TensorFlow custom-op shared library with its CUDA
sources."""

load("@local_config_tf//:build_defs.bzl", "TF_COPTS")
load("//bazel:cuda.bzl", "cuda_library")

SANITIZER_COPTS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]

# Flags of the instruction-set-specific core sources (picked at run time).
AVX2 = ["-mavx2"]
AVX512_VNNI = ["-mavx512f", "-mavx512bw", "-mavx512vnni"]
AVX512 = ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"]

# The core is built twice: plain, and with AddressSanitizer +
# UndefinedBehaviorSanitizer (for core_test and _int_ops_asan.so).
_VARIANTS = (("", ["-O3"]), ("_asan", ["-O1"] + SANITIZER_COPTS))

def core_libraries(families, directory = "core"):
    """:core_<family> and :core_<family>_asan for each family, and :core /
    :core_asan holding them all.

    Every .cc and .h file in `directory` must belong to exactly one family
    (a file left out is an error, so that a new one is not forgotten).

    Args:
      families: {family: {"srcs": [...], "hdrs": [...], "deps": [families],
        "isa_srcs": {source: copts}}}, file names relative to `directory`.
        isa_srcs are compiled for one instruction set (AVX2, AVX-512 VNNI);
        the family's own code picks them at run time, so the library still
        runs (slower) on CPUs without them.
      directory: where the core's files are.
    """
    listed = []
    for family, spec in families.items():
        for key in spec:
            if key not in ("srcs", "hdrs", "deps", "isa_srcs"):
                fail("core family %s: unknown key %s" % (family, key))
        listed += spec.get("srcs", []) + spec.get("hdrs", []) + list(spec.get("isa_srcs", {}).keys())
    for path in native.glob([directory + "/*.cc", directory + "/*.h"]):
        name = path[len(directory) + 1:]
        count = len([f for f in listed if f == name])
        if count != 1:
            fail("%s must belong to exactly one core family (it is in %d)" % (path, count))

    for suffix, extra in _VARIANTS:
        for family, spec in families.items():
            hdrs = [directory + "/" + f for f in spec.get("hdrs", [])]
            deps = [":core_%s%s" % (d, suffix) for d in spec.get("deps", [])]
            isa_deps = []
            for src, isa in spec.get("isa_srcs", {}).items():
                isa_name = "core_%s_%s%s" % (family, src.replace(".cc", ""), suffix)
                native.cc_library(
                    name = isa_name,
                    srcs = [directory + "/" + src],
                    hdrs = hdrs,
                    copts = extra + isa + ["-fPIC"],
                    deps = deps,
                )
                isa_deps.append(":" + isa_name)
            native.cc_library(
                name = "core_%s%s" % (family, suffix),
                srcs = [directory + "/" + f for f in spec.get("srcs", [])],
                hdrs = hdrs,
                copts = extra + ["-fPIC", "-fvisibility=hidden"],
                deps = deps + isa_deps,
            )
        native.cc_library(
            name = "core" + suffix,
            deps = [":core_%s%s" % (family, suffix) for family in families],
        )

def int_op_library(name, srcs, cuda_srcs = [], cuda_hdrs = [], deps = [], copts = [], linkopts = []):
    """A shared library loadable with tf.load_op_library.

    With `--config=cuda` (//bazel:cuda), cuda_srcs are compiled by nvcc into
    :<name without .so>_gpu and linked in, and srcs are compiled with
    KERAS_INT_CUDA=1 (their DEVICE_GPU kernels), as tensorflow/addons'
    custom_op_library does.

    Args:
      name: output name, e.g. "_int_ops.so".
      srcs: op registrations and kernel adapters (TensorFlow-facing sources).
      cuda_srcs: TensorFlow-free .cu.cc sources of the GPU kernels.
      cuda_hdrs: every header they include (so that edits rebuild them).
      deps: TensorFlow-free libraries the kernels (and cuda_srcs) call.
      copts: extra compiler flags.
      linkopts: extra linker flags.
    """
    cuda_deps = []
    cuda_copts = []
    if cuda_srcs:
        gpu_name = name.replace(".so", "") + "_gpu"
        cuda_library(name = gpu_name, srcs = cuda_srcs, hdrs = cuda_hdrs, deps = deps)
        cuda_deps = select({
            "//bazel:cuda": [":" + gpu_name, "@local_config_cuda//:cuda_headers"],
            "//conditions:default": [],
        })
        cuda_copts = select({
            "//bazel:cuda": ["-DKERAS_INT_CUDA=1"],
            "//conditions:default": [],
        })
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
        ] + copts + cuda_copts,
        linkopts = linkopts,
        deps = deps + [
            "@local_config_tf//:tf_headers",
            "@local_config_tf//:tf_framework",
        ] + cuda_deps,
    )

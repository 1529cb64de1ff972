"""The one macro that builds a TensorFlow custom-op shared library."""

load("@local_config_tf//:build_defs.bzl", "TF_COPTS")

def int_op_library(name, srcs, deps = [], copts = []):
    """A shared library loadable with tf.load_op_library.

    Args:
      name: output name, e.g. "_int_ops.so".
      srcs: op registrations and kernel adapters (TensorFlow-facing sources).
      deps: TensorFlow-free libraries the kernels call.
      copts: extra compiler flags.
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
        deps = deps + [
            "@local_config_tf//:tf_headers",
            "@local_config_tf//:tf_framework",
        ],
    )

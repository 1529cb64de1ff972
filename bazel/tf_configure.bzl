"""Repository rule that exposes the installed TensorFlow pip package to Bazel.

Everything comes from `tf.sysconfig` of the Python named by PYTHON_BIN_PATH
(written to .bazelrc.user by configure.py), so the ABI flag, -std, include and
library directories are never hard-coded.
"""

_QUERY = """
import tensorflow as tf
for f in tf.sysconfig.get_compile_flags():
    print("CFLAG " + f)
for f in tf.sysconfig.get_link_flags():
    print("LFLAG " + f)
"""

def _tf_configure_impl(rctx):
    python = rctx.os.environ.get("PYTHON_BIN_PATH", "python3")
    result = rctx.execute(
        [python, "-c", _QUERY],
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    if result.return_code != 0:
        fail("Cannot import tensorflow with PYTHON_BIN_PATH=%s. Run `python configure.py` " % python +
             "with the Python that has TensorFlow installed (or `make build`).\n" + result.stderr)
    include_dir = None
    lib_dir = None
    lib_name = None
    copts = []
    for line in result.stdout.splitlines():
        if line.startswith("CFLAG "):
            flag = line[len("CFLAG "):]
            if flag.startswith("-I"):
                include_dir = flag[2:]
            else:
                copts.append(flag)
        elif line.startswith("LFLAG "):
            flag = line[len("LFLAG "):]
            if flag.startswith("-L"):
                lib_dir = flag[2:]
            elif flag.startswith("-l:"):
                lib_name = flag[3:]
    if not include_dir or not lib_dir or not lib_name:
        fail("Unexpected tf.sysconfig output:\n" + result.stdout)

    rctx.symlink(include_dir, "include")
    rctx.symlink(lib_dir + "/" + lib_name, "lib/" + lib_name)
    rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tf_headers",
    hdrs = glob(["include/**/*.h", "include/**/*.inc", "include/**/*.hpp",
                 "include/Eigen/**", "include/unsupported/Eigen/**"]),
    includes = ["include"],
)

cc_library(
    name = "tf_framework",
    srcs = ["lib/{lib}"],
)
""".format(lib = lib_name))
    rctx.file("build_defs.bzl", "TF_COPTS = %s\nTF_LIB_NAME = %r\n" % (repr(copts), lib_name))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)

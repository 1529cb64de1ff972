"""Offline stand-in for @rules_cc: re-exports Bazel's native C++ rules.

Debian's bazel-bootstrap (4.2.3) refers to @rules_cc from its built-in WORKSPACE
suffix; with no network the real repository cannot be fetched, and Debian's own
bazel-rules-cc package is too new for 4.2.3.
"""

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_import(**kwargs):
    native.cc_import(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

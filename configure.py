"""Records which Python (and so which TensorFlow) Bazel builds against.

Writes the gitignored .bazelrc.user; the tf_configure repository rule then
reads include/library directories and flags from that Python's tf.sysconfig.

    python configure.py        # uses the Python running this script
"""

import os
import sys


def main():
    try:
        import tensorflow  # noqa: F401  (fail here, with a clear message, not in Bazel)
    except ImportError as error:
        sys.exit(f"configure.py: this Python ({sys.executable}) cannot import tensorflow: {error}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".bazelrc.user")
    with open(path, "w") as f:
        f.write(f'build --repo_env=PYTHON_BIN_PATH="{sys.executable}"\n')
        f.write(f'build --action_env=PYTHON_BIN_PATH="{sys.executable}"\n')
    print(f"configure.py: wrote {path} (PYTHON_BIN_PATH={sys.executable})")


if __name__ == "__main__":
    main()

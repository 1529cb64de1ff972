"""The wheel carries the compiled op library (tf_int_ops/_int_ops.so, built by
`make build`): a platform wheel, not a pure-Python one. Everything else is in
pyproject.toml."""

from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    """Tags the wheel with the Python ABI and platform the library was built for."""

    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution)

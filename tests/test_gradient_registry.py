"""Every op of the library has a registered gradient or is declared gradient-free.

A new ``IntOps>`` op whose module forgets ``tf.RegisterGradient`` or
``tf.no_gradient`` fails here instead of in the first ``tape.gradient`` that
reaches it (TensorFlow's "No gradient defined for operation").
"""

import tensorflow as tf

import tf_int_ops  # noqa: F401  (registers the gradients)
from tf_int_ops import _loader, _tf_internal

# The carrier ops the Keras layers differentiate through.
DIFFERENTIABLE = {"IntOps>Dense", "IntOps>Conv2DLayer", "IntOps>Relu", "IntOps>MaxPoolCarrier"}


def library_op_names():
    """The op types of the loaded library (its generated ``IntOps_<Name>`` raw-op functions)."""
    module = _loader.load()
    return sorted("IntOps>" + name[len("IntOps_"):] for name in dir(module)
                  if name.startswith("IntOps_"))


def test_the_library_lists_its_ops():
    names = library_op_names()
    assert len(names) >= 23 and DIFFERENTIABLE <= set(names)


def test_every_op_has_a_gradient_or_is_gradient_free():
    missing = [name for name in library_op_names()
               if _tf_internal.gradient_registration(name) == "missing"]
    assert missing == [], f"register a gradient or tf.no_gradient for {missing}"


def test_differentiable_ops_have_gradient_functions():
    for name in library_op_names():
        expected = "gradient" if name in DIFFERENTIABLE else "none"
        assert _tf_internal.gradient_registration(name) == expected, name


def test_lookup_tells_the_three_cases_apart():
    assert _tf_internal.gradient_registration("MatMul") == "gradient"
    assert _tf_internal.gradient_registration("Shape") == "none"
    assert _tf_internal.gradient_registration("IntOps>NoSuchOp") == "missing"

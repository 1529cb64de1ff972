"""Every op of the library has a registered gradient or is declared gradient-free.

A new ``IntOps>`` op whose module forgets ``tf.RegisterGradient`` or
``tf.no_gradient`` fails here instead of in the first ``tape.gradient`` that
reaches it (TensorFlow's "No gradient defined for operation").
"""

import pytest
import tensorflow as tf

import tf_int_ops  # noqa: F401  (registers the gradients)
from tf_int_ops import _loader, _tf_internal, layer_ops
from tf_int_ops.layer_ops import _op_args

# The carrier ops the Keras layers differentiate through.
DIFFERENTIABLE = {"IntOps>Dense", "IntOps>Conv2DLayer", "IntOps>Relu", "IntOps>MaxPoolCarrier",
                  "IntOps>BatchNorm", "IntOps>BatchNormInference", "IntOps>LayerNorm", "IntOps>Gelu",
                  "IntOps>Softmax", "IntOps>Embedding"}


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


def _traced_dense_op(with_bias, with_error_exponent):
    """The IntOps>Dense operation of a traced call, with optional bias and error-exponent inputs."""
    kernel = tf.Variable(tf.ones([3, 2], tf.int8))
    bias = tf.Variable(tf.zeros([2], tf.int32)) if with_bias else None
    exponent = tf.Variable(0) if with_error_exponent else None

    @tf.function
    def call(x):
        return layer_ops.dense(x, kernel, -7, bias=bias, error_exponent=exponent)

    graph = call.get_concrete_function(tf.TensorSpec([4, 3], tf.float32)).graph
    return next(op for op in graph.get_operations() if op.type == "IntOps>Dense")


def test_inputs_and_outputs_by_name_follow_the_list_inputs():
    for with_bias in (False, True):
        for with_error_exponent in (False, True):
            op = _traced_dense_op(with_bias, with_error_exponent)
            inputs, outputs = _op_args.inputs(op), _op_args.outputs(op)
            assert list(inputs) == ["x", "kernel", "bias", "kernel_exponent", "seed", "error_exponent"]
            assert len(inputs["bias"]) == with_bias and len(inputs["error_exponent"]) == with_error_exponent
            assert inputs["kernel_exponent"].dtype == tf.int32 and inputs["seed"].dtype == tf.int64
            assert outputs["kernel_q"].dtype == tf.int8 and outputs["x_exponent"].dtype == tf.int32
            grads = _op_args.gradients(op, x="dx", kernel="dw", bias=["db"] * with_bias)
            assert grads == ["dx", "dw", *["db"] * with_bias, None, None, *[None] * with_error_exponent]


def test_gradients_by_name_refuse_unknown_names_and_wrong_list_lengths():
    op = _traced_dense_op(True, False)
    with pytest.raises(ValueError, match="no inputs named \\['filter'\\]"):
        _op_args.gradients(op, filter="dw")
    with pytest.raises(ValueError, match="2 gradients for the 1 'bias' inputs"):
        _op_args.gradients(op, bias=["a", "b"])

"""The op library's definitions follow the layout rules of docs/adding_a_layer.md.

- Kernels address inputs and outputs by their REGISTER_OP names, never by
  position (an added input must not shift another's meaning).
- Shared attributes are enumerated (TensorFlow refuses other values before a
  kernel runs): every ``rounding`` and ``padding`` attribute lists its values.
- The layer ops with weights take the mantissa type as ``T: {int8, int16}``
  with kernels registered for both; int16 dispatches to the kernel, which
  says that the 16-bit GEMM comes with the DFP16 datapath.
"""

import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from tf_int_ops import _tf_internal, layer_ops
from test_gradient_registry import library_op_names

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROUNDINGS = {"nearest", "pseudo_stochastic", "stochastic", "truncate"}
WEIGHTED_LAYER_OPS = ("IntOps>Dense", "IntOps>Conv2DLayer")

# ctx->input(0), allocate_output(1, ...), forward_input_or_allocate_output({0}, 0, ...),
# set_output(0, ...), GetSeed(ctx, 2, ...), GetExponent(ctx, 1, ...), SetScalarInt32(ctx, 1, ...).
POSITIONAL = re.compile(
    r"ctx->(input|allocate_output|set_output|input_list|mutable_output)\(\s*\d"
    r"|forward_input_or_allocate_output\(\s*\{\s*\d"
    r"|(GetSeed|GetExponent|SetScalarInt32|HandleFromInput)\(\s*ctx\s*,\s*\d")


def test_kernels_address_inputs_and_outputs_by_name():
    offenders = []
    for path in sorted((ROOT / "cc" / "kernels").glob("*")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if POSITIONAL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_the_positional_pattern_catches_what_it_should():
    assert POSITIONAL.search("const Tensor& x = ctx->input(0);")
    assert POSITIONAL.search("OP_REQUIRES_OK(ctx, ctx->allocate_output(1, shape, &y));")
    assert POSITIONAL.search("SetScalarInt32(ctx, 1, exponent);")
    assert not POSITIONAL.search('OP_REQUIRES_OK(ctx, ctx->allocate_output("y", shape, &y));')


def _attrs(op_name):
    return {attr.name: attr for attr in _tf_internal.op_def(op_name).attr}


def test_rounding_and_padding_are_enumerated_attributes():
    seen = {"rounding": 0, "padding": 0}
    for name in library_op_names():
        for attr_name, attr in _attrs(name).items():
            if attr_name not in seen:
                continue
            seen[attr_name] += 1
            allowed = set(attr.allowed_values.list.s)
            assert allowed, f"{name}: {attr_name} is a plain string attr"
            allowed = {value.decode() for value in allowed}
            if attr_name == "padding":
                assert allowed == {"SAME", "VALID"}, name
            else:
                assert allowed <= ROUNDINGS, name
    assert seen["rounding"] >= 5 and seen["padding"] >= 6, seen


@pytest.mark.parametrize("op_name", WEIGHTED_LAYER_OPS)
def test_layer_ops_take_the_mantissa_type_as_an_attribute(op_name):
    attr = _attrs(op_name)["T"]
    assert attr.type == "type"
    assert set(attr.allowed_values.list.type) == {tf.int8.as_datatype_enum, tf.int16.as_datatype_enum}
    assert attr.default_value.type == tf.int8.as_datatype_enum
    outputs = {arg.name: arg.type_attr for arg in _tf_internal.op_def(op_name).output_arg}
    assert outputs["x_q"] == "T"


def test_int16_weights_dispatch_to_the_int16_kernel():
    # The variable's type selects T: int16 weights run the DFP16 kernel,
    # whose snapshots and input mantissas are int16 (values: test_dfp16.py).
    kernel = tf.Variable(np.ones((3, 2), np.int16))

    @tf.function
    def call(x):
        return layer_ops.dense(x, kernel, -7)

    graph = call.get_concrete_function(tf.TensorSpec([4, 3], tf.float32)).graph
    op = next(op for op in graph.get_operations() if op.type == "IntOps>Dense")
    assert op.get_attr("T") == tf.int16
    assert [output.dtype for output in op.outputs][2:] == [tf.int16, tf.int32, tf.int16, tf.int32]  # ..., mask
    y, _ = layer_ops.dense(np.full((4, 3), 0.5, np.float32), kernel, -7)
    np.testing.assert_array_equal(y.numpy(), np.full((4, 2), 1.5 * 2.0**-7, np.float32))


def test_int8_weights_give_int8_snapshots():
    kernel = tf.Variable(np.arange(6, dtype=np.int8).reshape(3, 2))

    @tf.function
    def call(x):
        return layer_ops.dense(x, kernel, -7)

    graph = call.get_concrete_function(tf.TensorSpec([4, 3], tf.float32)).graph
    op = next(op for op in graph.get_operations() if op.type == "IntOps>Dense")
    assert op.get_attr("T") == tf.int8
    assert [output.dtype for output in op.outputs][2:] == [tf.int8, tf.int32, tf.int8, tf.int32]  # ..., mask

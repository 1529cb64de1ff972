"""The traced training step is integer-only, and the backward pass keeps no float carriers.

The graph of ``model.train_step`` is listed op by op. Float arithmetic may
appear only at the documented boundaries (README, "What is integer"):
display-only loss and metrics, and Keras' loss-reduction gradient that hands
the 1/batch factor to the integer loss gradient.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
from keras_int.examples import models
from keras_models import compile_integer, digits, digits_cnn

# Ops that move, reshape, select or convert values exactly: no arithmetic.
NOT_ARITHMETIC = {
    "Identity", "IdentityN", "Reshape", "Cast", "Shape", "Const", "Placeholder", "ReadVariableOp",
    "Select", "SelectV2", "ZerosLike", "OnesLike", "Fill", "Pack", "StridedSlice", "ConcatV2",
    "GatherV2", "ExpandDims", "Squeeze", "BroadcastTo", "Tile", "StopGradient", "NoOp", "Transpose",
    "IntOps>Quantize", "IntOps>Dequantize",  # exact power-of-two conversions (carriers)
    "Bitcast",  # a carrier's bit pattern read as int32 (exponent agreement across replicas)
    "CollectiveGatherV2", "Pad",  # all_gather (and its padding) of a whole-batch op's rows across replicas
}
# Keras' loss-reduction gradient: the float 1/batch upstream of the integer loss gradient.
BOUNDARY_SCOPES = ("gradient_tape/compile_loss/",)
# IntegerCrossEntropy's check that float labels are whole class indices (it
# compares them, computes nothing from them).
LABEL_CHECK_SCOPE, LABEL_CHECK_OPS = "compile_loss/integer_cross_entropy/", {"Round", "Equal"}


def _boundary(node):
    """A documented float boundary; a replica's copy of the step (``replica_1/``) counts as the step."""
    name = re.sub(r"(^|/)replica_\d+/", r"\1", node.name)
    return name.startswith(BOUNDARY_SCOPES) or (name.startswith(LABEL_CHECK_SCOPE) and node.op in LABEL_CHECK_OPS)


def _dtype(node):
    for key in ("T", "dtype", "DstT"):
        if key in node.attr and node.attr[key].type:
            return tf.dtypes.as_dtype(node.attr[key].type)
    return None


def _train_step_graph(model, x, y, strategy=None):
    step = model.train_step
    if strategy is not None:
        def step(data):
            return strategy.run(model.train_step, args=(data,))
    concrete = tf.function(step).get_concrete_function((tf.constant(x), tf.constant(y)))
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += list(function.node_def)
    return {node.name: node for node in nodes}


def _inputs(node):
    return [name.lstrip("^").split(":")[0] for name in node.input]


def float_arithmetic_feeding_updates(model, x, y, strategy=None):
    """Float arithmetic ops on the paths that produce the integer weight updates
    (of one replica's step under `strategy`, a tf.distribute strategy)."""
    nodes = _train_step_graph(model, x, y, strategy)
    frontier = [n for n in nodes.values() if n.op in ("IntOps>SgdUpdate", "IntOps>AdamUpdate")]
    assert frontier, "no integer weight update in the training step"
    seen, found = set(), []
    while frontier:
        node = frontier.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        dtype = _dtype(node)
        if dtype is not None and dtype.is_floating and node.op not in NOT_ARITHMETIC and not _boundary(node):
            found.append(f"{node.op} {node.name}")
        frontier += [nodes[name] for name in _inputs(node) if name in nodes]
    return found, nodes


def test_training_step_has_no_undocumented_float_arithmetic():
    (x, y), _ = digits()
    model = compile_integer(digits_cnn())
    found, nodes = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    assert found == [], found
    ops = {n.op for n in nodes.values()}
    assert {"IntOps>Conv2DLayer", "IntOps>Dense", "IntOps>Conv2DBackpropFilter",
            "IntOps>MatMul", "IntOps>SoftmaxCrossEntropyGrad", "IntOps>SgdUpdate"} <= ops
    # Backprop-input of the first layer feeds nothing and is not traced.
    assert sum(n.op == "IntOps>Conv2DBackpropInput" for n in nodes.values()) <= 1


def test_16_bit_training_step_is_integer():
    """DFP16 (bits=16 conv and dense, int16 loss): the same ops at 16 bits, int64
    products and SGD on int64 gradients, and no float arithmetic."""
    (x, y), _ = digits()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras_int.layers.IntConv2D(8, 3, padding="same", bits=16),
                              keras_int.layers.IntReLU(), keras_int.layers.IntMaxPool2D(2),
                              keras_int.layers.IntFlatten(), keras_int.layers.IntDense(10, bits=16)])
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                  loss=keras_int.losses.IntegerCrossEntropy(bits=16))
    found, nodes = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    assert found == [], found
    layer_types = {n.attr["T"].type for n in nodes.values() if n.op in ("IntOps>Conv2DLayer", "IntOps>Dense")}
    assert layer_types == {tf.int16.as_datatype_enum}
    products = [n for n in nodes.values() if n.op in ("IntOps>MatMul", "IntOps>Conv2DBackpropFilter")]
    assert products and all(n.attr["Tacc"].type == tf.int64.as_datatype_enum for n in products)
    assert {n.attr["G"].type for n in nodes.values() if n.op == "IntOps>SgdUpdate"} == {tf.int64.as_datatype_enum}
    assert {n.attr["T"].type for n in nodes.values() if n.op == "IntOps>SoftmaxCrossEntropyGrad"} == {
        tf.int16.as_datatype_enum}


def small_resnet():
    """Stem, an identity block and a stride-2 block with a projection shortcut:
    every IntBatchNormalization and IntAdd wiring that ResNet-20 has."""
    return models.resnet((8, 8, 1), 10, depth=8, widths=(8, 16))


def _residual_fork_sums(found, nodes):
    """The float AddN ops in `found` that sum the two error carriers of a
    tensor read by two layers (a residual block's input: shortcut and conv1)."""
    forks = []
    for entry in found:
        op, name = entry.split(" ", 1)
        node = nodes[name]
        sources = [nodes[i].op for i in _inputs(node) if i in nodes]
        if op == "AddN" and node.attr["N"].i == 2 and set(sources) <= {"IntOps>RequantizeToCarrier", "Identity"}:
            forks.append(entry)
    return forks


def test_resnet_training_step_float_arithmetic_is_only_the_residual_fork_sums():
    """Batch norm (forward, backward, moving statistics) and IntAdd add no float
    arithmetic. What the audit finds: at each residual fork (a tensor read by
    the shortcut and by conv1) TensorFlow's gradient aggregation sums the two
    float32 error carriers with AddN. The sum of q1 * 2**e1 and q2 * 2**e2
    (int8 q) is exact in float32 while |e1 - e2| <= 16, and the next layer's
    gradient quantizes it to int8 anyway; it is float arithmetic, documented
    as boundary 5 in the README until an integer fork op replaces it."""
    (x, y), _ = digits()
    model = compile_integer(small_resnet())
    found, nodes = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    forks = _residual_fork_sums(found, nodes)
    assert len(forks) == 2, found  # the identity block's and the stride-2 block's inputs
    assert sorted(forks) == sorted(found), found
    ops = {n.op for n in nodes.values()}
    assert {"IntOps>BatchNorm", "IntOps>BatchNormGrad", "IntOps>NormMovingAverage", "IntOps>AlignedAdd",
            "IntOps>SgdUpdate"} <= ops, sorted(o for o in ops if o.startswith("IntOps>"))
    # Training normalises with the batch's statistics, never the moving ones.
    assert "IntOps>BatchNormInference" not in ops
    # gamma and beta of every batch norm are updated by IntegerSGD.
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras_int.layers.IntBatchNormalization)]
    assert len(batch_norms) == 6
    updated = {n.name for n in nodes.values() if n.op == "IntOps>SgdUpdate"}
    assert len(updated) == len(model.trainable_weights) == 6 * 2 + 6 + 1  # 6 convs, 1 dense


def test_frozen_batch_norm_training_step_is_integer():
    """Frozen batch norms (trainable=False) run in inference mode inside fit
    and pass the error back with the integer frozen backward: still no float
    arithmetic but the residual fork sums."""
    (x, y), _ = digits()
    model = small_resnet()
    for layer in model.layers:
        if isinstance(layer, keras_int.layers.IntBatchNormalization):
            layer.trainable = False
    compile_integer(model)
    found, nodes = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    assert sorted(_residual_fork_sums(found, nodes)) == sorted(found), found
    ops = {n.op for n in nodes.values()}
    assert {"IntOps>BatchNormInference", "IntOps>BatchNormFrozenGrad", "IntOps>SgdUpdate"} <= ops, sorted(ops)
    assert "IntOps>BatchNorm" not in ops and "IntOps>NormMovingAverage" not in ops
    # Every convolution, the stem's included, is still updated.
    updated = {n.name for n in nodes.values() if n.op == "IntOps>SgdUpdate"}
    assert len(updated) == len(model.trainable_weights) == 6 + 1


def layer_norm_mlp():
    return keras.Sequential([keras.Input((8, 8, 1)), keras_int.layers.IntFlatten(), keras_int.layers.IntDense(32),
                             keras_int.layers.IntLayerNormalization(), keras_int.layers.IntReLU(),
                             keras_int.layers.IntDense(10)])


def test_layer_norm_training_step_is_integer():
    """Layer norm's forward and backward add no float arithmetic; gamma and
    beta are updated by IntegerSGD; it keeps only int8 mantissas for its backward pass."""
    (x, y), _ = digits()
    model = compile_integer(layer_norm_mlp())
    found, nodes = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    assert found == [], found
    ops = {n.op for n in nodes.values()}
    assert {"IntOps>LayerNorm", "IntOps>LayerNormGrad", "IntOps>SgdUpdate"} <= ops
    assert sum(n.op == "IntOps>SgdUpdate" for n in nodes.values()) == len(model.trainable_weights) == 4
    kept, read = float_tensors_kept_for_backward(compile_integer(layer_norm_mlp()), x[:64], y[:64])
    assert kept == [], kept
    assert ("IntOps>LayerNorm", "int8") in read


def small_text_transformer():
    """Every transformer layer: token and position embeddings, IntAdd, layer
    norms, multi-head attention (integer softmax, products of two
    activations), GELU, global average pooling over the sequence."""
    return models.text_transformer(6, 20, 3)


def _carrier_fork_sums(found, nodes):
    """The float AddN ops in `found` whose inputs are all error carriers (an
    integer gradient's output, passed on unchanged, reshaped, or as a replica's
    rows of a whole-batch gradient): TensorFlow's sum of the errors of a tensor
    read by several layers."""
    carriers = ("Identity", "Reshape", "StridedSlice", "IntOps>RequantizeToCarrier")
    forks = []
    for entry in found:
        op, name = entry.split(" ", 1)
        sources = [nodes[i].op for i in _inputs(nodes[name]) if i in nodes]
        if op == "AddN" and all(s in carriers or (s.startswith("IntOps>") and s.endswith("Grad")) for s in sources):
            forks.append(entry)
    return forks


def test_transformer_training_step_is_integer():
    """The only float arithmetic is boundary 5 (README): the sums of error
    carriers at forks, here the pre-norm residuals (a block's input read by
    its layer norm and its add, twice) and self-attention's input (read by
    the query, key and value projections)."""
    rng = np.random.default_rng(0)
    ids, labels = rng.integers(0, 20, (32, 6)).astype(np.int32), rng.integers(0, 3, 32)
    model = compile_integer(small_text_transformer())
    found, nodes = float_arithmetic_feeding_updates(model, ids, labels)
    forks = _carrier_fork_sums(found, nodes)
    assert sorted(forks) == sorted(found) and len(forks) == 3, found
    ops = {n.op for n in nodes.values()}
    assert {"IntOps>Embedding", "IntOps>EmbeddingGrad", "IntOps>LayerNorm", "IntOps>LayerNormGrad",
            "IntOps>BatchMatMul", "IntOps>Softmax", "IntOps>SoftmaxGrad", "IntOps>Gelu", "IntOps>GeluGrad",
            "IntOps>AlignedAdd", "IntOps>SgdUpdate"} <= ops, sorted(o for o in ops if o.startswith("IntOps>"))
    updated = sum(n.op == "IntOps>SgdUpdate" for n in nodes.values())
    assert updated == len(model.trainable_weights), (updated, len(model.trainable_weights))
    kept, read = float_tensors_kept_for_backward(compile_integer(small_text_transformer()), ids, labels)
    assert kept == [], kept
    assert ("IntOps>Softmax", "int8") in read and ("IntOps>Gelu", "int8") in read


def test_audit_catches_float_arithmetic():
    (x, y), _ = digits()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras_int.layers.IntFlatten(),
                              keras.layers.Dense(16), keras_int.layers.IntDense(10)])
    compile_integer(model)
    found, _ = float_arithmetic_feeding_updates(model, x[:64], y[:64])
    assert any(entry.startswith("MatMul") for entry in found), found


def _ancestors(ops):
    seen, frontier = set(), list(ops)
    while frontier:
        op = frontier.pop()
        if op in seen:
            continue
        seen.add(op)
        frontier += [t.op for t in op.inputs] + list(op.control_inputs)
    return seen


def float_tensors_kept_for_backward(model, x, y):
    """Float tensors of the forward pass that the backward pass reads.

    Forward: the ancestors of the (display) loss and the loss' own forward
    ops. Backward: the ops that lead
    to the weight updates and are not forward ops. The loss-reduction
    gradient (the documented 1/batch boundary) is left aside.
    """
    concrete = tf.function(model.train_step).get_concrete_function((tf.constant(x), tf.constant(y)))
    ops = concrete.graph.get_operations()
    # The loss' own forward part (quantizing the logits) is forward too.
    forward = _ancestors(op for op in ops if op.type == "SparseSoftmaxCrossEntropyWithLogits"
                         or op.name.startswith("compile_loss/"))
    backward = _ancestors(op for op in ops if op.type == "IntOps>SgdUpdate") - forward
    kept, read = [], set()
    for op in backward:
        if op.name.startswith(BOUNDARY_SCOPES) or op.type in ("Shape", "Size", "Rank"):
            continue  # shapes are read when the forward runs, not kept
        for tensor in op.inputs:
            source = tensor.op
            if source not in forward or source.type in ("Const", "Shape"):
                continue
            read.add((source.type, tensor.dtype.name))
            if tensor.dtype.is_floating:
                kept.append(f"{op.name} reads {tensor.name} ({source.type})")
    return kept, read


def test_backward_pass_keeps_no_float_carriers():
    (x, y), _ = digits()
    kept, read = float_tensors_kept_for_backward(compile_integer(digits_cnn()), x[:64], y[:64])
    assert kept == [], kept
    # What the integer gradients do keep: int8 mantissas from the layer ops.
    assert ("IntOps>Conv2DLayer", "int8") in read and ("IntOps>Dense", "int8") in read


def test_resnet_backward_pass_keeps_no_float_carriers():
    (x, y), _ = digits()
    kept, read = float_tensors_kept_for_backward(compile_integer(small_resnet()), x[:64], y[:64])
    assert kept == [], kept
    assert ("IntOps>BatchNorm", "int8") in read and ("IntOps>BatchNorm", "int32") in read


def test_carrier_check_catches_a_float_layer():
    (x, y), _ = digits()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras_int.layers.IntFlatten(),
                              keras.layers.Dense(16), keras_int.layers.IntDense(10)])
    kept, _ = float_tensors_kept_for_backward(compile_integer(model), x[:64], y[:64])
    assert kept, "a float Dense layer keeps its float input for its gradient"

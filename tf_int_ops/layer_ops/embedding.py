"""Embedding lookups on int8 tables (keras_int.layers.IntEmbedding,
IntPositionEmbedding) and their integer table gradient (docs/algorithms.md
section 12)."""

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops, replicas
from tf_int_ops.layer_ops import _op_args, _weighted


def embedding(ids, table, table_exponent, error_exponent=None):
    """Rows ``table[ids]`` as a float32 carrier ``[..., dim]`` at the table's exponent (exact).

    Args:
      ids: int32 or int64 tensor; every id in ``[0, vocab)`` (else an error
        naming the first bad one).
      table: int8 variable ``[vocab, dim]``, read through its handle.
      table_exponent: int32 scalar.
      error_exponent: optional scalar int32 variable in which the backward
        pass records the exponent of the error reaching the output.
    Returns:
      ``(y, y_exponent)``. The gradient of ``table`` is int32 ``[vocab,
      dim]``: the quantized errors of the looked-up rows added into their
      ids' rows.

    >>> table = tf.Variable(tf.ones([10, 4], tf.int8))
    >>> y, e = embedding(tf.constant([[1, 2, 2]]), table, -7)   # [1, 3, 4]
    """
    fn = "embedding"
    ids = tf.convert_to_tensor(ids)
    if ids.dtype not in (tf.int32, tf.int64):
        raise ValueError(f"{fn}: ids must be int32 or int64, got {ids.dtype.name}")
    variable = _weighted.resource_variable(table, "table", fn, (tf.int8,))
    if variable.shape.rank != 2:
        raise ValueError(f"{fn}: table must be a matrix [vocab, dim], got shape {variable.shape}")
    out = _loader.load().int_ops_embedding(ids, _tf_internal.resource_handle(variable), check.exponent(table_exponent, fn, "table_exponent"),
                                           _weighted.error_exponents(error_exponent, fn))
    y = out.y
    y.set_shape(ids.shape.concatenate(variable.shape[1:]))  # the op's shape function cannot see the table
    return y, out.y_exponent


@tf.RegisterGradient("IntOps>Embedding")
def _embedding_grad(op, dy, *unused_output_grads):
    inputs = _op_args.inputs(op)
    if replicas.count() == 1:
        grad = _loader.load().int_ops_embedding_grad(dy, inputs["ids"], _vocab(op))
        dtable, err_exponent = grad.dtable, grad.err_exponent
    else:
        dtable, err_exponent = _agreed_table_gradient(dy, inputs["ids"], _vocab(op))
    for variable in inputs["error_exponent"]:
        tf.raw_ops.AssignVariableOp(resource=variable, value=err_exponent)
    return _op_args.gradients(op, table=dtable)


def _agreed_table_gradient(dy, ids, vocab):
    """EmbeddingGrad with the error exponent agreed across replicas.

    The error is quantized at the agreed exponent E and handed to the kernel
    as the exact carrier of those mantissas: the kernel's own quantize then
    reads it at E or a finer exponent e' (a smaller local maximum), where the
    mantissas are those at E times 2**(E - e'), so the int32 table sums are
    shifted right by E - e' exactly (an all-zero local error gives zeros).
    """
    err, exponent = replicas.quantize(dy)
    grad = _loader.load().int_ops_embedding_grad(ops.dequantize(err, exponent), ids, vocab)
    finer = tf.maximum(exponent - grad.err_exponent, 0)
    return tf.bitwise.right_shift(grad.dtable, finer), exponent


def _vocab(op):
    """The table's first dimension, from the variable the op read."""
    handle = _op_args.inputs(op)["table"]
    shape = tf.raw_ops.VariableShape(input=handle, out_type=tf.int64)
    return shape[0]


tf.no_gradient("IntOps>EmbeddingGrad")

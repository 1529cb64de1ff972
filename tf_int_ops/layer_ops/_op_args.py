"""An op's inputs and outputs by the names its ``REGISTER_OP`` gives them.

Gradient functions receive a ``tf.Operation`` whose inputs and outputs are
flat lists: positions shift whenever an op gains an input (a list input such
as ``bias: N * resource`` even changes length with an attribute). Reading
them by name from the op's definition keeps the Python gradients in step with
``cc/ops`` without counting positions by hand.
"""

from tf_int_ops import _tf_internal


def _arg_lengths(op, args):
    """(name, length or None for a single tensor) of each argument, in order."""
    lengths = []
    for arg in args:
        if arg.number_attr:
            lengths.append((arg.name, op.get_attr(arg.number_attr)))
        elif arg.type_list_attr:
            lengths.append((arg.name, len(op.get_attr(arg.type_list_attr))))
        else:
            lengths.append((arg.name, None))
    return lengths


def _by_name(op, args, tensors):
    named, position = {}, 0
    for name, length in _arg_lengths(op, args):
        if length is None:
            named[name] = tensors[position]
            position += 1
        else:
            named[name] = list(tensors[position:position + length])
            position += length
    return named


def inputs(op):
    """``{input name: tensor, or list of tensors for a list input}``."""
    return _by_name(op, _tf_internal.op_def(op.type).input_arg, list(op.inputs))


def outputs(op):
    """``{output name: tensor, or list of tensors for a list output}``."""
    return _by_name(op, _tf_internal.op_def(op.type).output_arg, list(op.outputs))


def gradients(op, **by_name):
    """The gradient list TensorFlow expects (one entry per input, in order), from
    gradients given by input name; inputs not named get None (a list input
    gets a list of Nones, or the list given for it, which must have its
    length). An unknown name is an error, so a renamed input cannot be
    silently left without its gradient.
    """
    lengths = _arg_lengths(op, _tf_internal.op_def(op.type).input_arg)
    unknown = set(by_name) - {name for name, _ in lengths}
    if unknown:
        raise ValueError(f"{op.type}: no inputs named {sorted(unknown)}; its inputs are "
                         f"{[name for name, _ in lengths]}")
    result = []
    for name, length in lengths:
        given = by_name.get(name)
        if length is None:
            result.append(given)
        else:
            given = [None] * length if given is None else list(given)
            if len(given) != length:
                raise ValueError(f"{op.type}: {len(given)} gradients for the {length} '{name}' inputs")
            result.extend(given)
    return result

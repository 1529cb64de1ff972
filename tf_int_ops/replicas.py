"""Agreement across the replicas of a tf.distribute strategy (docs/algorithms.md 17).

Integer sums are exact in any order, so N replicas with B/N rows each can
compute exactly what one device computes with B rows, if every decision one
device takes over the whole batch is taken over all replicas' rows. There
are two kinds of such decisions in keras-int:

* the shared exponent of a tensor: quantize (``max|x|``, and whether every
  value is a multiple of the next power of two) and requantize
  (``bit_length(max|acc|)``). Each replica computes its statistics as
  integers, the replicas gather them (one ``all_gather`` of a few int32s)
  and reduce them to the batch's: a maximum, or a minimum. The op then runs
  on the local rows together with one or two *sentinel* elements standing
  for the other replicas' rows (the batch's largest magnitude, and a value
  with the batch's lowest set bit), so that the same kernel takes exactly
  the decision it takes on one device; the sentinels are cut off its output.
* the sums over the batch (weight gradients): exact int64 all-reduces
  (``sum_exactly``), with an error where a sum leaves its type.

The ops whose kernels decide from quantities that depend on every row
(batch norm's statistics; the output and error shifts of layer norm, GELU
and softmax; a normalisation's gamma-gradient shift) run on the whole
batch instead (``on_whole_batch``): each replica gathers the batch's rows,
runs the unchanged single-device kernel and keeps its own rows.

Outside a replica context, or with one replica, every function here is the
plain single-device computation.

>>> q, e = quantize(x)                  # the exponent all replicas agree on
>>> y, e = requantize_to_carrier(acc, acc_exponent)
"""

import contextlib
import threading

import tensorflow as tf

from tf_int_ops import _loader, _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import ops

# The lowest-set-bit statistic of a tensor with no normal value: "no set
# bit", above any float's lowest set bit exponent.
_NO_BIT = 1 << 30
_MAGNITUDE_MASK = 0x7FFFFFFF
_SMALLEST_NORMAL_BITS = 0x00800000
_FRACTION_BITS = 23
_EXPONENT_BIAS = 127


# Set inside the forward and backward functions of on_whole_batch: there each
# replica computes the whole batch, as one device. Per thread: MirroredStrategy
# runs (and traces) each replica in a thread of its own.
_one_device = threading.local()


@contextlib.contextmanager
def _as_one_device():
    previous = getattr(_one_device, "active", False)
    _one_device.active = True
    try:
        yield
    finally:
        _one_device.active = previous


def _context():
    """The replica context when it has more than one replica in sync, else None."""
    if getattr(_one_device, "active", False):
        return None
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def count():
    """The replicas in sync in the current replica context (1 outside one).

    >>> count()   # 2 inside strategy.run of a MirroredStrategy on two devices
    """
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def agree_max(values):
    """The element-wise maximum over all replicas of an int32 vector (itself with one replica).

    One ``all_gather``: tf.distribute has no MAX all-reduce.
    """
    values = tf.convert_to_tensor(values, tf.int32)
    context = _context()
    if context is None:
        return values
    return tf.reduce_max(context.all_gather(values[tf.newaxis], axis=0), axis=0)


def _quantize_statistics(x):
    """[the bit pattern of max|x|, -(the lowest set bit's exponent over x's normal values)],
    in integers on x's bit patterns (both combine across replicas by a maximum)."""
    magnitude = tf.bitwise.bitwise_and(tf.bitcast(tf.reshape(x, [-1]), tf.int32), _MAGNITUDE_MASK)
    max_bits = tf.reduce_max(tf.concat([magnitude, [0]], 0))
    normal = magnitude >= _SMALLEST_NORMAL_BITS
    significand = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(magnitude, (1 << _FRACTION_BITS) - 1),
                                        1 << _FRACTION_BITS)
    # Trailing zeros of the significand: popcount(lowest set bit - 1).
    lowest = tf.bitwise.bitwise_and(significand, -significand)
    trailing = tf.cast(tf.raw_ops.PopulationCount(x=lowest - 1), tf.int32)
    exponent = tf.bitwise.right_shift(magnitude, _FRACTION_BITS) - (_EXPONENT_BIAS + _FRACTION_BITS)
    lowest_bit = tf.where(normal, exponent + trailing, _NO_BIT)
    return tf.stack([max_bits, -tf.reduce_min(tf.concat([lowest_bit, [_NO_BIT]], 0))])


def _float_with_lowest_bit(lowest_bit):
    """A normal float32 whose lowest set bit is 2**lowest_bit (0 for _NO_BIT), as its bit pattern:
    2**lowest_bit where that is normal, else the smallest normal plus it."""
    normal_power = tf.bitwise.left_shift(lowest_bit + _EXPONENT_BIAS, _FRACTION_BITS)
    below_normal = _SMALLEST_NORMAL_BITS + tf.bitwise.left_shift(
        1, tf.clip_by_value(lowest_bit + _EXPONENT_BIAS + _FRACTION_BITS - 1, 0, _FRACTION_BITS - 1))
    pattern = tf.where(lowest_bit >= 1 - _EXPONENT_BIAS, normal_power, below_normal)
    return tf.where(lowest_bit >= _NO_BIT, 0, pattern)


def quantize(x, bits=8):
    """``ops.quantize`` with the exponent one device would choose for all replicas' rows.

    The batch's statistics (largest magnitude; lowest set bit, which decides
    whether a power-of-two maximum may take the next exponent) are agreed
    and enter the quantize kernel as two sentinel elements.
    """
    if _context() is None:
        return ops.quantize(x, bits=bits)
    x = check.tensor(x, tf.float32, "x", "quantize")
    agreed = agree_max(_quantize_statistics(x))
    sentinels = tf.bitcast(tf.stack([agreed[0], _float_with_lowest_bit(-agreed[1])]), tf.float32)
    q, exponent = ops.quantize(tf.concat([tf.reshape(x, [-1]), sentinels], 0), bits=bits)
    return tf.reshape(q[:-2], tf.shape(x)), exponent


def requantize_to_carrier(acc, exponent, rounding="nearest", seed=None, bits=8):
    """RequantizeToCarrier (an int32/int64 accumulator -> a carrier of `bits`-bit mantissas)
    with the shift one device would choose for all replicas' rows: the largest
    ``bit_length`` is agreed and enters the kernel as a sentinel element
    ``-2**(bit_length - 1)``."""
    raw = _loader.load()
    seed = check.seed(seed, rounding, "requantize")
    if _context() is None:
        return raw.int_ops_requantize_to_carrier(acc, exponent, seed, bits=bits, rounding=rounding)
    # Stochastic rounding draws by element index: each replica keys its own
    # stream, so that the replicas' rows do not share their random bits.
    seed = tf.bitwise.bitwise_xor(seed, tf.stack([tf.cast(index(), tf.int64), tf.constant(0, tf.int64)]))
    bit_length = agree_max(ops.bit_length(acc)[tf.newaxis])[0]
    sentinel = tf.where(bit_length > 0,
                        -tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.cast(bit_length, tf.int64) - 1), 0)
    flat = tf.concat([tf.reshape(acc, [-1]), [tf.cast(sentinel, acc.dtype)]], 0)
    y, y_exponent = raw.int_ops_requantize_to_carrier(flat, exponent, seed, bits=bits, rounding=rounding)
    return tf.reshape(y[:-1], tf.shape(acc)), y_exponent


def aligned_add_to_carrier(a, a_exponent, b, b_exponent, rounding="nearest", seed=None):
    """``int_add`` as a carrier (AlignedAdd, then RequantizeToCarrier), agreed across replicas.

    AlignedAdd reads its data once: when the exponents are too far apart to
    align exactly, whether the operand with the larger exponent is all zero.
    Each operand gets a sentinel element, 1 where that operand is non-zero on
    some replica, else 0, so the kernel's test answers for the whole batch;
    the sentinels' sum is cut off before the agreed requantize.
    """
    a, b, dtype, acc_dtype = check.product_operands(a, b, "int_add", "a", "b")
    raw = _loader.load()
    bits = dtype.size * 8
    if _context() is None:
        acc, acc_exponent = raw.int_ops_aligned_add(a, a_exponent, b, b_exponent, Tacc=acc_dtype)
        return requantize_to_carrier(acc, acc_exponent, rounding, seed, bits)[0]
    nonzero = agree_max(tf.stack([tf.cast(tf.reduce_any(tf.not_equal(t, 0)), tf.int32) for t in (a, b)]))
    acc, acc_exponent = raw.int_ops_aligned_add(
        tf.concat([tf.reshape(a, [-1]), tf.cast(nonzero[:1], dtype)], 0), a_exponent,
        tf.concat([tf.reshape(b, [-1]), tf.cast(nonzero[1:], dtype)], 0), b_exponent, Tacc=acc_dtype)
    y, _ = requantize_to_carrier(tf.reshape(acc[:-1], tf.shape(a)), acc_exponent, rounding, seed, bits)
    return y


def sum_exactly(tensors):
    """The sums over all replicas of a list of int32/int64 tensors, exactly.

    One int64 all-reduce of all of them, concatenated. int32 sums must fit
    int32 (else an error: one device's int32 sum would not fit either);
    int64 summands must leave room for the sum (their agreed bit length
    plus log2 of the replicas below 63), else an error.
    """
    context = _context()
    if context is None or not tensors:
        return list(tensors)
    replicas = context.num_replicas_in_sync
    wide = [t for t in tensors if t.dtype == tf.int64]
    checks = []
    if wide:
        bit_length = agree_max(tf.stack([ops.bit_length(t) for t in wide]))
        checks.append(tf.debugging.assert_less_equal(
            tf.reduce_max(bit_length) + (replicas - 1).bit_length(), 63,
            message="sum over replicas: an int64 gradient is too large to sum exactly in int64"))
    flat = tf.concat([tf.reshape(tf.cast(t, tf.int64), [-1]) for t in tensors], 0)
    with tf.control_dependencies(checks):
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, flat)
    sums, offset = [], 0
    for t in tensors:
        size = tf.size(t, out_type=tf.int64) if t.shape.num_elements() is None else t.shape.num_elements()
        part = tf.reshape(total[offset:offset + size], tf.shape(t))
        offset = offset + size
        if t.dtype == tf.int32:
            part = int32_exactly(part, "sum over replicas: an int32 gradient sum leaves int32 (as it would on "
                                       "one device)")
        sums.append(part)
    return sums


def int32_exactly(values, message):
    """int64 `values` as int32, or an error with `message` where one leaves int32."""
    fits = tf.debugging.assert_less_equal(
        tf.reduce_max(tf.abs(tf.concat([tf.reshape(values, [-1]), [0]], 0))), tf.constant(2**31 - 1, tf.int64),
        message=message)
    with tf.control_dependencies([fits]):
        return tf.cast(values, tf.int32)


def index():
    """This replica's index among the replicas in sync (0 outside a replica context)."""
    context = _context()
    return 0 if context is None else context.replica_id_in_sync_group


def _row_range(rows, context):
    """Where this replica's `rows` rows lie among all replicas' (in replica order):
    ``(begin, end)``; replicas may hold different numbers, none included."""
    counts = context.all_gather(rows[tf.newaxis], axis=0)
    begin = tf.reduce_sum(counts[:context.replica_id_in_sync_group])
    return begin, begin + rows


def _gather(tensors, context):
    """All replicas' rows (axis 0) of each tensor, concatenated in replica order.
    bool tensors travel as int32 (collectives have no bool)."""
    gathered = []
    for t in tensors:
        if t.dtype == tf.bool:
            whole = tf.cast(context.all_gather(tf.cast(t, tf.int32), axis=0), tf.bool)
        else:
            whole = context.all_gather(t, axis=0)
        whole.set_shape(tf.TensorShape([None]).concatenate(t.shape[1:]))  # all_gather drops it
        gathered.append(whole)
    return gathered


def _own_rows(whole, begin, end, rows):
    """Rows [begin, end) of `whole`, with `rows` rows as far as known statically."""
    own = whole[begin:end]
    own.set_shape(tf.TensorShape(rows).concatenate(whole.shape[1:]))
    return own


def on_whole_batch(forward, backward, rows, shared=(), fn="layer op"):
    """Runs a layer op on all replicas' rows, so that it takes every decision one
    device takes over the batch, and keeps this replica's rows.

    For the ops whose kernels decide inside (normalisation statistics, the
    exponents of GELU's and softmax's results and errors, the shifts of a
    normalisation's gamma gradient) and for sums over the batch (the error of
    an operand broadcast along it): every replica gathers the batch's rows,
    runs the single-device computation on them (``forward`` and ``backward``
    run as on one device: no agreement inside) and slices its own rows out;
    the backward pass gathers the errors the same way. The ``shared`` inputs
    (weights' resource handles, operands without a batch axis) are the same
    on every replica; each replica computes their whole-batch gradients, and
    the first hands them on while the others hand on zeros, so that a sum
    over the replicas (``sum_exactly`` for weights) gives them once.

    forward(whole_rows, shared) -> (row_outputs, batch_outputs, saved);
    backward(whole_row_output_grads, saved) -> (whole_row_input_grads (None
    for a non-differentiable input), shared_grads).
    Returns this replica's row outputs followed by the batch outputs.
    """
    rows = [tf.convert_to_tensor(t) for t in rows]
    if rows[0].shape.rank is not None and rows[0].shape.rank < 2:
        raise ValueError(f"{fn}: under a tf.distribute strategy the input needs a batch axis (rank >= 2), got "
                         f"shape {rows[0].shape}")
    count_rows, count_shared = len(rows), len(shared)

    context = _context()

    @tf.custom_gradient
    def run(*args):
        begin, end = _row_range(tf.shape(args[0])[0], context)
        whole = _gather(args[:count_rows], context)
        with _as_one_device():
            row_outputs, batch_outputs, saved = forward(whole, args[count_rows:])

        def grad(*output_grads):
            whole_grads = _gather(output_grads[:len(row_outputs)], context)
            with _as_one_device():
                row_grads, shared_grads = backward(whole_grads, saved)
            first = tf.equal(index(), 0)
            shared_grads = [None if g is None else tf.where(first, g, tf.zeros_like(g)) for g in shared_grads]
            row_grads = [None if g is None else _own_rows(g, begin, end, rows[0].shape[:1]) for g in row_grads]
            return row_grads + shared_grads + [None] * (count_shared - len(shared_grads))

        return [_own_rows(t, begin, end, rows[0].shape[:1]) for t in row_outputs] + list(batch_outputs), grad

    return run(*rows, *shared)


def _workers(strategy):
    """The worker (and chief) tasks of a multi-worker strategy's cluster; 1 for other strategies."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(job, ())) for job in ("chief", "worker"))


def _local_integer_variable(next_creator, **kwargs):
    """Creates an int8/int16 variable under MultiWorkerMirroredStrategy.

    The strategy broadcasts every initial value from the chief with
    ``CollectiveBcastSend``, which has no int8 or int16 type. The value is
    broadcast as int32 instead (through the strategy, as a temporary int32
    variable) and the int8/int16 variable is a plain one on this worker's
    device: each worker holds one replica, and every replica applies the
    same integer update (``sum_exactly``), so the workers' copies stay equal
    without mirroring.
    """
    dtype = tf.as_dtype(kwargs.get("dtype") or tf.int8)
    if dtype not in (tf.int8, tf.int16):
        return next_creator(**kwargs)
    initial = kwargs["initial_value"]
    initial = initial() if callable(initial) else initial
    broadcast = next_creator(**{**kwargs, "initial_value": tf.cast(initial, tf.int32), "dtype": tf.int32,
                                "trainable": False, "name": f"{kwargs.get('name') or 'integer'}_broadcast"})
    device = tf.distribute.get_strategy().extended.worker_devices[0]
    with tf.device(device):
        return _tf_internal.local_variable(**{**kwargs, "initial_value": tf.cast(broadcast.read_value(), dtype),
                                              "dtype": dtype})


def integer_variable_scope():
    """A context in which the current strategy can create int8/int16 variables.

    >>> with integer_variable_scope():
    ...     kernel = tf.Variable(tf.zeros([3, 3], tf.int8))
    """
    if _workers(tf.distribute.get_strategy()) > 1:
        return tf.variable_creator_scope(_local_integer_variable)
    return contextlib.nullcontext()


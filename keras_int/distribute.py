"""Training keras_int models with tf.distribute.

MirroredStrategy (the GPUs or devices of one machine) needs nothing: build
and compile the model in ``strategy.scope()`` and call ``fit``,
``evaluate`` and ``predict`` as usual (README, "Scaling out"). The
exponents are agreed across replicas and the gradients summed exactly
(tf_int_ops.replicas and the integer optimizers), so N replicas train
bit-identically to one device.

Several machines: ``keras_int.distribute.MultiWorkerMirroredStrategy``
in place of TensorFlow's, for the reason in its docstring.
"""

import tensorflow as tf


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's MultiWorkerMirroredStrategy with the reductions Keras' ``fit`` asks of it.

    Keras 3.15's ``fit`` / ``evaluate`` / ``predict`` fail under TensorFlow's
    strategy with more than one worker, for float models too: they reduce
    the first batch as one nested value (``strategy.reduce`` does not take
    nests: a TODO in TensorFlow) and the per-step losses and metrics, which
    are scalars, along ``axis=0``. This subclass reduces a nest element by
    element and a scalar across replicas only; everything else is
    TensorFlow's (arguments, TF_CONFIG, collectives). keras_int's int8/int16
    weights, which TensorFlow cannot broadcast from the chief, are created
    by tf_int_ops.replicas.integer_variable_scope.

    >>> strategy = keras_int.distribute.MultiWorkerMirroredStrategy()   # workers from TF_CONFIG
    >>> with strategy.scope():
    ...     model = keras.Sequential([...]); model.compile(...)
    >>> model.fit(x, y, batch_size=64 * strategy.num_replicas_in_sync)
    """

    def reduce(self, reduce_op, value, axis=None):
        if not isinstance(value, tf.distribute.DistributedValues) and tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        component = value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value
        if axis is not None and tf.convert_to_tensor(component).shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)

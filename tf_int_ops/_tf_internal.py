"""Every use of private TensorFlow and Keras API, in one place, and the version guard.

Each function says why it is needed and what the public alternative is, if
any, so that a TensorFlow or Keras upgrade is checked here first (and the
guard warns when the installed versions are not the tested ones).
"""

import importlib.metadata
import os
import sys
import warnings

import tensorflow as tf
from tensorflow.python.eager import tape as _tape
from tensorflow.python.framework import op_def_registry as _op_def_registry
from tensorflow.python.framework import ops as _framework_ops

# The versions the project is tested with (requirements.txt, constraints.txt):
# any patch release of these.
TESTED_TENSORFLOW = "2.21"
TESTED_KERAS = "3.15"
# Set to 1 to silence the warning about untested versions.
SKIP_VERSION_CHECK_ENV = "TF_INT_OPS_SKIP_VERSION_CHECK"


class UntestedVersionWarning(UserWarning):
    """TensorFlow or Keras is not a version tf_int_ops / keras_int were tested with."""


def _minor(version):
    return ".".join(str(version).split("+")[0].split(".")[:2])


def _keras_version():
    """The Keras version in use (the imported module's, else the installed one), or None."""
    keras = sys.modules.get("keras")
    if keras is not None and getattr(keras, "__version__", None):
        return keras.__version__
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions(tensorflow_version=None, keras_version=None):
    """Warns (UntestedVersionWarning) when TensorFlow or Keras is outside the tested versions.

    A warning, not an error, so that other versions can be tried; the private
    API below is what is most likely to break. ``TF_INT_OPS_SKIP_VERSION_CHECK=1``
    silences it. Returns the list of problems (empty when the versions are tested).
    """
    if os.environ.get(SKIP_VERSION_CHECK_ENV, "") not in ("", "0"):
        return []
    tensorflow_version = tf.__version__ if tensorflow_version is None else tensorflow_version
    keras_version = _keras_version() if keras_version is None else keras_version
    problems = []
    if _minor(tensorflow_version) != TESTED_TENSORFLOW:
        problems.append(f"TensorFlow {tensorflow_version} (tested: {TESTED_TENSORFLOW}.x)")
    if keras_version is not None and _minor(keras_version) != TESTED_KERAS:
        problems.append(f"Keras {keras_version} (tested: {TESTED_KERAS}.x)")
    if problems:
        warnings.warn(
            f"tf_int_ops/keras_int are tested with TensorFlow {TESTED_TENSORFLOW}.x and Keras "
            f"{TESTED_KERAS}.x, but found {' and '.join(problems)}. They may work; the op library "
            "must be rebuilt for the installed TensorFlow (`make build`), and the private "
            "TensorFlow/Keras API they use (tf_int_ops/_tf_internal.py) may have changed. Set "
            f"{SKIP_VERSION_CHECK_ENV}=1 to silence this warning.",
            UntestedVersionWarning, stacklevel=3)
    return problems


def variable_accessed(variable):
    """Tells the active gradient tapes that `variable` was read.

    Why: the layer ops read their int8 weights through the resource handle
    inside the op (so the forward pass sees the weights under the variable's
    lock and the gradient can be the int32 weight gradient); the tape must
    count the variable as a source, as reading it with ``read_value`` would.
    Public alternative: ``tape.watch(variable)``, which needs the tape object
    (Keras' train step owns it), or passing ``variable.read_value()`` to the
    op, which copies the weights into a tensor every step.
    """
    _tape.variable_accessed(variable)


def flatten_layers(model):
    """Every layer inside `model`, recursively, not `model` itself, in Keras' order.

    Why: ExponentTracker reads the exponent variables of nested layers too.
    Public alternative: none recursive in Keras 3 (``model.layers`` lists the
    top level only).
    """
    return model._flatten_layers(include_self=False, recursive=True)


def layer_own_variables(layer):
    """The variables a layer creates itself, in the order Keras saves and loads them.

    Why: the layers check the values ``load_own_variables`` hands over; the
    store's keys are indices into this list (as in Keras'
    ``Layer.load_own_variables``). Public alternative: none
    (``layer.weights`` adds sub-layers' and filters some variables).
    """
    return layer._trainable_variables + layer._non_trainable_variables


def optimizer_variable_index(optimizer, variable):
    """The index of `variable` among the optimizer's variables, or None if it does not update it.

    Why: IntegerSGD keeps per-variable slots (masters, momenta, gradient bit
    widths) in lists indexed like Keras' built-in optimizers do. Public
    alternative: none (Keras' own optimizers use these protected members).
    """
    key = optimizer._var_key(variable)
    if key not in optimizer._trainable_variables_indices:
        return None
    return optimizer._trainable_variables_indices[key]


def optimizer_variable(optimizer, index):
    """The variable at `index` (optimizer_variable_index) as the optimizer was
    built with it.

    Why: under TensorFlow, Keras hands update_step the backing tf.Variable,
    not the Keras variable on which a layer set attributes. Public
    alternative: none.
    """
    return optimizer._trainable_variables[index]


def gradient_registration(op_type):
    """``"gradient"`` if `op_type` has a registered gradient function, ``"none"`` if it
    is declared gradient-free (``tf.no_gradient``), ``"missing"`` otherwise.

    Why: tests/test_gradient_registry.py checks that no op of the library is
    forgotten. Public alternative: none (TensorFlow exposes registering, not
    looking up; ``tf.RegisterGradient`` only fails on a second registration).
    """
    try:
        function = _framework_ops._gradient_registry.lookup(op_type)
    except LookupError:
        return "missing"
    return "none" if function is None else "gradient"


def op_def(op_type):
    """The registered OpDef (inputs, outputs, attributes) of an op type.

    Why: gradient functions read an op's inputs and outputs by the names
    REGISTER_OP gives them (tf_int_ops.layer_ops._op_args); in eager mode
    they receive a stand-in for the operation without ``op_def``.
    Public alternative: ``tf.Operation.op_def`` on graph operations only.
    """
    return _op_def_registry.get(op_type)


def resource_handle(variable):
    """The resource handle the layer ops read `variable` through.

    Why: a tf.distribute variable (MirroredVariable, ...) has one component
    per device and gives its ``handle`` only inside a replica context (the
    current replica's component). Keras also calls layers in the cross-replica
    context (building a model symbolically, ``predict`` outside
    ``strategy.run``), where the component on the current device (or the
    primary one) is what the op must read. Public alternative: none
    (``strategy.experimental_local_results`` lists the components but not
    which one is on the current device).
    """
    if isinstance(variable, tf.distribute.DistributedValues) and tf.distribute.in_cross_replica_context():
        return variable._get_on_device_or_primary().handle
    return variable.handle


def local_variable(**kwargs):
    """A plain resource variable, made without the variable creators in scope.

    Why: under MultiWorkerMirroredStrategy, the strategy's creator broadcasts
    initial values with CollectiveBcastSend, which has no int8/int16 type
    (tf_int_ops.replicas.integer_variable_scope). Public alternative: none
    (``tf.Variable`` always goes through the creators in scope).
    """
    from tensorflow.python.ops import resource_variable_ops

    keep = ("initial_value", "trainable", "name", "dtype", "constraint", "synchronization", "aggregation",
            "shape", "caching_device", "validate_shape")
    return resource_variable_ops.ResourceVariable(**{k: v for k, v in kwargs.items() if k in keep})


def local_value(value):
    """The one local replica's component of a strategy's per-replica value (the value itself otherwise).

    Why: a worker's own variable (``local_variable``) is updated in the
    cross-replica context, where its gradient is a Mirrored value of the
    worker's single device. Public alternative:
    ``strategy.experimental_local_results(value)[0]``, which needs the strategy.
    """
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value

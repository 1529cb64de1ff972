"""IntegerSGD (NITI's integer weight update) and IntegerAdam inside Keras' optimizer API."""

import keras
import tensorflow as tf

import tf_int_ops
from keras_int import _checkpoint
from tf_int_ops import _tf_internal
from tf_int_ops import _validation as check
from tf_int_ops import replicas


def niti_mu_schedule(total_steps, values=(5, 4, 3)):
    """NITI's update-bit-width schedule: 5, then 4 at 50 % and 3 at 75 % of training.

    >>> IntegerSGD(mu_schedule=niti_mu_schedule(total_steps=200 * 196))
    """
    boundaries = [int(total_steps * 0.5), int(total_steps * 0.75)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, list(values))


@keras.saving.register_keras_serializable(package="keras_int")
class DoublingDecay(keras.optimizers.schedules.LearningRateSchedule):
    """An integer step size (IntegerSGD's mu, IntegerAdam's step_bits) that
    drops by one each time training doubles in length: ``initial`` for the
    first ``first_decay_steps`` steps, ``initial - 1`` up to 3x that,
    ``initial - 2`` up to 7x, ..., never below ``minimum``. A step halving
    per doubling of the step count is the classic 1/t decay in powers of two;
    unlike ``niti_mu_schedule`` it needs no run length (docs/algorithms.md 6).

    >>> IntegerSGD(mu_schedule=DoublingDecay(initial=5, first_decay_steps=128, minimum=3))
    """

    def __init__(self, initial, first_decay_steps, minimum):
        self.initial = check.int_in(initial, "initial", "DoublingDecay", -30, 30)
        self.first_decay_steps = check.int_in(first_decay_steps, "first_decay_steps", "DoublingDecay",
                                              1, 2**40)
        self.minimum = check.int_in(minimum, "minimum", "DoublingDecay", -30, self.initial)
        # What IntegerAdam's switch over step_bits reads.
        self.values = list(range(self.initial, self.minimum - 1, -1))
        # The steps where the value drops: first_decay_steps * (2**k - 1).
        self._boundaries = [self.first_decay_steps * (2**k - 1) for k in range(1, len(self.values))]

    def __call__(self, step):
        step = tf.convert_to_tensor(step)
        passed = tf.cast(step >= tf.constant(self._boundaries, step.dtype), tf.int32)
        return self.initial - tf.reduce_sum(passed)

    def get_config(self):
        return {"initial": self.initial, "first_decay_steps": self.first_decay_steps, "minimum": self.minimum}


def _slot_name(variable, slot):
    """``<layer>_<variable>_<slot>`` (as Keras' ``add_variable_from_reference``), so
    that messages tell the slots of two layers' kernels apart."""
    return f"{getattr(variable, 'path', variable.name).replace('/', '_')}_{slot}"


def _shifted_copy_of(variable):
    """An initializer giving ``variable << 8`` as int16, read when the slot is initialised.

    Keras builds the optimizer inside the first traced training step when the
    user did not build it: an ``assign`` made there runs only in that trace,
    which TensorFlow discards after creating the variables, and a value read
    eagerly (``tf.init_scope``) is empty when the model's variables were
    created in the same trace. An initializer reading the variable is what
    TensorFlow lifts out of the trace and runs after the model's initializers.
    """

    def initializer(shape, dtype=None):
        return tf.cast(tf.convert_to_tensor(variable), tf.int16) * 256

    return initializer


# Keras' float gradient transformations would scale, clip or average the
# int32 gradients (or create int8 accumulators).
_FLOAT_TRANSFORMS = ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "loss_scale_factor",
                     "gradient_accumulation_steps")


def _refuse_float_transforms(optimizer, name):
    for option in _FLOAT_TRANSFORMS:
        if getattr(optimizer, option, None):
            raise ValueError(f"{name}: {option} is not supported: it would transform the integer gradients in float")


def _master(optimizer, variable, weight_bits):
    """The 16-bit master copy of an int8 variable (None for 8-bit weights and other types)."""
    if variable.dtype != "int8" or weight_bits != 16:
        return None
    # It starts at w << 8 (exact: |w| <= 127).
    return optimizer.add_variable(shape=variable.shape, dtype="int16", initializer=_shifted_copy_of(variable),
                                  name=_slot_name(variable, "master16"))


def _assign_integer(variable, master, new_w):
    """new_w into the variable, or into its master and the derived int8 weights."""
    if master is None:
        variable.assign(new_w)
    else:
        master.assign(new_w)
        variable.assign(tf_int_ops.int8_weights(new_w))


def _check_integer_gradient(name, variable, gradient, dtypes=(tf.int32, tf.int64)):
    if variable.dtype not in (tf.int8, tf.int16, tf.int32) or gradient.dtype not in dtypes:
        allowed = " or ".join(d.name for d in dtypes)
        raise ValueError(f"{name}: variable {variable.name} ({variable.dtype.name}) got a "
                         f"{gradient.dtype.name} gradient; integer variables need {allowed} gradients "
                         "from keras_int layers")


# The weights and biases of 16-bit layers (DFP16) have int64 gradients and
# units 2**-8 of their 8-bit counterparts' (the same float initialiser
# quantized to 8 more bits): their steps are 8 bits wider, the same value.
DFP16_EXTRA_STEP_BITS = 8


def _is_float(variable):
    return variable.dtype in (tf.float16, tf.bfloat16, tf.float32, tf.float64)


class _Distributed:
    """What IntegerSGD and IntegerAdam add to Keras' optimizer under a tf.distribute strategy.

    * The replicas' gradients are summed exactly. Keras adds them with one
      ``all_reduce`` of the whole list (``_all_reduce_sum_gradients``, see
      tf_int_ops._tf_internal), which TensorFlow refuses for several int32
      tensors and which would wrap int32 sums silently. The integer
      gradients are summed by ``tf_int_ops.replicas.sum_exactly`` instead:
      one int64 all-reduce, an error where a sum leaves its type. Their
      exponents need no alignment: every replica quantized its activations
      and errors at the exponents agreed across replicas, so all have the
      same. Float gradients (float layers in an integer model) are summed as
      Keras sums them.
    * Under MultiWorkerMirroredStrategy the int8/int16 weights and slots are
      plain variables of each worker (tf_int_ops.replicas.integer_variable_scope):
      they are updated directly, where Keras would ask the strategy to update
      each mirrored copy.
    """

    def add_variable(self, *args, **kwargs):
        with replicas.integer_variable_scope():
            return super().add_variable(*args, **kwargs)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        integer = [i for i, (g, _) in enumerate(grads_and_vars) if g is not None and g.dtype.is_integer]
        if not integer or replicas.count() == 1:
            return super()._all_reduce_sum_gradients(grads_and_vars)
        summed = replicas.sum_exactly([grads_and_vars[i][0] for i in integer])
        floats = [i for i, (g, _) in enumerate(grads_and_vars) if g is not None and i not in integer]
        if floats:
            # Only the float pairs: Keras' own sum warns about missing gradients for the rest.
            for i, pair in zip(floats, super()._all_reduce_sum_gradients([grads_and_vars[i] for i in floats])):
                grads_and_vars[i] = pair
        for i, total in zip(integer, summed):
            grads_and_vars[i] = (total, grads_and_vars[i][1])
        return grads_and_vars

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        mirrored = [(g, v) for g, v in grads_and_vars if isinstance(v, tf.distribute.DistributedValues)]
        super()._distributed_tf_update_step(distribution, mirrored, learning_rate)
        for gradient, variable in grads_and_vars:
            if not isinstance(variable, tf.distribute.DistributedValues):
                # A worker's own int8/int16 variable: one local replica.
                with tf.device(variable.device):
                    self.update_step(_tf_internal.local_value(gradient), variable, learning_rate)


@keras.saving.register_keras_serializable(package="keras_int")
class IntegerSGD(_Distributed, keras.optimizers.Optimizer):
    """NITI's integer SGD (docs/algorithms.md 6) for int8 variables (and int32 biases).

    The int32 gradient is shifted to ``mu`` bits (pseudo-stochastic rounding)
    and subtracted from the int8 weights with clipping; ``mu`` plays the role
    of the learning rate. The int16 weights (and int32 biases) of 16-bit
    layers (``bits=16``, DFP16) get int64 gradients and take steps of
    ``mu + 8`` bits: the same value, since their units are 2**-8 of the
    8-bit layers'.

    Args:
      mu: update bit width (NITI: 5).
      mu_schedule: optional ``keras.optimizers.schedules.LearningRateSchedule``
        (of the step) returning integer bit widths, e.g. ``niti_mu_schedule``
        (needs the run's length) or ``DoublingDecay`` (does not).
        For a schedule over epochs use ``keras_int.callbacks.MuScheduler``.
      momentum: integer momentum in sixteenths (0 to 16); 0 disables it.
      weight_decay: integer weight decay strength d: ``d * w * 2**(b(g) - 15)``
        is added to the gradient before the shift.
      weight_bits: 8, or 16 to keep 16-bit master weights (``w << 8``) in the
        optimizer, update them there and derive the layers' int8 weights
        by a pseudo-stochastic shift by 8 (NITI's 16-bit accumulation).
      learning_rate: used only for float variables (float layers mixed into
        an integer model), which get plain SGD: ``w -= learning_rate * g``.

    >>> model.compile(optimizer=IntegerSGD(mu=5), loss=keras_int.losses.IntegerCrossEntropy())
    """

    def __init__(self, mu=5, mu_schedule=None, momentum=0, weight_decay=0, weight_bits=8,
                 learning_rate=0.01, name="integer_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        _refuse_float_transforms(self, "IntegerSGD")
        mu = check.int_in(mu, "mu", "IntegerSGD", 1, 30)
        momentum = check.int_in(momentum, "momentum", "IntegerSGD", 0, 16, " (sixteenths)")
        weight_decay = check.int_in(weight_decay, "weight_decay", "IntegerSGD", 0, 1024)
        if weight_bits not in (8, 16):
            raise ValueError(f"IntegerSGD: weight_bits must be 8 or 16, got {weight_bits!r}")
        if isinstance(mu_schedule, dict):
            mu_schedule = keras.optimizers.schedules.deserialize(mu_schedule)
        self.mu = mu
        # The value mu_variable starts at when the optimizer is built (set_mu
        # changes it before then).
        self._initial_mu = mu
        self.mu_schedule = mu_schedule
        self.momentum = momentum
        self.integer_weight_decay = weight_decay
        self.weight_bits = weight_bits

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.current_mu = self.add_variable(shape=(), dtype="int32", initializer="zeros",
                                            name="current_mu")
        # mu when no step schedule is given; keras_int.callbacks.MuScheduler
        # changes it per epoch.
        self.mu_variable = self.add_variable(shape=(), dtype="int32",
                                             initializer=keras.initializers.Constant(self._initial_mu),
                                             name="mu")
        self._grad_bits, self._masters, self._momenta = [], [], []
        for variable in variables:
            self._grad_bits.append(self.add_variable(shape=(), dtype="int32", initializer="zeros",
                                                     name=_slot_name(variable, "grad_bits")))
            master = _master(self, variable, self.weight_bits)
            self._masters.append(master)
            momentum = None
            if self.momentum:
                dtype = "int16" if master is not None else variable.dtype
                momentum = self.add_variable(shape=variable.shape, dtype=dtype, initializer="zeros",
                                             name=_slot_name(variable, "momentum"))
            self._momenta.append(momentum)

    def set_mu(self, mu):
        """Sets the update bit width ``mu`` of the following steps (what MuScheduler calls).

        Before the optimizer is built (Keras builds it inside the first
        training step unless the user did) it sets the value ``mu_variable``
        will start at. Not with a ``mu_schedule``, which sets ``mu`` per step.

        >>> optimizer.set_mu(4)
        """
        if self.mu_schedule is not None:
            raise ValueError("IntegerSGD.set_mu: this optimizer has a mu_schedule, which sets mu "
                             "per step")
        mu = check.int_in(mu, "mu", "IntegerSGD.set_mu", 1, 30)
        if self.built:
            self.mu_variable.assign(mu)
        else:
            self._initial_mu = mu

    def _mu(self):
        if self.mu_schedule is None:
            return tf.convert_to_tensor(self.mu_variable)
        return tf.cast(self.mu_schedule(self.iterations), tf.int32)

    def update_step(self, gradient, variable, learning_rate):
        index = _tf_internal.optimizer_variable_index(self, variable)
        if _is_float(variable):
            # A float layer in an integer model: plain SGD, documented.
            if self._momenta[index] is not None:
                m = self._momenta[index]
                m.assign(m * (self.momentum / 16.0) + gradient)
                gradient = m
            variable.assign_sub(tf.cast(learning_rate, variable.dtype) * gradient)
            return
        _check_integer_gradient("IntegerSGD", variable, gradient)
        mu = self._mu()
        self.current_mu.assign(mu)
        if gradient.dtype == tf.int64:
            mu = mu + DFP16_EXTRA_STEP_BITS
        self._grad_bits[index].assign(tf_int_ops.bit_length(gradient))
        master = self._masters[index]
        momentum = self._momenta[index]
        target = variable if master is None else master
        new_w, new_m = tf_int_ops.integer_sgd_update(
            tf.convert_to_tensor(target), gradient, mu, self.momentum,
            None if momentum is None else tf.convert_to_tensor(momentum),
            self.integer_weight_decay)
        if momentum is not None:
            momentum.assign(new_m)
        _assign_integer(variable, master, new_w)

    def grad_bits(self, variable):
        """bit_length of the last integer gradient of `variable` (for ExponentTracker).

        None when the optimizer is not built or does not update `variable`
        (a frozen layer's kernel).
        """
        index = _tf_internal.optimizer_variable_index(self, variable) if self.built else None
        return None if index is None else self._grad_bits[index]

    def _value_range(self, variable):
        """The values `variable` may hold: what loading weights checks."""
        if variable is self.mu_variable:
            return 1, 30
        if variable is self.current_mu:
            return 0, 30  # 0 until the first integer update
        if any(variable is bits for bits in self._grad_bits):
            return 0, 32  # bit_length of an int32
        if variable is self.iterations:  # no gradient accumulation: the variable itself
            return _checkpoint.nonnegative_range(variable.dtype)
        # int16 masters and momentum buffers saturate at +-(2**(bits-1) - 1).
        return _checkpoint.symmetric_range(variable.dtype)

    def load_own_variables(self, store):
        """Keras' loading, refusing data of the wrong type or out of range (see _checkpoint)."""
        super().load_own_variables(_checkpoint.CheckedStore(
            store, f"IntegerSGD '{self.name}'", self.variables, self._value_range))

    def get_config(self):
        config = super().get_config()
        config.update({
            "mu": self.mu,
            "mu_schedule": None if self.mu_schedule is None
            else keras.optimizers.schedules.serialize(self.mu_schedule),
            "momentum": self.momentum,
            "weight_decay": self.integer_weight_decay,
            "weight_bits": self.weight_bits,
        })
        return config


def _scheduled_values(schedule, name, low, high):
    """The integer values a step schedule can give: a PiecewiseConstantDecay's own
    values (checked), or every value of [low, high] for any other schedule."""
    if schedule is None:
        return None
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(f"IntegerAdam: {name} must be a keras.optimizers.schedules.LearningRateSchedule, "
                         f"got {schedule!r}")
    values = getattr(schedule, "values", None)
    if values is None:
        return list(range(low, high + 1))
    return sorted({check.int_in(v, f"{name} value", "IntegerAdam", low, high) for v in values})


def _beta_q16(beta, name):
    beta = check.fraction(beta, name, "IntegerAdam")
    q = int(round(beta * 2**16))
    if q >= 2**16:
        raise ValueError(f"IntegerAdam: {name} must be below 1 - 2**-17 (16 fraction bits), got {beta!r}")
    return q


_STEP_BITS_OFFSET = "_keras_int_step_bits_offset"


def set_step_bits_offset(variable, offset):
    """Makes IntegerAdam step `variable` by ``2**(step_bits + offset)`` of its units.

    For a layer whose variable's unit is far from the scale of a kernel's
    (IntLayerNormalization: gamma's int8 unit is 1/64 of its initial 1.0,
    beta's int32 unit 2**-8 of gamma's), so that one ``step_bits`` moves
    every weight by a similar value (docs/algorithms.md 14). IntegerSGD
    does not read it.

    >>> set_step_bits_offset(layer.gamma, -4)
    """
    setattr(variable, _STEP_BITS_OFFSET, check.int_in(offset, "offset", "set_step_bits_offset", -8, 8))


def step_bits_offset(variable):
    """The offset ``set_step_bits_offset`` gave `variable` (0 if none)."""
    return getattr(variable, _STEP_BITS_OFFSET, 0)


@keras.saving.register_keras_serializable(package="keras_int")
class IntegerAdam(_Distributed, keras.optimizers.Optimizer):
    """Adam in integers (docs/algorithms.md 14) for int8 variables (and int32 biases).

    Each step normalises the int32 gradient to 15 bits (the shift of its
    bit length, as IntegerSGD's), keeps int32 first and second moments with
    the betas as 16-bit fractions, corrects their bias with ``beta**t``
    computed in Q30, and moves each weight by ``m_hat / (isqrt(v_hat) + 1)``
    times ``2**step_bits`` weight units, rounded pseudo-stochastically: a
    per-weight adaptive step where IntegerSGD's is one size per tensor. The
    int16 weights (and int32 biases) of 16-bit layers (``bits=16``) get
    int64 gradients and a step 8 bits wider: the same value. A variable
    whose layer set a step offset (``set_step_bits_offset``; layer norm's
    gamma -4 and beta +4) steps by ``2**(step_bits + offset)`` units.

    Args:
      step_bits: log2 of a full step in int8 weight units (-8 to 8): 0 moves
        a weight with a steady gradient by one unit per step; negative values
        take fractions of a unit (pseudo-stochastic rounding), best with
        ``weight_bits=16``.
      step_bits_schedule: optional ``keras.optimizers.schedules.LearningRateSchedule``
        (of the step) returning integer ``step_bits``, e.g.
        ``niti_mu_schedule(total_steps, (0, -1, -2))`` or ``DoublingDecay(0, 128, -2)``:
        smaller steps late in training, as NITI's mu schedule does for IntegerSGD.
      beta_1, beta_2: as Keras' Adam, kept as ``round(beta * 2**16)``.
      weight_bits: 8, or 16 to keep 16-bit master weights (as IntegerSGD).
      learning_rate: used only for float variables (float layers mixed into
        an integer model), which get plain SGD.

    >>> model.compile(optimizer=IntegerAdam(step_bits=0), loss=keras_int.losses.IntegerCrossEntropy())
    """

    def __init__(self, step_bits=0, step_bits_schedule=None, beta_1=0.9, beta_2=0.999, weight_bits=8,
                 learning_rate=0.01, name="integer_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        _refuse_float_transforms(self, "IntegerAdam")
        self.step_bits = check.int_in(step_bits, "step_bits", "IntegerAdam", -8, 8)
        if isinstance(step_bits_schedule, dict):
            step_bits_schedule = keras.optimizers.schedules.deserialize(step_bits_schedule)
        self.step_bits_schedule = step_bits_schedule
        self._scheduled_step_bits = _scheduled_values(step_bits_schedule, "step_bits_schedule", -8, 8)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self._beta_1_q16 = _beta_q16(beta_1, "beta_1")
        self._beta_2_q16 = _beta_q16(beta_2, "beta_2")
        if weight_bits not in (8, 16):
            raise ValueError(f"IntegerAdam: weight_bits must be 8 or 16, got {weight_bits!r}")
        self.weight_bits = weight_bits

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._grad_bits, self._masters, self._first, self._second = [], [], [], []
        for variable in variables:
            self._grad_bits.append(self.add_variable(shape=(), dtype="int32", initializer="zeros",
                                                     name=_slot_name(variable, "grad_bits")))
            self._masters.append(_master(self, variable, self.weight_bits))
            integer = not _is_float(variable)
            dtype = "int32" if integer else variable.dtype
            self._first.append(self.add_variable(shape=variable.shape, dtype=dtype, initializer="zeros",
                                                 name=_slot_name(variable, "m")) if integer else None)
            self._second.append(self.add_variable(shape=variable.shape, dtype=dtype, initializer="zeros",
                                                  name=_slot_name(variable, "v")) if integer else None)

    def update_step(self, gradient, variable, learning_rate):
        index = _tf_internal.optimizer_variable_index(self, variable)
        if _is_float(variable):
            variable.assign_sub(tf.cast(learning_rate, variable.dtype) * gradient)  # plain SGD, documented
            return
        _check_integer_gradient("IntegerAdam", variable, gradient)
        self._grad_bits[index].assign(tf_int_ops.bit_length(gradient))
        master = self._masters[index]
        target = variable if master is None else master
        # A 16-bit master weight's unit is 2**-8 of an int8 weight's, and so
        # is a 16-bit layer's (its gradients are int64). A layer may shift a
        # variable's steps (STEP_BITS_OFFSET) where its weight unit is far
        # from the value scale at which a step of a kernel's unit moves it.
        wide = master is not None or gradient.dtype == tf.int64
        offset = step_bits_offset(_tf_internal.optimizer_variable(self, index))
        extra = (DFP16_EXTRA_STEP_BITS if wide else 0) + offset
        step = tf.cast(self.iterations, tf.int64) + 1

        def update(step_bits):
            if not -16 <= step_bits + extra <= 16:
                raise ValueError(
                    f"IntegerAdam: step_bits {step_bits} + the step offset {offset} of {variable.name}"
                    f"{f' + {DFP16_EXTRA_STEP_BITS} (16-bit weights)' if wide else ''} = {step_bits + extra} "
                    "is outside [-16, 16]")
            return lambda: tf_int_ops.integer_adam_update(
                tf.convert_to_tensor(target), gradient, tf.convert_to_tensor(self._first[index]),
                tf.convert_to_tensor(self._second[index]), step, self._beta_1_q16, self._beta_2_q16,
                step_bits + extra)

        if self.step_bits_schedule is None:
            new_w, new_m, new_v = update(self.step_bits)()
        else:
            # The op's shift is an attribute: one branch per value the schedule gives.
            scheduled = tf.cast(self.step_bits_schedule(self.iterations), tf.int32)
            tf.debugging.assert_equal(
                tf.reduce_any(tf.equal(scheduled, self._scheduled_step_bits)), True,
                message=f"IntegerAdam: step_bits_schedule gave a value outside {self._scheduled_step_bits}")
            branch = tf.argmax(tf.cast(tf.equal(scheduled, self._scheduled_step_bits), tf.int32),
                               output_type=tf.int32)
            new_w, new_m, new_v = tf.switch_case(branch, [update(bits) for bits in self._scheduled_step_bits])
        self._first[index].assign(new_m)
        self._second[index].assign(new_v)
        _assign_integer(variable, master, new_w)

    def grad_bits(self, variable):
        """bit_length of the last integer gradient of `variable` (for ExponentTracker); None if not updated."""
        index = _tf_internal.optimizer_variable_index(self, variable) if self.built else None
        return None if index is None else self._grad_bits[index]

    def _value_range(self, variable):
        if any(variable is bits for bits in self._grad_bits):
            return 0, 32
        if variable is self.iterations:
            return _checkpoint.nonnegative_range(variable.dtype)
        if any(variable is v for v in self._second if v is not None):
            return 0, 2**30  # the second moment of a 15-bit gradient
        if any(variable is m for m in self._first if m is not None):
            return -(2**15), 2**15
        return _checkpoint.symmetric_range(variable.dtype)

    def load_own_variables(self, store):
        """Keras' loading, refusing data of the wrong type or out of range (see _checkpoint)."""
        super().load_own_variables(_checkpoint.CheckedStore(
            store, f"IntegerAdam '{self.name}'", self.variables, self._value_range))

    def get_config(self):
        return {**super().get_config(), "step_bits": self.step_bits,
                "step_bits_schedule": None if self.step_bits_schedule is None
                else keras.optimizers.schedules.serialize(self.step_bits_schedule),
                "beta_1": self.beta_1, "beta_2": self.beta_2, "weight_bits": self.weight_bits}

"""Integer Adam (docs/algorithms.md section 14): the op against the reference,
bit for bit, bad inputs, and the Keras optimizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
import reference as ref
import tf_int_ops
from keras_models import compile_integer, digits, digits_cnn

BAD = (ValueError, TypeError, tf.errors.InvalidArgumentError)


@pytest.mark.parametrize("bits,dtype", [(8, np.int8), (16, np.int16), (32, np.int32)])
@pytest.mark.parametrize("betas,shift", [((58982, 65470), 0), ((0, 0), 3), ((65535, 65535), -16), ((32768, 60000), 16)])
def test_steps_bit_exact(rng, bits, dtype, betas, shift):
    info = np.iinfo(dtype)
    w = rng.integers(max(info.min + 1, -(2**20)), min(info.max, 2**20), 257).astype(dtype)
    m = np.zeros(257, np.int32)
    v = np.zeros(257, np.int32)
    for t, scale in zip((1, 2, 3, 1000, 2**40), (2**30, 3, 2**12, 0, 2**16)):
        g = rng.integers(-scale, scale + 1, 257).astype(np.int32)
        new = tf_int_ops.integer_adam_update(w, g, m, v, t, *betas, shift)
        want = ref.adam_update(w, g, m, v, t, *betas, shift, bits=bits)
        for got, expected in zip(new, want):
            np.testing.assert_array_equal(got.numpy(), expected)
        w, m, v = want


def test_extremes_and_bounds():
    g = np.array([-2**31, 2**31 - 1, 0, 1], np.int32)
    w = np.array([-127, 127, 0, 5], np.int8)
    m = np.array([-2**15, 2**15, 0, 7], np.int32)
    v = np.array([2**30, 2**30, 0, 3], np.int32)
    new = tf_int_ops.integer_adam_update(w, g, m, v, 1, 65535, 65535, 16)
    want = ref.adam_update(w, g, m, v, 1, 65535, 65535, 16)
    for got, expected in zip(new, want):
        np.testing.assert_array_equal(got.numpy(), expected)
    assert np.abs(new[1].numpy()).max() <= 2**15 and 0 <= new[2].numpy().min() and new[2].numpy().max() <= 2**30


def test_bias_correction_power():
    """P(b, t) in Q30 follows the float power closely (not a test of the op: of the spec's formula)."""
    for beta, t in ((58982, 1), (58982, 10), (65470, 1000), (65535, 70000)):
        assert abs(ref.adam_power_q30(beta, t) / 2**30 - (beta / 2**16) ** t) < 1e-6 * t


def test_bad_inputs():
    w, g, m = np.zeros(3, np.int8), np.zeros(3, np.int32), np.zeros(3, np.int32)
    with pytest.raises(BAD, match="w must be int8, int16 or int32"):
        tf_int_ops.integer_adam_update(w.astype(np.float32), g, m, m, 1)
    with pytest.raises(BAD, match="beta_1 must be an int in"):
        tf_int_ops.integer_adam_update(w, g, m, m, 1, beta_1=2**16)
    with pytest.raises(BAD, match="step_shift must be an int in"):
        tf_int_ops.integer_adam_update(w, g, m, m, 1, step_shift=17)
    with pytest.raises(BAD, match="step 0 must be >= 1"):
        tf_int_ops.integer_adam_update(w, g, m, m, 0)
    with pytest.raises(BAD, match="m has shape"):
        tf_int_ops.integer_adam_update(w, g, np.zeros(4, np.int32), m, 1)
    with pytest.raises(BAD, match="grad must be one of int32, int64"):
        tf_int_ops.integer_adam_update(w, g.astype(np.int16), m, m, 1)
    raw = tf_int_ops.layer_ops._loader.load()
    with pytest.raises(tf.errors.InvalidArgumentError, match="beta_1 -1 and beta_2"):
        raw.int_ops_adam_update(w, g, m, m, np.int64(1), beta_1=-1)
    with pytest.raises(ValueError, match="step_bits must be an int in"):
        keras_int.optimizers.IntegerAdam(step_bits=9)
    with pytest.raises(ValueError, match="beta_2 must be"):
        keras_int.optimizers.IntegerAdam(beta_2=1.0)
    with pytest.raises(ValueError, match="clipnorm is not supported"):
        keras_int.optimizers.IntegerAdam(clipnorm=1.0)


def _train(seed, **options):
    (x, y), (x_test, y_test) = digits()
    keras.utils.set_random_seed(seed)
    model = digits_cnn()
    model.compile(optimizer=keras_int.optimizers.IntegerAdam(**options),
                  loss=keras_int.losses.IntegerCrossEntropy())
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
    return model, accuracy


@pytest.mark.parametrize("options", [{}, {"weight_bits": 16, "step_bits": 0}])
def test_optimizer_trains_reproduces_and_round_trips(tmp_path, options):
    model, accuracy = _train(0, **options)
    assert accuracy > 0.85, accuracy
    again, _ = _train(0, **options)
    for a, b in zip(model.weights + model.optimizer.variables, again.weights + again.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    optimizer = model.optimizer
    clone = keras_int.optimizers.IntegerAdam.from_config(optimizer.get_config())
    assert (clone.step_bits, clone.beta_1, clone.beta_2, clone.weight_bits) == (
        optimizer.step_bits, optimizer.beta_1, optimizer.beta_2, optimizer.weight_bits)
    path = str(tmp_path / "adam.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, keras_int.optimizers.IntegerAdam)
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_exponent_tracker_reads_grad_bits():
    (x, y), _ = digits()
    model = compile_integer(digits_cnn())
    model.compile(optimizer=keras_int.optimizers.IntegerAdam(), loss=keras_int.losses.IntegerCrossEntropy())
    tracker = keras_int.callbacks.ExponentTracker()
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0, callbacks=[tracker])
    assert any(key.endswith("/grad_bits") for key in tracker.read())


@pytest.mark.parametrize("schedule, shifts", [
    # 0 to iteration 4, -1 to 6, then -2
    (keras_int.optimizers.niti_mu_schedule(8, (0, -1, -2)), (0, 0, 0, 0, 0, -1, -1, -2)),
    # docs/algorithms.md 6: one less from iteration P = 2, again from 3P = 6
    (keras_int.optimizers.DoublingDecay(0, 2, -2), (0, 0, -1, -1, -1, -1, -2, -2)),
], ids=["niti", "doubling"])
def test_step_bits_schedule_steps_as_the_reference(rng, schedule, shifts):
    """IntegerAdam(step_bits_schedule): step t uses the schedule's value at iteration t - 1,
    bit for bit as the reference's update with that shift; the schedule saves and loads."""
    optimizer = keras_int.optimizers.IntegerAdam(step_bits_schedule=schedule)
    w0 = rng.integers(-100, 101, (5, 7))
    variable = keras.Variable(w0.astype(np.int8), dtype="int8", trainable=True)
    w, m, v = w0, np.zeros_like(w0), np.zeros_like(w0)
    for t in range(1, 9):
        g = rng.integers(-(2**20), 2**20, (5, 7))
        optimizer.apply_gradients([(tf.constant(g, tf.int32), variable)])
        w, m, v = ref.adam_update(w, g, m, v, t, step_shift=shifts[t - 1])
        np.testing.assert_array_equal(variable.numpy(), w, err_msg=f"step {t}")
    clone = keras_int.optimizers.IntegerAdam.from_config(optimizer.get_config())
    assert tuple(int(clone.step_bits_schedule(step)) for step in range(8)) == shifts


@pytest.mark.parametrize("offset", [-4, 3])
def test_step_bits_offset_shifts_one_variables_steps(rng, offset):
    """set_step_bits_offset(variable, k): that variable steps as the reference with
    step_bits + k, bit for bit; another variable in the same update keeps step_bits."""
    optimizer = keras_int.optimizers.IntegerAdam(step_bits=1)
    w0 = rng.integers(-100, 101, (2, 4, 6))
    shifted = keras.Variable(w0[0].astype(np.int8), dtype="int8", trainable=True)
    plain = keras.Variable(w0[1].astype(np.int8), dtype="int8", trainable=True)
    keras_int.optimizers.set_step_bits_offset(shifted, offset)
    assert keras_int.optimizers.step_bits_offset(shifted) == offset
    state = [(w0[i], np.zeros((4, 6), np.int64), np.zeros((4, 6), np.int64)) for i in (0, 1)]
    for t in range(1, 5):
        g = rng.integers(-(2**20), 2**20, (2, 4, 6))
        optimizer.apply_gradients([(tf.constant(g[0], tf.int32), shifted), (tf.constant(g[1], tf.int32), plain)])
        state = [ref.adam_update(w, g[i], m, v, t, step_shift=1 + (offset if i == 0 else 0))
                 for i, (w, m, v) in enumerate(state)]
        np.testing.assert_array_equal(shifted.numpy(), state[0][0], err_msg=f"step {t}")
        np.testing.assert_array_equal(plain.numpy(), state[1][0], err_msg=f"step {t}")
    with pytest.raises(ValueError, match=r"set_step_bits_offset: offset must be an int in \[-8, 8\]"):
        keras_int.optimizers.set_step_bits_offset(plain, 9)


def test_step_bits_offset_beyond_the_ops_range_is_named():
    """step_bits + offset (+ 8 for 16-bit master weights) must stay in [-16, 16]."""
    optimizer = keras_int.optimizers.IntegerAdam(step_bits=8, weight_bits=16)
    variable = keras.Variable(np.zeros(3, np.int8), dtype="int8", trainable=True)
    keras_int.optimizers.set_step_bits_offset(variable, 2)
    with pytest.raises(ValueError, match=r"step_bits 8 \+ the step offset 2 of .* \+ 8 \(16-bit weights\) = 18 "
                                         r"is outside \[-16, 16\]"):
        optimizer.apply_gradients([(tf.constant([5, 1, 0], tf.int32), variable)])


def test_layer_norm_gamma_and_beta_step_with_their_offsets(rng):
    """IntegerAdam moves a built IntLayerNormalization's gamma and beta as the
    reference does with step_bits - 4 and step_bits + 4, bit for bit."""
    norm = keras_int.layers.IntLayerNormalization(beta_initializer="uniform")
    norm.build((4, 6))
    optimizer = keras_int.optimizers.IntegerAdam(step_bits=1)
    state = {name: (getattr(norm, name).numpy().astype(np.int64), np.zeros(6, np.int64), np.zeros(6, np.int64))
             for name in ("gamma", "beta")}
    for t in range(1, 4):
        grads = {name: rng.integers(-(2**20), 2**20, 6) for name in state}
        optimizer.apply_gradients([(tf.constant(grads[name], tf.int32), getattr(norm, name)) for name in state])
        for name, shift in (("gamma", 1 - 4), ("beta", 1 + 4)):
            w, m, v = state[name]
            state[name] = ref.adam_update(w, grads[name], m, v, t, step_shift=shift,
                                          bits=8 if name == "gamma" else 32)
            np.testing.assert_array_equal(getattr(norm, name).numpy(), state[name][0], err_msg=f"{name} step {t}")


def test_layer_norm_gamma_and_beta_step_at_the_same_value_scale(tmp_path):
    """IntLayerNormalization gives IntegerAdam gamma's steps -4 and beta's +4
    (both 2**(e_g - 4) in value), also after saving and loading."""
    inputs = keras.Input((5, 8))
    model = keras.Model(inputs, keras_int.layers.IntLayerNormalization()(inputs))
    path = str(tmp_path / "norm.keras")
    model.save(path)
    for m in (model, keras.models.load_model(path)):
        norm = m.layers[-1]
        assert keras_int.optimizers.step_bits_offset(norm.gamma) == -4
        assert keras_int.optimizers.step_bits_offset(norm.beta) == 4
        assert int(norm.gamma_exponent.numpy()) == -6  # 1.0 = 64 * 2**-6: steps of 2**-10


def test_step_bits_schedule_bad_values():
    with pytest.raises(ValueError, match=r"step_bits_schedule value must be an int in \[-8, 8\], got 9"):
        keras_int.optimizers.IntegerAdam(step_bits_schedule=keras_int.optimizers.niti_mu_schedule(10, (9, 0, 0)))
    with pytest.raises(ValueError, match="step_bits_schedule must be a keras.optimizers.schedules"):
        keras_int.optimizers.IntegerAdam(step_bits_schedule=lambda step: 0)
    # A schedule of another kind may give any value in [-8, 8]; outside is an error when it runs.
    optimizer = keras_int.optimizers.IntegerAdam(
        step_bits_schedule=keras.optimizers.schedules.ExponentialDecay(20.0, 10, 0.5))
    variable = keras.Variable(np.zeros(3, np.int8), dtype="int8", trainable=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="step_bits_schedule gave a value outside"):
        optimizer.apply_gradients([(tf.constant([5, 1, 0], tf.int32), variable)])

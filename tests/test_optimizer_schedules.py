"""DoublingDecay: the step size one less each time training doubles in length
(docs/algorithms.md 6), against the spec's formula; in IntegerSGD (IntegerAdam's
steps under it: tests/test_integer_adam.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
from tests import reference as ref


def spec_value(t, initial, first_decay_steps, minimum):
    """docs/algorithms.md 6: max(minimum, initial - (bit_length((t + P) // P) - 1))."""
    return max(minimum, initial - (((t + first_decay_steps) // first_decay_steps).bit_length() - 1))


@pytest.mark.parametrize("initial,first_decay_steps,minimum", [(5, 128, 3), (0, 3, -2), (4, 1, -8), (2, 7, 2)])
def test_values_follow_the_spec(initial, first_decay_steps, minimum):
    schedule = keras_int.optimizers.DoublingDecay(initial, first_decay_steps, minimum)
    steps = sorted(set(range(0, 40)) | {first_decay_steps * (2**k - 1) + d for k in range(12) for d in (-1, 0, 1)}
                   - {-1})
    got = [int(schedule(tf.constant(t, tf.int64))) for t in steps]
    assert got == [spec_value(t, initial, first_decay_steps, minimum) for t in steps]
    assert schedule.values == list(range(initial, minimum - 1, -1))


def test_serialises_under_keras_int():
    schedule = keras_int.optimizers.DoublingDecay(5, 100, 3)
    config = keras.optimizers.schedules.serialize(schedule)
    assert config["registered_name"] == "keras_int>DoublingDecay"
    clone = keras.optimizers.schedules.deserialize(config)
    assert clone.get_config() == {"initial": 5, "first_decay_steps": 100, "minimum": 3}
    optimizer = keras_int.optimizers.IntegerSGD(mu_schedule=schedule)
    again = keras_int.optimizers.IntegerSGD.from_config(optimizer.get_config())
    assert [int(again.mu_schedule(t)) for t in (0, 99, 100, 299, 300)] == [5, 5, 4, 4, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"DoublingDecay: first_decay_steps must be an int in \[1, "):
        keras_int.optimizers.DoublingDecay(5, 0, 3)
    with pytest.raises(ValueError, match=r"DoublingDecay: minimum must be an int in \[-30, 5\], got 6"):
        keras_int.optimizers.DoublingDecay(5, 10, 6)
    with pytest.raises(ValueError, match="DoublingDecay: initial must be an int"):
        keras_int.optimizers.DoublingDecay(2.5, 10, 1)
    with pytest.raises(ValueError, match=r"step_bits_schedule value must be an int in \[-8, 8\], got -9"):
        keras_int.optimizers.IntegerAdam(step_bits_schedule=keras_int.optimizers.DoublingDecay(0, 10, -9))


def test_integer_sgd_steps_with_the_scheduled_mu(rng):
    """Each step's update is NITI's with mu = the schedule at the iteration before it, bit for bit."""
    schedule = keras_int.optimizers.DoublingDecay(5, 2, 3)  # 5 at t 0-1, 4 at 2-5, 3 from 6
    optimizer = keras_int.optimizers.IntegerSGD(mu_schedule=schedule)
    w = rng.integers(-100, 101, (4, 6))
    variable = keras.Variable(w.astype(np.int8), dtype="int8", trainable=True)
    for t in range(9):
        g = rng.integers(-(2**18), 2**18, (4, 6))
        optimizer.apply_gradients([(tf.constant(g, tf.int32), variable)])
        w, _ = ref.sgd_update(w, g, mu=spec_value(t, 5, 2, 3))
        np.testing.assert_array_equal(variable.numpy(), w, err_msg=f"step {t + 1}")
        assert int(optimizer.current_mu.numpy()) == spec_value(t, 5, 2, 3)


"""Resumption, corrupted checkpoints and concurrent inference."""

import threading

import keras
import numpy as np
import pytest

from keras_models import compile_integer, digits, digits_cnn


def _model(rounding="stochastic"):
    keras.utils.set_random_seed(11)
    return compile_integer(digits_cnn(rounding=rounding), mu=5, momentum=4, weight_bits=16)


def _fit(model, epochs, **kwargs):
    (x, y), _ = digits()
    return model.fit(x[:384], y[:384], epochs=epochs, batch_size=64, shuffle=False, verbose=0, **kwargs)


def _assert_same_weights(a, b):
    for u, v in zip(a.weights, b.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=u.path)


def test_resume_from_saved_model_is_bit_identical(tmp_path):
    uninterrupted = _model()
    _fit(uninterrupted, 4)
    first_half = _model()
    _fit(first_half, 2)
    path = str(tmp_path / "half.keras")
    first_half.save(path)
    resumed = keras.models.load_model(path)
    _fit(resumed, 2)
    _assert_same_weights(uninterrupted, resumed)
    for u, v in zip(uninterrupted.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")


def test_backup_and_restore_resumes_bit_identically(tmp_path):
    uninterrupted = _model()
    _fit(uninterrupted, 4)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = _model()
    with pytest.raises(KeyboardInterrupt):
        _fit(interrupted, 4, callbacks=[backup, _Interrupt()])
    restarted = _model()
    history = _fit(restarted, 4, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert len(history.epoch) == 2 and history.epoch[0] == 2  # resumed at epoch 3
    _assert_same_weights(uninterrupted, restarted)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_checkpoint_is_an_error(tmp_path, damage):
    model = _model()
    _fit(model, 1)
    path = tmp_path / "model.keras"
    model.save(str(path))
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # flip bytes in the middle of the archive (inside the weights)
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    # Keras reports a damaged archive (zip structure or CRC), never loads it.
    with pytest.raises(Exception, match="zip file|CRC"):
        keras.models.load_model(str(path))


def test_concurrent_predictions_match_sequential_ones():
    (x, y), (x_test, _) = digits()
    # Stochastic rounding draws from a per-call step counter: two sequential
    # predictions of such a model differ too, so this one rounds to nearest.
    model = _model(rounding="nearest")
    _fit(model, 1)
    want = model.predict(x_test, batch_size=64, verbose=0)
    results, errors = [None] * 4, []

    def run(i):
        try:
            results[i] = model.predict(x_test, batch_size=64, verbose=0)
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for result in results:
        np.testing.assert_array_equal(result, want)

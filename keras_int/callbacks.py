"""ExponentTracker: watch the DFP exponents of an integer model while it trains."""

import csv
import os

import keras
import tensorflow as tf

from keras_int.optimizers import IntegerAdam, IntegerSGD
from tf_int_ops import _tf_internal
from tf_int_ops import _validation as check

PREFIX = "exp/"
_LAYER_EXPONENTS = ("output_exponent", "error_exponent", "kernel_exponent")


class MuScheduler(keras.callbacks.Callback):
    """Sets IntegerSGD's update bit width ``mu`` at the start of each epoch.

    ``schedule(epoch) -> int``, like Keras' ``LearningRateScheduler``.

    >>> # NITI on CIFAR-10: mu 5, then 4 from 50 % and 3 from 75 % of 200 epochs
    >>> MuScheduler(lambda epoch: 5 if epoch < 100 else 4 if epoch < 150 else 3)
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, IntegerSGD):
            raise ValueError(f"MuScheduler needs an IntegerSGD optimizer, got {type(optimizer).__name__}")
        if optimizer.mu_schedule is not None:
            raise ValueError("MuScheduler needs an IntegerSGD without mu_schedule (the two would "
                             "both set mu)")
        mu = check.int_in(self.schedule(epoch), f"schedule({epoch})", "MuScheduler", 1, 30)
        # Also before the first step, where Keras has not built the optimizer yet.
        optimizer.set_mu(mu)


@keras.saving.register_keras_serializable(package="keras_int")
class ExponentTracker(keras.callbacks.Callback):
    """Records, per integer layer, the exponents of activations, errors and
    weights, the bit width of the last weight gradient and the update bit
    width ``mu``.

    Values are read from the layers' and the optimizer's int32 variables (no
    extra compute). Every epoch they are added to ``logs`` (so ``History``
    keeps them) under ``exp/<layer>/<name>``; every ``every_n_batches``
    batches they are appended to ``batch_records``; optionally also written
    to a CSV file and as TensorBoard scalars.

    >>> tracker = ExponentTracker(every_n_batches=50, csv_path="exponents.csv")
    >>> history = model.fit(x, y, epochs=3, callbacks=[tracker])
    >>> history.history["exp/int_dense/output_exponent"]
    """

    def __init__(self, every_n_batches=None, csv_path=None, log_dir=None):
        super().__init__()
        if every_n_batches is not None:
            every_n_batches = check.positive_int(every_n_batches, "every_n_batches", "ExponentTracker")
        self.every_n_batches = every_n_batches
        self.csv_path = csv_path
        self.log_dir = log_dir
        self.batch_records = []
        self._writer = None
        self._csv_header = None
        self._global_batch = 0

    def read(self):
        """The current values, as {name: int}."""
        values = {}
        optimizer = getattr(self.model, "optimizer", None)
        for layer in _tf_internal.flatten_layers(self.model):
            for name in _LAYER_EXPONENTS:
                variable = getattr(layer, name, None)
                if variable is not None:
                    values[f"{PREFIX}{layer.name}/{name}"] = int(variable.numpy())
            kernel = getattr(layer, "kernel", None)
            grad_bits = (optimizer.grad_bits(kernel)
                         if kernel is not None and isinstance(optimizer, (IntegerSGD, IntegerAdam)) else None)
            if grad_bits is not None:
                values[f"{PREFIX}{layer.name}/grad_bits"] = int(grad_bits.numpy())
        if isinstance(optimizer, IntegerSGD) and optimizer.built:
            values[f"{PREFIX}mu"] = int(optimizer.current_mu.numpy())
        return values

    def on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1
        if self.every_n_batches and self._global_batch % self.every_n_batches == 0:
            record = {"step": self._global_batch, **self.read()}
            self.batch_records.append(record)
            self._write(record)

    def on_epoch_end(self, epoch, logs=None):
        values = self.read()
        if logs is not None:
            logs.update(values)
        if not self.every_n_batches:
            self._write({"step": self._global_batch, **values})

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write(self, record):
        if self.csv_path:
            new_file = self._csv_header is None
            if new_file:
                self._csv_header = list(record)
            with open(self.csv_path, "w" if new_file else "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._csv_header, extrasaction="ignore")
                if new_file:
                    writer.writeheader()
                writer.writerow(record)
        if self.log_dir:
            if self._writer is None:
                os.makedirs(self.log_dir, exist_ok=True)
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default(step=record["step"]):
                for name, value in record.items():
                    if name != "step":
                        tf.summary.scalar(name, value)
            self._writer.flush()

    def get_config(self):
        return {"every_n_batches": self.every_n_batches, "csv_path": self.csv_path,
                "log_dir": self.log_dir}

"""Data-parallel training: tf.distribute.MirroredStrategy (two logical CPU devices) and
keras_int.distribute.MultiWorkerMirroredStrategy (two localhost worker processes),
bit-identical to one device; replicas identical, checkpoints portable, unagreed
layers refused.

The scenarios run in fresh processes (tests/distributed_scenarios.py):
logical devices and TF_CONFIG must be set before TensorFlow starts.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ("cnn_sgd_momentum", "cnn_master_weights_dropout_overlapping_pool", "residual_cnn",
             "sequence_embedding_matmul", "cnn_dfp16_adam")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("distribute")
    process = subprocess.run([sys.executable, os.path.join(HERE, "distributed_scenarios.py"), str(out)],
                             capture_output=True, text=True, timeout=900,
                             cwd=os.path.dirname(HERE))
    assert process.returncode == 0, process.stderr[-4000:]
    with open(out / "results.json") as f:
        return json.load(f)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_two_replicas_train_bit_identically_to_one_device(results, scenario):
    result = results[scenario]
    assert result["trained"], "the weights did not move: the comparison would prove nothing"
    assert result["weights_equal"], "model weights (and exponents) differ from one device's"
    assert result["optimizer_equal"], "optimizer variables (momenta, masters, moments) differ"
    assert result["replicas_agree"], "the replicas' copies of a variable differ"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_predict_and_evaluate_match_one_device(results, scenario):
    result = results[scenario]
    assert result["predict_equal"]
    assert result["predict_one_row_batch_equal"]  # one replica gets an empty batch
    assert result["accuracy_equal"]
    assert result["loss_close"]  # the displayed loss is float32, summed in another order


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_checkpoints_written_under_the_strategy_load_on_one_device(results, scenario):
    assert results[scenario]["checkpoint_equal"], "ModelCheckpoint's weights differ from the trained ones"
    assert results[scenario]["saved_model_equal"], "model.save / load_model did not round-trip"


@pytest.mark.parametrize("case", ["random", "power_of_two_max_exact", "power_of_two_max_fine", "one_half_zero",
                                  "subnormal_half", "all_zero", "negative_power_of_two"])
def test_agreed_quantize_and_requantize_equal_one_device(results, case):
    assert results["quantize"][case]


def test_backup_and_restore_resumes_as_on_one_device(results):
    assert results["backup_and_restore_equal"]


def test_layer_deciding_exponents_in_its_kernel_is_refused_by_name(results):
    message = results["refused"]
    assert message is not None, "IntBatchNormalization trained under two replicas without an error"
    assert "batch_norm: not supported yet under a tf.distribute strategy with 2 replicas" in message


def test_replica_training_step_is_integer(results):
    """The agreed op sequences (not the fused layer ops) run under the strategy, and
    nothing but the documented boundaries is float arithmetic (test_integer_audit)."""
    assert results["audit"]["agrees"]
    assert results["audit"]["float_arithmetic"] == []


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def multi_worker(tmp_path_factory):
    """Two localhost workers of keras_int.distribute.MultiWorkerMirroredStrategy (TF_CONFIG)
    and one device, each in its own process, training the same CNN with stock ``fit``."""
    out = tmp_path_factory.mktemp("multi_worker")
    script = os.path.join(HERE, "distributed_scenarios.py")
    ports = ",".join(str(p) for p in _free_ports(2))
    workers = [subprocess.Popen([sys.executable, script, str(out), "worker", str(i), ports],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE))
               for i in range(2)]
    single = subprocess.run([sys.executable, script, str(out), "single"], capture_output=True, text=True,
                            timeout=600, cwd=os.path.dirname(HERE))
    try:
        outputs = [w.communicate(timeout=600) for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    return [np.load(out / f"{name}.npz") for name in ("single", "worker_0", "worker_1")]


def test_two_workers_train_bit_identically_to_one_device(multi_worker):
    single, worker_0, worker_1 = multi_worker
    assert single.files == worker_0.files == worker_1.files
    for key in single.files:
        assert np.array_equal(worker_0[key], worker_1[key]), f"the workers differ in {key}"
        assert np.array_equal(single[key], worker_0[key]), f"the workers differ from one device in {key}"


def test_float_layer_in_an_integer_model_trains_under_the_strategy(results):
    """Float gradients go through Keras' own sum (not bit-identical: float sums depend on
    their order), integer ones through the exact one; replicas agree, both kinds train."""
    mixed = results["mixed_float"]
    assert mixed["replicas_agree"] and mixed["float_trained"] and mixed["integer_trained"]
    assert mixed["accuracy"] > 0.2  # chance: 0.1

"""Data-parallel training: tf.distribute.MirroredStrategy (two logical CPU devices) and
keras_int.distribute.MultiWorkerMirroredStrategy (two localhost worker processes),
bit-identical to one device (batch norm, transformer blocks and DFP16 included);
replicas identical, checkpoints portable.

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
SCENARIOS = ("cnn_sgd_momentum", "cnn_fused_relu_master_weights_dropout_overlapping_pool", "residual_cnn",
             "sequence_embedding_matmul", "batch_norm_resnet", "transformer_block", "cnn_dfp16_adam")


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


@pytest.mark.parametrize("op", ["gelu", "softmax_masked_scaled", "layer_norm", "batch_norm", "batch_norm_inference",
                                "add_batch_broadcast"])
@pytest.mark.parametrize("split", ["3_2", "0_5"])
def test_whole_batch_ops_on_uneven_replicas_equal_one_device(results, op, split):
    """Outputs, exponents, input errors and the summed gamma/beta gradients (and the
    error of an operand without the batch axis) of an op run on the gathered batch,
    with 3 + 2 rows and with one replica empty."""
    assert results["whole_batch"][f"{op}_{split}"]


def test_whole_batch_op_without_a_batch_axis_is_refused(results):
    assert "gelu: under a tf.distribute strategy the input needs a batch axis" in results["whole_batch"][
        "rank_one_error"]


def test_bias_overflow_under_the_strategy_is_named(results):
    assert "int32 overflow: accumulator plus bias leaves int32" in results["whole_batch"]["bias_overflow_error"]


def test_backup_and_restore_resumes_as_on_one_device(results):
    assert results["backup_and_restore_equal"]


# The forks whose error carriers TensorFlow sums in float (README boundary 5), in
# both replicas' copies of the step: the residual block's input (read by the add and
# a convolution); the transformer block's input and its sum after attention (each
# read by a layer norm and an add), and the normalised input read by query, key and
# value.
FORK_SUMS = {"cnn_fused_relu_master_weights_dropout_overlapping_pool": 0, "batch_norm_resnet": 2, "transformer_block": 6}


@pytest.mark.parametrize("model", sorted(FORK_SUMS))
def test_replica_training_step_is_integer(results, model):
    """Nothing but the documented boundaries is float arithmetic in a replica's step
    (test_integer_audit), with the agreed and the whole-batch ops."""
    assert results["audit"][model]["float_arithmetic"] == []
    assert results["audit"][model]["fork_sums"] == FORK_SUMS[model]


def test_replica_step_runs_the_agreed_sequences_and_whole_batch_ops(results):
    """Under the strategy the CNN runs its agreed op sequences, not the fused layer ops
    (which decide exponents inside); batch norm, layer norm, softmax and GELU run
    their kernels on the gathered batch."""
    audit = results["audit"]
    assert audit["agrees"]
    assert {"IntOps>BatchNorm", "IntOps>BatchNormInference"} <= set(audit["batch_norm_resnet"]["ops"])
    assert {"IntOps>LayerNorm", "IntOps>Softmax", "IntOps>Gelu"} <= set(audit["transformer_block"]["ops"])


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
    and one device, each in its own process, training the same models (a CNN with dropout
    and overlapping pooling; a residual CNN with batch norm) with stock ``fit``."""
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

"""Data-parallel training under tf.distribute.MirroredStrategy (two logical CPU devices):
bit-identical to one device, replicas identical, checkpoints portable, unagreed layers refused.

The scenarios run once, in a fresh process (tests/distributed_scenarios.py):
logical devices must be configured before TensorFlow starts.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ("cnn_sgd_momentum", "cnn_master_weights_dropout_overlapping_pool", "cnn_dfp16_adam")


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


def test_layer_deciding_exponents_in_its_kernel_is_refused_by_name(results):
    message = results["refused"]
    assert message is not None, "IntAdd trained under two replicas without an error"
    assert "add: not supported yet under a tf.distribute strategy with 2 replicas" in message

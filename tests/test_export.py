"""keras_int.export_tflite: a trained integer model as a fully-integer TFLite model,
checked with TensorFlow's TFLite interpreter on the digits test set."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras
import keras_int
from keras_int.examples import models


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = load_digits()
    x = (data.images[:, :, :, None] / 16.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = models.build("lenet", (8, 8, 1), 10, integer=True)
    model.compile(keras_int.optimizers.IntegerSGD(), keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    model.fit(x[:1400], data.target[:1400], epochs=10, batch_size=32, verbose=0)
    path = keras_int.export_tflite(model, tmp_path_factory.mktemp("tflite") / "lenet.tflite", x[:1400])
    return model, path, (x[1400:], data.target[1400:])


def run_tflite(path, x):
    """Top-1 classes of the TFLite model on float inputs x (quantized with the model's
    input scale and zero point, as a deployment would)."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    scale, zero = inp["quantization"]
    interpreter.set_tensor(inp["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).argmax(1), interpreter


def test_tflite_model_is_fully_integer(trained):
    _, path, (x, _) = trained
    _, interpreter = run_tflite(path, x[:4])
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= ops and not ops & {"DEQUANTIZE", "QUANTIZE"}, ops
    # Every tensor the kernels compute on is int8, or int32 (biases, shapes).
    for detail in interpreter.get_tensor_details():
        assert detail["dtype"] in (np.int8, np.int32), (detail["name"], detail["dtype"])


def test_tflite_answers_agree_with_the_integer_model_on_the_digits(trained):
    model, path, (x, y) = trained
    tflite_top1, _ = run_tflite(path, x)
    int_top1 = model.predict(x, verbose=0).argmax(1)
    assert np.mean(tflite_top1 == int_top1) >= 0.99
    assert abs(np.mean(tflite_top1 == y) - np.mean(int_top1 == y)) <= 0.005


def test_export_refuses_bad_representative_data_and_inputs(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras_int.layers.IntDense(2)])
    with pytest.raises(ValueError, match="representative_data is empty"):
        keras_int.export_tflite(model, tmp_path / "m.tflite", np.zeros((0, 4), np.float32))
    ids = keras.Input((3,), dtype="int32")
    embedded = keras_int.layers.IntEmbedding(5, 4)(ids)
    with pytest.raises(ValueError, match="one float32 input"):
        keras_int.export_tflite(keras.Model(ids, embedded), tmp_path / "e.tflite", np.zeros((2, 3), np.int32))
    tokens = keras.Input((3, 4))
    normed = keras_int.layers.IntLayerNormalization(name="norm")(keras_int.layers.IntDense(4)(tokens))
    with pytest.raises(ValueError, match=r"layer normalization \(\['norm'\]\) has no fully-integer TFLite form"):
        keras_int.export_tflite(keras.Model(tokens, normed), tmp_path / "n.tflite", np.zeros((2, 3, 4), np.float32))

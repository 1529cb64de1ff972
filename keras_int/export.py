"""Deployment: a trained keras_int model as a fully-integer TFLite model.

``export_tflite`` writes the model's stock-Keras twin (``to_float``: the
trained integer weights dequantized exactly) through TensorFlow Lite's
converter with full-integer quantization: int8 weights (per output
channel), int8 activations whose scales the converter calibrates on
``representative_data``, int32 biases, int8 input and output. The result
runs on integer-only runtimes (TFLite Micro, NPUs) with no keras_int.

>>> keras_int.export_tflite(model, "model.tflite", x_train[:500])
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_int.conversion import all_layers, to_float

# Samples the converter calibrates on when representative_data is an array
# (TensorFlow's guidance: a few hundred).
CALIBRATION_SAMPLES = 500


def _calibration_batches(representative_data):
    """A generator of [batch] lists for the converter: an array's first samples one
    by one, or each batch of a tf.data.Dataset / iterable (the x of (x, y) pairs)."""
    if isinstance(representative_data, np.ndarray) or tf.is_tensor(representative_data):
        data = np.asarray(representative_data, np.float32)
        if len(data) == 0:
            raise ValueError("export_tflite: representative_data is empty")

        def batches():
            for i in range(min(len(data), CALIBRATION_SAMPLES)):
                yield [data[i:i + 1]]
        return batches

    def batches():
        samples = 0
        for batch in representative_data:  # at most CALIBRATION_SAMPLES samples (a dataset may repeat)
            if isinstance(batch, (tuple, list)):
                batch = batch[0]
            batch = np.asarray(batch, np.float32)
            samples += len(batch)
            yield [batch]
            if samples >= CALIBRATION_SAMPLES:
                return
        if samples == 0:
            raise ValueError("export_tflite: representative_data yielded no batch")
    return batches


def export_tflite(model, path, representative_data):
    """Writes a fully-integer (int8) TFLite model of a trained keras_int model to `path`.

    Args:
      model: a keras_int model (or one with float layers kept) with one float input.
      path: the .tflite file to write.
      representative_data: inputs to calibrate the activation scales on: an
        array (its first 500 samples are used) or an iterable of batches
        (tf.data.Dataset; the x of (x, y) pairs; batches up to 500 samples).
    Returns:
      `path`. The model's input and output are int8 with the scale and zero
      point in the interpreter's input/output details (``quantization``).

    The activation scales are TFLite's calibrated affine ones, not the
    integer model's power-of-two exponents, and its weights are requantized
    per output channel, so the TFLite model is a close twin, not a bit-exact
    one: on the digits its top-1 answers agree with the integer model's on
    99 % or more of the test set (tests/test_export.py). Layer normalization
    is refused: TFLite has no int8 kernel for it, and its int8 decomposition
    keeps a float step and loses accuracy (a ViT on the digits: 0.60 where the
    integer model had 0.79); ``to_float`` carries such models to plain Keras.
    """
    if len(model.inputs) != 1 or model.inputs[0].dtype not in ("float32", tf.float32):
        raise ValueError(f"export_tflite: the model must have one float32 input, got "
                         f"{[(t.shape, t.dtype) for t in model.inputs]}")
    plain = to_float(model)
    layer_norms = [layer.name for layer in all_layers(plain) if isinstance(layer, keras.layers.LayerNormalization)]
    if layer_norms:
        raise ValueError(f"export_tflite: layer normalization ({layer_norms}) has no fully-integer TFLite form "
                         "(its int8 decomposition keeps a float negation and loses accuracy); export the "
                         "plain Keras model of keras_int.to_float instead")
    with tempfile.TemporaryDirectory() as directory:
        plain.export(directory, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _calibration_batches(representative_data)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path

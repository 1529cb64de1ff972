"""Training throughput and memory: integer model vs its float32 Keras twin.

    python benchmarks/train_step.py [--steps 30] [--bits 16]

For each configuration (MNIST LeNet at batch 64 and 256, NITI's VGG-small at
batch 64, the CIFAR ResNet-20 with batch norm at batch 64, the small ViT on
28x28 images (4x4 patches) and the text transformer on 64 tokens of an
84-symbol vocabulary at batch 64; ``--batch`` sets one batch size for all) both models are trained by ``model.fit`` on the same
synthetic batches, in the same process, alternately, after a warm-up
(tracing); the script prints images/s of each and the ratio integer /
float32. ``--bits 16`` measures the DFP16 models (int16 dense and convolution
layers, docs/algorithms.md 16) instead of the int8 ones. Peak memory
is measured per model in a fresh process: the peak of the bytes TensorFlow's
allocator holds during a training epoch (after a warm-up epoch), above what it
held before the model was built; see memory_child. Both children run with
TensorFlow's BFC allocator on the CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``):
the default CPU allocator keeps no statistics where oneDNN is off (CPUs
without AVX-512 VNNI, such as the AVX2 EPYC), and one allocator for both
twins keeps the ratio fair. Quote ratios: the machine is shared.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = [("lenet", (28, 28, 1), 64), ("lenet", (28, 28, 1), 256), ("vgg_small", (32, 32, 3), 64),
           ("resnet20", (32, 32, 3), 64), ("vit_tiny", (28, 28, 1), 64), ("text_transformer", (64,), 64)]
# The text model's vocabulary (the fortune cookies' characters).
TEXT_VOCAB = 84


def _setup(model_name, input_shape, batch, integer, steps, build=True, bits=8):
    """(model, data); with build=False, model is a function that builds it."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_int
    from keras_int.examples import models

    keras.utils.set_random_seed(0)
    keras_int.set_default_bits(bits)
    rng = np.random.default_rng(0)
    text = model_name == "text_transformer"
    if text:
        x = rng.integers(0, TEXT_VOCAB, (steps * batch, *input_shape)).astype(np.int32)
    else:
        x = rng.random((steps * batch, *input_shape), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()

    def build_model():
        model = models.build(model_name, input_shape, 10, integer=integer, vocab=TEXT_VOCAB if text else None)
        if integer:
            model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                          loss=keras_int.losses.IntegerCrossEntropy())
        else:
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    return (build_model() if build else build_model), data


def memory_child(model_name, input_shape, batch, integer, steps, bits=8):
    """Runs in a fresh process: peak training memory of one model (MiB).

    TensorFlow's CPU allocator counts the bytes it holds for tensors (every
    op output and temporary, the variables and optimizer slots); its peak
    over a training epoch, after a warm-up epoch, minus what it held before
    the model was built (the cached input batches), is what training the
    model needs. The allocator rounds large requests up to its free chunks,
    so this includes its fragmentation, as the process's memory does.
    """
    import tensorflow as tf

    model, data = _setup(model_name, input_shape, batch, integer, steps, build=False, bits=bits)
    for _ in data:  # fill the cache before the baseline
        pass
    try:
        baseline = tf.config.experimental.get_memory_info("CPU:0")["current"]
    except ValueError:  # an allocator without statistics (TF_CPU_ALLOCATOR_USE_BFC unset)
        print(json.dumps({"train_mib": None}))
        return
    model = model()
    model.fit(data, epochs=1, verbose=0)
    tf.config.experimental.reset_memory_stats("CPU:0")
    model.fit(data, epochs=1, verbose=0)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    print(json.dumps({"train_mib": (peak - baseline) / 2**20}))


def _memory(model_name, input_shape, batch, integer, steps, bits):
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import train_step; train_step.memory_child({model_name!r}, {input_shape!r}, {batch}, "
            f"{integer}, {steps}, {bits})")
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true")  # an allocator that keeps statistics
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["train_mib"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed epochs per model")
    parser.add_argument("--only", default=None,
                        help="run one model: lenet, vgg_small, resnet20, vit_tiny or text_transformer")
    parser.add_argument("--batch", type=int, default=None, help="override every configuration's batch size")
    parser.add_argument("--bits", type=int, default=8, choices=(8, 16),
                        help="mantissa width of the integer models (16: DFP16)")
    args = parser.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; int{args.bits} vs float32, model.fit")
    print(f"{'model':<16} {'batch':>5} {'int img/s':>10} {'f32 img/s':>10} {'ratio':>6}"
          f" {'int MiB':>8} {'f32 MiB':>8} {'ratio':>6}")
    configs = CONFIGS
    if args.batch is not None:  # one run per model at that batch
        configs = list({name: (name, shape, args.batch) for name, shape, _ in CONFIGS}.values())
    for model_name, input_shape, batch in configs:
        if args.only and model_name != args.only:
            continue
        runs = {}
        for integer in (True, False):
            model, data = _setup(model_name, input_shape, batch, integer, args.steps, bits=args.bits)
            model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, allocation
            runs[integer] = (model, data, [])
        for _ in range(args.rounds):
            for integer in (True, False):
                model, data, times = runs[integer]
                start = time.perf_counter()
                model.fit(data, epochs=1, verbose=0)
                times.append(time.perf_counter() - start)
        speed = {k: args.steps * batch / min(v[2]) for k, v in runs.items()}
        memory = {k: _memory(model_name, input_shape, batch, k, args.steps, args.bits) for k in (True, False)}
        if None in memory.values():
            columns = f" {'n/a':>8} {'n/a':>8} {'n/a':>6}"
        else:
            columns = f" {memory[True]:>8.1f} {memory[False]:>8.1f} {memory[True] / memory[False]:>6.2f}"
        print(f"{model_name:<16} {batch:>5} {speed[True]:>10.1f} {speed[False]:>10.1f}"
              f" {speed[True] / speed[False]:>6.2f}" + columns, flush=True)


if __name__ == "__main__":
    main()

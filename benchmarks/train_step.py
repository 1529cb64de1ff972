"""Training throughput and memory: integer model vs its float32 Keras twin.

    python benchmarks/train_step.py [--steps 30]

For each configuration (MNIST LeNet at batch 64 and 256, NITI's VGG-small at
batch 64) both models are trained by ``model.fit`` on the same synthetic
batches, in the same process, alternately, after a warm-up (tracing); the
script prints images/s of each and the ratio integer / float32. Peak memory
is measured per model in a fresh process: the peak resident set sampled
during a training epoch (after a warm-up epoch) minus the resident set just
before it, i.e. what the training steps allocate. Quote ratios: the machine is shared.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = [("lenet", (28, 28, 1), 64), ("lenet", (28, 28, 1), 256), ("vgg_small", (32, 32, 3), 64)]


def _setup(model_name, input_shape, batch, integer, steps):
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_int
    from keras_int.examples import models

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, *input_shape), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    model = models.build(model_name, input_shape, 10, integer=integer)
    if integer:
        model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                      loss=keras_int.losses.IntegerCrossEntropy())
    else:
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, data


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(model_name, input_shape, batch, integer, steps):
    """Runs in a fresh process: training-step memory of one model (MiB).

    After a warm-up epoch (tracing, first allocations), a thread samples the
    resident set every half millisecond during a second epoch; the result is
    its peak minus the resident set just before that epoch.
    """
    import threading

    model, data = _setup(model_name, input_shape, batch, integer, steps)
    model.fit(data, epochs=1, verbose=0)
    peak, running = [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.0005)

    before = _rss_mib()
    sampler = threading.Thread(target=sample)
    sampler.start()
    model.fit(data, epochs=1, verbose=0)
    running[0] = False
    sampler.join()
    print(json.dumps({"train_mib": peak[0] - before}))


def _memory(model_name, input_shape, batch, integer, steps):
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import train_step; train_step.memory_child({model_name!r}, {input_shape!r}, {batch}, "
            f"{integer}, {steps})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["train_mib"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed epochs per model")
    parser.add_argument("--only", default=None, help="run one model: lenet or vgg_small")
    args = parser.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; integer vs float32, model.fit")
    print(f"{'model':<10} {'batch':>5} {'int img/s':>10} {'f32 img/s':>10} {'ratio':>6}"
          f" {'int MiB':>8} {'f32 MiB':>8} {'ratio':>6}")
    for model_name, input_shape, batch in CONFIGS:
        if args.only and model_name != args.only:
            continue
        runs = {}
        for integer in (True, False):
            model, data = _setup(model_name, input_shape, batch, integer, args.steps)
            model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, allocation
            runs[integer] = (model, data, [])
        for _ in range(args.rounds):
            for integer in (True, False):
                model, data, times = runs[integer]
                start = time.perf_counter()
                model.fit(data, epochs=1, verbose=0)
                times.append(time.perf_counter() - start)
        speed = {k: args.steps * batch / min(v[2]) for k, v in runs.items()}
        memory = {k: _memory(model_name, input_shape, batch, k, args.steps) for k in (True, False)}
        print(f"{model_name:<10} {batch:>5} {speed[True]:>10.1f} {speed[False]:>10.1f}"
              f" {speed[True] / speed[False]:>6.2f} {memory[True]:>8.1f} {memory[False]:>8.1f}"
              f" {memory[True] / memory[False]:>6.2f}", flush=True)


if __name__ == "__main__":
    main()

"""Cost of exponent agreement: a training step on one device vs MirroredStrategy on
two logical CPU devices of the same machine (same global batch), integer and float32.

Both logical devices share the machine's cores, so this measures the overhead
of the replicated step (agreement collectives, the agreed op sequences that
replace the fused layer ops, the exact gradient sum), not a speed-up.

Usage: python benchmarks/distribute.py [--model lenet] [--batch 64] [--steps 20] [--repeats 3]
  --model resnet20 / vit_tiny: batch norm, or layer norm, softmax and GELU,
  which run on the gathered batch under a strategy.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_int  # noqa: E402
from keras_int.examples import models  # noqa: E402


def build(name, integer):
    keras.utils.set_random_seed(0)
    model = models.build(name, (28, 28, 1), 10, integer=integer)
    if integer:
        model.compile(optimizer=keras_int.optimizers.IntegerSGD(), loss=keras_int.losses.IntegerCrossEntropy())
    else:
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(True))
    return model


def steps_per_second(strategy, name, integer, x, y, batch, steps, repeats):
    with strategy.scope():
        model = build(name, integer)
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # trace and warm up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x[:batch * steps], y[:batch * steps], batch_size=batch, epochs=1, verbose=0, shuffle=False)
        best = max(best, steps / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet", choices=("lenet", "vgg_small", "resnet20", "vit_tiny"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch * args.steps, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.batch * args.steps)
    print(f"{args.model}, global batch {args.batch}, best of {args.repeats} x {args.steps} steps (steps/s)")
    print("| model | one device | 2 replicas (MirroredStrategy) | ratio |")
    print("|---|---|---|---|")
    # One strategy for both models: two MirroredStrategy objects in one process
    # reuse collective instance keys.
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for integer in (True, False):
        one = steps_per_second(tf.distribute.get_strategy(), args.model, integer, x, y, args.batch, args.steps,
                               args.repeats)
        two = steps_per_second(mirrored, args.model, integer, x, y, args.batch, args.steps, args.repeats)
        print(f"| {'integer' if integer else 'float32'} | {one:.1f} | {two:.1f} | {two / one:.2f}x |")


if __name__ == "__main__":
    main()

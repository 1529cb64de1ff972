"""Integer op throughput vs TensorFlow float32 on the same shapes, in one run.

    python benchmarks/ops.py [--repeats 20] [--bits 16]

Prints, per problem, the integer GOPS (2 * multiply-accumulates per second)
and the ratio of integer to float32 throughput; ``--bits 16`` times the
DFP16 products (int16 operands, exact int64 sums, docs/algorithms.md 16)
instead of the int8 ones. Then (int8 only) the transformer's elementwise
ops, forward and backward on carriers against Keras' float32 layers: layer
normalization and the attention softmax, as milliseconds per call and the
float32 / integer time ratio. The two are measured alternately
in the same process, so a busy machine slows both; quote the ratios, not the
absolute numbers.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

import tf_int_ops as ops  # noqa: E402
from tf_int_ops.layer_ops import attention, normalization  # noqa: E402


def _time(fn, repeats):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _compare(name, macs, int_fn, float_fn, repeats):
    # Alternate the two so both see the same machine state.
    t_int, t_float = [], []
    for _ in range(3):
        t_int.append(_time(int_fn, repeats))
        t_float.append(_time(float_fn, repeats))
    t_int, t_float = min(t_int), min(t_float)
    gops_int, gops_float = 2 * macs / t_int / 1e9, 2 * macs / t_float / 1e9
    print(f"{name:<44} {gops_int:8.1f} {gops_float:8.1f} {gops_int / gops_float:7.2f}")
    return gops_int / gops_float


def _compare_time(name, int_fn, float_fn, repeats):
    """Milliseconds per call of each, alternated, and float32 time / integer time."""
    t_int, t_float = [], []
    for _ in range(3):
        t_int.append(_time(int_fn, repeats))
        t_float.append(_time(float_fn, repeats))
    t_int, t_float = min(t_int), min(t_float)
    print(f"{name:<44} {t_int * 1e3:8.3f} {t_float * 1e3:8.3f} {t_float / t_int:7.2f}")
    return t_float / t_int


def _forward_backward(fn, x, dy, weights=()):
    """A tf.function of fn(x)'s forward pass and the gradients of sum(fn(x) * dy)."""
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * dy)
        return tape.gradient(loss, [x, *weights])
    return lambda: [g.numpy() for g in step() if g is not None]


def _elementwise(rng, repeats):
    """Layer norm and softmax forward + backward, integer carriers vs Keras float32."""
    print(f"{'forward + backward':<44} {'int ms':>8} {'f32 ms':>8} {'f32/int':>7}")
    ratios = []
    for shape in ((64, 64, 32), (64, 49, 32)):  # the text model's and the ViT's token rows
        x = tf.constant(rng.integers(-127, 128, shape).astype(np.float32) * 2.0 ** -7)
        dy = tf.constant(rng.integers(-127, 128, shape).astype(np.float32) * 2.0 ** -10)
        gamma = tf.Variable(tf.fill([shape[-1]], tf.constant(64, tf.int8)))  # 1.0 at exponent -6
        beta = tf.Variable(tf.zeros([shape[-1]], tf.int32))
        float_norm = keras.layers.LayerNormalization(epsilon=1e-3)
        float_norm.build(shape)
        ratios.append(_compare_time(
            f"layer norm {'x'.join(map(str, shape))}",
            _forward_backward(lambda t: normalization.layer_norm(t, gamma, beta, -6)[0], x, dy, [gamma, beta]),
            _forward_backward(float_norm, x, dy, float_norm.trainable_weights), repeats))
    for shape in ((64, 4, 64, 64), (64, 4, 49, 49)):  # batch, heads, queries, keys
        x = tf.constant(rng.integers(-127, 128, shape).astype(np.float32) * 2.0 ** -4)
        dy = tf.constant(rng.integers(-127, 128, shape).astype(np.float32) * 2.0 ** -12)
        ratios.append(_compare_time(
            f"softmax {'x'.join(map(str, shape))}",
            _forward_backward(lambda t: attention.softmax(t)[0], x, dy),
            _forward_backward(tf.nn.softmax, x, dy), repeats))
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bits", type=int, default=8, choices=(8, 16), help="operand width: int8 or int16")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dtype = np.int8 if args.bits == 8 else np.int16
    top = 2 ** (args.bits - 1) - 1

    def operand(shape, low=-top, high=top):  # int8 or int16
        return tf.constant(rng.integers(low, high + 1, shape).astype(dtype))

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; int{args.bits} ops vs float32 ops")
    print(f"{'problem':<44} {'int GOPS':>8} {'f32 GOPS':>8} {'ratio':>7}")
    ratios = []
    for m, n, k in ((512, 512, 512), (1024, 1024, 1024), (25088, 64, 288), (8192, 128, 576),
                    (288, 64, 25088)):
        a, b = operand((m, k)), operand((k, n))
        af, bf = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
        ratios.append(_compare(f"matmul {m}x{n}x{k}", m * n * k,
                               lambda: ops.int_matmul(a, b).numpy(),
                               lambda: tf.matmul(af, bf).numpy(), args.repeats))

    for batch, size, cin, cout in ((32, 28, 32, 64), (64, 14, 64, 64), (32, 32, 3, 64)):
        x = operand((batch, size, size, cin), 0, top)
        w = operand((3, 3, cin, cout))
        dy = operand((batch, size, size, cout))
        xf, wf, dyf = (tf.cast(t, tf.float32) for t in (x, w, dy))
        macs = batch * size * size * cin * cout * 9
        shape = f"{batch}x{size}x{size}x{cin}->{cout} 3x3"
        ratios.append(_compare(f"conv fwd {shape}", macs,
                               lambda: ops.int_conv2d(x, w, 1, "SAME").numpy(),
                               lambda: tf.nn.conv2d(xf, wf, 1, "SAME").numpy(), args.repeats))
        ratios.append(_compare(f"conv bwd-input {shape}", macs,
                               lambda: ops.int_conv2d_backprop_input(x.shape, w, dy, 1, "SAME").numpy(),
                               lambda: tf.raw_ops.Conv2DBackpropInput(
                                   input_sizes=x.shape, filter=wf, out_backprop=dyf,
                                   strides=[1, 1, 1, 1], padding="SAME").numpy(), args.repeats))
        ratios.append(_compare(f"conv bwd-filter {shape}", macs,
                               lambda: ops.int_conv2d_backprop_filter(x, w.shape, dy, 1, "SAME").numpy(),
                               lambda: tf.raw_ops.Conv2DBackpropFilter(
                                   input=xf, filter_sizes=w.shape, out_backprop=dyf,
                                   strides=[1, 1, 1, 1], padding="SAME").numpy(), args.repeats))
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"{'geometric mean ratio':<44} {'':>8} {'':>8} {geo:7.2f}")
    if args.bits == 8:
        elementwise = _elementwise(rng, args.repeats)
        geo = float(np.exp(np.mean(np.log(elementwise))))
        print(f"{'geometric mean ratio':<44} {'':>8} {'':>8} {geo:7.2f}")


if __name__ == "__main__":
    main()

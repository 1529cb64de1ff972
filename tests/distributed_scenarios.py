"""Training scenarios on one device, under tf.distribute.MirroredStrategy with two
logical CPU devices, and as one worker of keras_int.distribute.MultiWorkerMirroredStrategy,
run in fresh processes by tests/test_distribute.py (logical devices and
TF_CONFIG must be set before TensorFlow starts).

Usage:
  python tests/distributed_scenarios.py OUT_DIR
    Writes OUT_DIR/results.json: per scenario, whether the mirrored run's
    weights (and optimizer variables, predictions, evaluation) equal the
    one-device run's bit for bit, whether the replicas' copies equal each
    other, and errors.
  python tests/distributed_scenarios.py OUT_DIR worker INDEX PORT,PORT
    Trains the CNN scenario as worker INDEX of a localhost cluster and writes
    OUT_DIR/worker_INDEX.npz (its weights) and, for worker 0, nothing else.
  python tests/distributed_scenarios.py OUT_DIR single
    Trains the same on one device: OUT_DIR/single.npz.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MODE = sys.argv[2] if len(sys.argv) > 2 else "mirrored"
if MODE == "worker":
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in sys.argv[4].split(",")]},
        "task": {"type": "worker", "index": int(sys.argv[3])}})

import tensorflow as tf  # noqa: E402

if MODE == "mirrored":
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_int  # noqa: E402
import keras_int.distribute  # noqa: E402
import tf_int_ops  # noqa: E402
from keras_int import layers as L  # noqa: E402

DEVICES = ["/cpu:0", "/cpu:1"]
_MIRRORED = []


def mirrored_strategy():
    """The process's one MirroredStrategy: two strategy objects in one process reuse
    collective keys, and their all-reduces of different shapes collide."""
    if not _MIRRORED:
        _MIRRORED.append(tf.distribute.MirroredStrategy(DEVICES))
    return _MIRRORED[0]


def digits(n=256):
    data = load_digits()
    return (data.images[:n, :, :, None] / 16.0).astype("float32"), data.target[:n].astype("int64")


def cnn(bits=8, dropout=False, overlapping_pool=False, fused_relu=False):
    """fused_relu: the ReLUs as the layers' activation="relu" instead of IntReLU layers."""
    pool = L.IntMaxPool2D(3, strides=2, padding="same", bits=bits) if overlapping_pool else L.IntMaxPool2D(2, bits=bits)

    def with_relu(layer_type, *args, **kwargs):
        if fused_relu:
            return [layer_type(*args, activation="relu", **kwargs)]
        return [layer_type(*args, **kwargs), L.IntReLU()]

    layers = [keras.Input((8, 8, 1)), *with_relu(L.IntConv2D, 8, 3, use_bias=True, bits=bits), pool, L.IntFlatten()]
    if dropout:
        layers.append(L.IntDropout(0.5, bits=bits))
    layers += [*with_relu(L.IntDense, 16, bits=bits), L.IntDense(10, use_bias=True, bits=bits)]
    return keras.Sequential(layers)


def residual_cnn():
    inputs = keras.Input((8, 8, 1))
    h = L.IntReLU()(L.IntConv2D(8, 3, padding="same", use_bias=True)(inputs))
    h = L.IntReLU()(L.IntAdd()([h, L.IntConv2D(8, 3, padding="same")(h)]))
    h = L.IntConv2D(16, 3, padding="same")(L.IntAveragePooling2D(3, strides=2, padding="same")(h))
    return keras.Model(inputs, L.IntDense(10)(L.IntGlobalAveragePooling2D()(L.IntReLU()(h))))


@keras.saving.register_keras_serializable(package="keras_int_tests")
class SelfProduct(keras.layers.Layer):
    """h @ h^T per sample with tf_int_ops.layer_ops.matmul (attention's product of two carriers)."""

    def call(self, h):
        return tf_int_ops.layer_ops.matmul(h, h, transpose_b=True)[0]


def sequence_model():
    ids = keras.Input((12,), dtype="int32")
    h = L.IntEmbedding(17, 8)(ids)
    h = L.IntAdd()([h, L.IntPositionEmbedding(12)(h)])
    h = L.IntReLU()(L.IntDense(8)(h))
    h = L.IntGlobalAveragePooling1D()(SelfProduct()(h))
    return keras.Model(ids, L.IntDense(10)(h))


def batch_norm_resnet():
    """Convolutions with batch norm in a residual block, one frozen batch norm
    (inference mode inside fit: the moving statistics and the frozen backward pass)."""
    inputs = keras.Input((8, 8, 1))
    h = L.IntReLU()(L.IntBatchNormalization(momentum=0.9)(L.IntConv2D(8, 3, padding="same")(inputs)))
    branch = L.IntBatchNormalization(momentum=0.9)(L.IntConv2D(8, 3, padding="same")(h))
    h = L.IntReLU()(L.IntAdd()([h, branch]))
    h = L.IntBatchNormalization(trainable=False)(L.IntConv2D(16, 3, strides=2, padding="same")(h))
    return keras.Model(inputs, L.IntDense(10)(L.IntGlobalAveragePooling2D()(L.IntReLU()(h))))


def transformer_block():
    """A pre-norm transformer block: layer norm, causal multi-head attention (softmax
    with a mask), a GELU MLP, residual adds, a final layer norm."""
    ids = keras.Input((12,), dtype="int32")
    h = L.IntEmbedding(17, 16)(ids)
    h = L.IntAdd()([h, L.IntPositionEmbedding(12)(h)])
    a = L.IntLayerNormalization()(h)
    h = L.IntAdd()([h, L.IntMultiHeadAttention(2, 8)(a, a, use_causal_mask=True)])
    m = L.IntDense(16)(L.IntGELU()(L.IntDense(32)(L.IntLayerNormalization()(h))))
    h = L.IntLayerNormalization()(L.IntAdd()([h, m]))
    return keras.Model(ids, L.IntDense(10)(L.IntGlobalAveragePooling1D()(h)))


def digit_sequences(x):
    """Every fifth pixel of the digits (0..16) as 12 token ids."""
    return np.round(x.reshape(len(x), 64)[:, ::5][:, :12] * 16).astype("int32")


SCENARIOS = {
    "cnn_sgd_momentum": dict(model=lambda: cnn(), optimizer=lambda: keras_int.optimizers.IntegerSGD(momentum=8)),
    "cnn_fused_relu_master_weights_dropout_overlapping_pool": dict(
        model=lambda: cnn(dropout=True, overlapping_pool=True, fused_relu=True),
        optimizer=lambda: keras_int.optimizers.IntegerSGD(weight_bits=16)),
    "residual_cnn": dict(model=residual_cnn, optimizer=lambda: keras_int.optimizers.IntegerSGD()),
    "sequence_embedding_matmul": dict(model=sequence_model, optimizer=lambda: keras_int.optimizers.IntegerSGD(),
                                      inputs=digit_sequences),
    "batch_norm_resnet": dict(model=batch_norm_resnet,
                              optimizer=lambda: keras_int.optimizers.IntegerSGD(momentum=8)),
    "transformer_block": dict(model=transformer_block, optimizer=lambda: keras_int.optimizers.IntegerAdam(),
                              inputs=digit_sequences),
    "cnn_dfp16_adam": dict(model=lambda: cnn(bits=16),
                           optimizer=lambda: keras_int.optimizers.IntegerAdam(step_bits=-2),
                           loss=lambda: keras_int.losses.IntegerCrossEntropy(bits=16)),
}


def build(scenario):
    keras.utils.set_random_seed(0)
    model = scenario["model"]()
    loss = scenario.get("loss", keras_int.losses.IntegerCrossEntropy)()
    model.compile(optimizer=scenario["optimizer"](), loss=loss, metrics=["accuracy"])
    return model


def train(scenario, strategy, out, name, x, y):
    with strategy.scope():
        model = build(scenario)
    checkpoint = os.path.join(out, f"{name}.weights.h5")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, save_weights_only=True)])
    return model, checkpoint


def equal_lists(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def replicas_agree(model):
    for variable in model.weights + model.optimizer.variables:
        inner = variable.value if hasattr(variable, "value") else variable
        components = getattr(inner, "values", None)
        if components and not all(np.array_equal(components[0].numpy(), c.numpy()) for c in components[1:]):
            return False
    return True


def run_scenario(name, scenario, out, x, y):
    x = scenario.get("inputs", lambda x: x)(x)
    single, _ = train(scenario, tf.distribute.get_strategy(), out, f"{name}_single", x, y)
    mirrored, checkpoint = train(scenario, mirrored_strategy(), out, f"{name}_mirrored", x, y)
    trained, mirrored_trained = single.get_weights(), mirrored.get_weights()
    single_eval = single.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    mirrored_eval = mirrored.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    result = {
        "weights_equal": equal_lists(trained, mirrored_trained),
        "optimizer_equal": equal_lists([v.numpy() for v in single.optimizer.variables],
                                       [v.numpy() for v in mirrored.optimizer.variables]),
        "replicas_agree": replicas_agree(mirrored),
        "predict_equal": np.array_equal(single.predict(x, batch_size=32, verbose=0),
                                        mirrored.predict(x, batch_size=32, verbose=0)),
        # A last batch of one row: one replica gets no rows.
        "predict_one_row_batch_equal": np.array_equal(single.predict(x[:33], batch_size=32, verbose=0),
                                                      mirrored.predict(x[:33], batch_size=32, verbose=0)),
        # Accuracy counts integers; the displayed loss is float32 (display only), summed
        # over the replicas in another order.
        "accuracy_equal": single_eval["accuracy"] == mirrored_eval["accuracy"],
        "loss_close": bool(np.isclose(single_eval["loss"], mirrored_eval["loss"], rtol=1e-6)),
        "trained": not equal_lists(trained, build(scenario).get_weights()),
    }
    # The weights a strategy's ModelCheckpoint saved load on one device.
    restored = build(scenario)
    restored.load_weights(checkpoint)
    result["checkpoint_equal"] = equal_lists(restored.get_weights(), trained)
    # A whole model saved under the strategy loads on one device and predicts the same.
    path = os.path.join(out, f"{name}.keras")
    mirrored.save(path)
    loaded = keras.models.load_model(path)
    result["saved_model_equal"] = (equal_lists(loaded.get_weights(), mirrored.get_weights())
                                   and np.array_equal(loaded.predict(x, batch_size=32, verbose=0),
                                                      single.predict(x, batch_size=32, verbose=0)))
    return result


class _Interrupt(keras.callbacks.Callback):
    """Stops training with an error at the start of the second epoch (after the first backup)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


def resumed(scenario, strategy, directory, x, y):
    """Weights after a 2-epoch fit interrupted after epoch 1 and resumed by BackupAndRestore."""
    for callbacks in ([keras.callbacks.BackupAndRestore(directory), _Interrupt()],
                      [keras.callbacks.BackupAndRestore(directory)]):
        with strategy.scope():
            model = build(scenario)
        try:
            model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False, callbacks=callbacks)
        except RuntimeError as error:
            assert "interrupted" in str(error)
    return model.get_weights()


def backup_and_restore(out, x, y):
    """BackupAndRestore under MirroredStrategy resumes exactly as on one device."""
    scenario = SCENARIOS["cnn_sgd_momentum"]
    single = resumed(scenario, tf.distribute.get_strategy(), os.path.join(out, "backup_single"), x, y)
    mirrored = resumed(scenario, mirrored_strategy(), os.path.join(out, "backup_mirrored"), x, y)
    return equal_lists(single, mirrored)


def mixed_float_layer(x, y):
    """A float Dense head on integer layers: its float gradients are summed as Keras sums
    them (not bit-identical to one device: float sums depend on their order), the integer
    ones exactly; the replicas must agree and the model train."""
    with mirrored_strategy().scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8, 8, 1)), L.IntConv2D(8, 3), L.IntReLU(), L.IntMaxPool2D(2),
                                  L.IntFlatten(), keras.layers.Dense(10)])
        model.compile(optimizer=keras_int.optimizers.IntegerSGD(learning_rate=0.05),
                      loss=keras_int.losses.IntegerCrossEntropy(), metrics=["accuracy"])
    before = model.get_weights()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    after = model.get_weights()
    return {"replicas_agree": replicas_agree(model),
            "float_trained": not np.array_equal(before[-2], after[-2]),
            "integer_trained": not np.array_equal(before[0], after[0]),
            "accuracy": model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["accuracy"]}


def audit():
    """Float arithmetic feeding the weight updates of a replica's training step
    (tests/test_integer_audit.py's walk), per model, and whether the CNN's step
    agrees exponents (the agreed op sequences, not the fused layer ops) and the
    others run their whole-batch ops on gathered rows."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_integer_audit import _carrier_fork_sums, float_arithmetic_feeding_updates

    strategy = mirrored_strategy()
    x, y = digits(16)
    results = {}
    for name in ("cnn_fused_relu_master_weights_dropout_overlapping_pool", "batch_norm_resnet", "transformer_block"):
        scenario = SCENARIOS[name]
        with strategy.scope():
            model = build(scenario)
        inputs = scenario.get("inputs", lambda x: x)(x)
        model.fit(inputs, y, batch_size=16, epochs=1, verbose=0)  # creates the optimizer's and metrics' variables
        found, nodes = float_arithmetic_feeding_updates(model, inputs, y, strategy)
        # README boundary 5: TensorFlow's float sum of the error carriers of a tensor read by two layers.
        forks = _carrier_fork_sums(found, nodes)
        results[name] = {"float_arithmetic": sorted(set(found) - set(forks)), "fork_sums": len(forks),
                         "ops": sorted({node.op for node in nodes.values()})}
    ops = set(results["cnn_fused_relu_master_weights_dropout_overlapping_pool"]["ops"])
    results["agrees"] = ("IntOps>MatMul" in ops and "IntOps>Conv2D" in ops and "IntOps>Dense" not in ops
                         and "IntOps>Conv2DLayer" not in ops)
    return results


def whole_batch_cases():
    """The whole-batch ops (replicas.on_whole_batch) on rows split unevenly between the
    replicas (3 + 2, and 0 + 5: one replica empty) against one device: outputs,
    exponents, input errors and gamma/beta gradients (summed over the replicas)."""
    strategy = mirrored_strategy()
    layer_ops = tf_int_ops.layer_ops
    rng = np.random.default_rng(3)
    # The replicas' rows differ in scale (inputs and errors), so that local decisions would differ.
    x = (rng.normal(size=(5, 4, 6)) * np.array([1, 1, 1, 6, 6])[:, None, None]).astype(np.float32)
    upstream = (rng.integers(-100, 100, size=x.shape) * 2.0**-6
                * np.array([8, 8, 8, 1, 1])[:, None, None]).astype(np.float32)
    mask = rng.random(x.shape) > 0.3
    gamma_value, beta_value = rng.integers(30, 100, 6).astype(np.int8), rng.integers(-500, 500, 6).astype(np.int32)
    moving = [tf.constant(rng.integers(-2**20, 2**20, 6), tf.int32), tf.constant(-24),
              tf.constant(rng.integers(2**18, 2**20, 6), tf.int32), tf.constant(-20)]
    # An operand without the batch axis (IntAdd broadcasting it along the batch).
    shared = (rng.integers(-100, 100, size=x.shape[1:]) * 2.0**-5).astype(np.float32)
    cases = {
        "gelu": lambda t, m, g, b, s: layer_ops.gelu(t),
        "softmax_masked_scaled": lambda t, m, g, b, s: layer_ops.softmax(t, m, scale=(23170, 16)),
        "layer_norm": lambda t, m, g, b, s: layer_ops.layer_norm(t, g, b, -6),
        "batch_norm": lambda t, m, g, b, s: tuple(layer_ops.batch_norm(t, g, b, -6)[k] for k in ("y", "y_exponent")),
        "batch_norm_inference": lambda t, m, g, b, s: tuple(layer_ops.batch_norm(
            t, g, b, -6, training=False, moving_mean=moving[0], moving_mean_exponent=moving[1],
            moving_variance=moving[2], moving_variance_exponent=moving[3])[k] for k in ("y", "y_exponent")),
        "add_batch_broadcast": lambda t, m, g, b, s: (layer_ops.add(s, t), tf.constant(0)),
    }

    def run(f, t, m, u, gamma, beta):
        s = tf.constant(shared)
        with tf.GradientTape() as tape:
            tape.watch([t, s])
            y, e = f(t, m, gamma, beta, s)
            loss = tf.reduce_sum(y * u)
        grads = tape.gradient(loss, [t, gamma, beta, s])
        return [y, e, grads[0]] + [tf.zeros_like(v, tf.int32) if g is None else tf.cast(g, tf.int32)
                                   for g, v in zip(grads[1:3], (gamma, beta))] + [
            tf.zeros_like(s) if grads[3] is None else grads[3]]

    with strategy.scope():
        gamma, beta = tf.Variable(gamma_value), tf.Variable(beta_value)
    results = {}
    for name, f in cases.items():
        single = [t.numpy() for t in run(f, tf.constant(x), tf.constant(mask), tf.constant(upstream),
                                         tf.Variable(gamma_value), tf.Variable(beta_value))]
        for split in ((0, 3, 5), (0, 0, 5)):
            def step(_):
                i = tf.distribute.get_replica_context().replica_id_in_sync_group
                begin, end = tf.constant(split)[i], tf.constant(split)[i + 1]
                return run(f, tf.constant(x)[begin:end], tf.constant(mask)[begin:end],
                           tf.constant(upstream)[begin:end], gamma, beta)

            y, e, dx, dgamma, dbeta, dshared = (strategy.experimental_local_results(t)
                                                for t in strategy.run(tf.function(step), args=(0,)))
            results[f"{name}_{split[1]}_{split[2] - split[1]}"] = bool(
                np.array_equal(np.concatenate([t.numpy() for t in y]), single[0])
                and {int(t) for t in e} == {int(single[1])}
                and np.array_equal(np.concatenate([t.numpy() for t in dx]), single[2])
                and np.array_equal(sum(t.numpy() for t in dgamma), single[3])
                and np.array_equal(sum(t.numpy() for t in dbeta), single[4])
                and np.array_equal(sum(t.numpy() for t in dshared), single[5]))

    try:
        strategy.run(lambda: layer_ops.gelu(tf.ones([4])))
        results["rank_one_error"] = "no error"
    except ValueError as error:
        results["rank_one_error"] = str(error)
    # The agreed dense sequence adds the bias in TensorFlow integer ops: overflow is named there too.
    w, b = tf.Variable(np.ones((2, 2), np.int8)), tf.Variable(np.full(2, 2**30, np.int32))
    try:
        strategy.run(tf.function(lambda: layer_ops.dense(tf.fill([2, 2], 0.5), w, 0, bias=b)))
        results["bias_overflow_error"] = "no error"
    except tf.errors.InvalidArgumentError as error:
        results["bias_overflow_error"] = error.message
    return results


def agreed_quantize_cases():
    """replicas.quantize and replicas.requantize_to_carrier of each replica's half
    against ops.quantize / requantize of the whole tensor (one device)."""
    strategy = mirrored_strategy()
    rng = np.random.default_rng(7)
    cases = {
        "random": rng.normal(size=(8, 5)).astype(np.float32),
        # max 1.0 (a power of two) in one half, the multiples decided by the other half
        "power_of_two_max_exact": np.array([[1.0, 0.5], [0.25, -0.5], [0.125, 0.0], [-0.75, 0.5]], np.float32),
        "power_of_two_max_fine": np.array([[1.0, 0.5], [0.25, -0.5], [2**-7, 0.0], [-0.75, 2**-9]], np.float32),
        "one_half_zero": np.array([[0.0, 0.0], [0.0, 0.0], [3.0, -1.5], [0.25, 7.0]], np.float32),
        "subnormal_half": np.array([[1e-40, -1e-41], [0.0, 1e-39], [2**-100, 2**-108], [-3 * 2**-102, 0.0]], np.float32),
        "all_zero": np.zeros((4, 3), np.float32),
        "negative_power_of_two": np.array([[-2.0, 1.0], [0.5, 0.0], [1.5, -0.25], [0.0, 0.0]], np.float32),
    }
    results = {}
    for name, value in cases.items():
        half = value.shape[0] // 2

        def step(_):
            rows = tf.distribute.get_replica_context().replica_id_in_sync_group * half
            local = tf.constant(value)[rows:rows + half]
            q, e = tf_int_ops.replicas.quantize(local)
            acc = tf.cast(q, tf.int32) * 1000 + 7
            y, ey = tf_int_ops.replicas.requantize_to_carrier(acc, e)
            return q, e, y, ey

        q, e, y, ey = strategy.run(tf.function(step), args=(0,))
        q = np.concatenate([t.numpy() for t in strategy.experimental_local_results(q)])
        y = np.concatenate([t.numpy() for t in strategy.experimental_local_results(y)])
        exponents = {int(t) for t in strategy.experimental_local_results(e)}
        y_exponents = {int(t) for t in strategy.experimental_local_results(ey)}
        q1, e1 = tf_int_ops.quantize(tf.constant(value))
        acc1 = tf.cast(q1, tf.int32) * 1000 + 7
        y1, ey1 = tf_int_ops.layer_ops._loader.load().int_ops_requantize_to_carrier(acc1, e1, tf.zeros([2], tf.int64))
        results[name] = (np.array_equal(q, q1.numpy()) and exponents == {int(e1)}
                         and np.array_equal(y, y1.numpy()) and y_exponents == {int(ey1)})
    return results


def main(out):
    x, y = digits()
    results = {"quantize": agreed_quantize_cases(), "whole_batch": whole_batch_cases(), "audit": audit(),
               "backup_and_restore_equal": backup_and_restore(out, x, y), "mixed_float": mixed_float_layer(x, y)}
    for name, scenario in SCENARIOS.items():
        results[name] = run_scenario(name, scenario, out, x, y)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=bool)


# The scenarios the multi-worker test trains: every agreement mechanism (agreed
# exponents, sentinels, dropout's global mask; whole-batch batch norm).
MULTI_WORKER_SCENARIOS = ("cnn_fused_relu_master_weights_dropout_overlapping_pool", "batch_norm_resnet")


def multi_worker(out, mode):
    """The multi-worker scenarios on one device or as one worker: their weights and
    what they predict, for the test to compare across processes."""
    strategy = (keras_int.distribute.MultiWorkerMirroredStrategy() if mode == "worker"
                else tf.distribute.get_strategy())
    x, y = digits()
    arrays = {}
    for name in MULTI_WORKER_SCENARIOS:
        with strategy.scope():
            model = build(SCENARIOS[name])
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
        weights = model.get_weights() + [v.numpy() for v in model.optimizer.variables]
        arrays[f"{name}_predictions"] = model.predict(x, batch_size=32, verbose=0)
        arrays[f"{name}_accuracy"] = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["accuracy"]
        arrays.update({f"{name}_w{i}": w for i, w in enumerate(weights)})
    np.savez(os.path.join(out, f"worker_{sys.argv[3]}.npz" if mode == "worker" else "single.npz"), **arrays)


if __name__ == "__main__":
    if MODE == "mirrored":
        main(sys.argv[1])
    else:
        multi_worker(sys.argv[1], MODE)

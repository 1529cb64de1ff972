"""Issue 12 (Reliability II), Python side: lazily built optimizer slots,
MuScheduler without a manual build, integer arguments beyond int32/int64,
crafted checkpoints, and the labels IntegerCrossEntropy accepts."""

import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_int
import tf_int_ops
from keras_models import digits, digits_cnn
from tf_int_ops import layer_ops

L = keras_int.layers


def _data(n=64, features=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), rng.integers(0, classes, n)


def _dense_model(with_input=True):
    stack = [L.IntDense(8, use_bias=True), L.IntDense(4)]
    return keras.Sequential(([keras.Input((16,))] if with_input else []) + stack)


def _fit_one_step(optimizer_args, build_eagerly, with_input=True):
    """One training step of a fresh model (seed 0); returns (model, int8 kernels before it)."""
    keras.utils.set_random_seed(0)
    model = _dense_model(with_input)
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(**optimizer_args),
                  loss=keras_int.losses.IntegerCrossEntropy())
    if build_eagerly:
        model.optimizer.build(model.trainable_variables)
    before = [layer.kernel.numpy().copy() for layer in model.layers] if with_input else None
    x, y = _data(32)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    return model, before


# ------------------------------------------------ 1. lazily built IntegerSGD


@pytest.mark.parametrize("optimizer_args", [
    {"weight_bits": 16},
    {"weight_bits": 16, "momentum": 8},
    {"momentum": 8},
    {"weight_bits": 16, "momentum": 4, "weight_decay": 2},
], ids=lambda args: "-".join(f"{k}={v}" for k, v in args.items()))
def test_optimizer_built_inside_the_first_step_matches_an_eagerly_built_one(optimizer_args):
    eager, before = _fit_one_step(optimizer_args, build_eagerly=True)
    lazy, lazy_before = _fit_one_step(optimizer_args, build_eagerly=False)
    for u, v in zip(before, lazy_before):
        np.testing.assert_array_equal(u, v)
    mu = lazy.optimizer.mu
    for layer, w0 in zip(lazy.layers, before):
        change = np.abs(layer.kernel.numpy().astype(np.int32) - w0)
        # One update moves an int16 master by at most 2**mu (< 256: one int8
        # step), an int8 weight by at most 2**mu.
        assert change.max() <= (1 if optimizer_args.get("weight_bits") == 16 else 2**mu), layer.name
        master = lazy.optimizer._masters[lazy.optimizer._get_variable_index(layer.kernel)]
        if master is not None:
            assert np.abs(master.numpy().astype(np.int32) - w0.astype(np.int32) * 256).max() <= 2**mu
    for u, v in zip(eager.weights, lazy.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=u.path)
    assert len(eager.optimizer.variables) == len(lazy.optimizer.variables)
    for u, v in zip(eager.optimizer.variables, lazy.optimizer.variables):
        np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=u.path)


def test_16_bit_masters_of_a_model_built_in_the_first_step_start_at_its_weights():
    # No keras.Input: the layers and the optimizer are both built in the traced step.
    eager, _ = _fit_one_step({"weight_bits": 16, "momentum": 8}, build_eagerly=True)
    unbuilt, _ = _fit_one_step({"weight_bits": 16, "momentum": 8}, build_eagerly=False,
                               with_input=False)
    for u, v in zip(eager.weights, unbuilt.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=u.path)
    for u, v in zip(eager.optimizer.variables, unbuilt.optimizer.variables):
        np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=u.path)


# ------------------------------------------------ 2. callbacks, lazily built optimizer


@pytest.mark.parametrize("with_input", [True, False], ids=["built_model", "unbuilt_model"])
def test_mu_scheduler_in_the_plain_compile_fit_flow(with_input):
    keras.utils.set_random_seed(0)
    model = _dense_model(with_input)
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu=5),
                  loss=keras_int.losses.IntegerCrossEntropy())
    tracker = keras_int.callbacks.ExponentTracker(every_n_batches=1)
    x, y = _data(64)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0,
                        callbacks=[keras_int.callbacks.MuScheduler(lambda epoch: 5 - epoch), tracker])
    assert history.history["exp/mu"] == [5, 4]
    assert [record["exp/mu"] for record in tracker.batch_records] == [5, 5, 4, 4]
    assert int(model.optimizer.mu_variable.numpy()) == 4
    assert int(model.optimizer.current_mu.numpy()) == 4


def test_mu_scheduler_refuses_other_optimizers_and_mu_schedules():
    x, y = _data(32)
    scheduler = keras_int.callbacks.MuScheduler(lambda epoch: 4)
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(), loss=keras_int.losses.IntegerCrossEntropy())
    with pytest.raises(ValueError, match="MuScheduler needs an IntegerSGD optimizer, got SGD"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[scheduler])
    model = _dense_model()
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [6, 2])
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu_schedule=schedule),
                  loss=keras_int.losses.IntegerCrossEntropy())
    with pytest.raises(ValueError, match="MuScheduler needs an IntegerSGD without mu_schedule"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[scheduler])


@pytest.mark.parametrize("option", [dict(clipnorm=1.0), dict(clipvalue=0.5), dict(global_clipnorm=1.0),
                                    dict(use_ema=True), dict(loss_scale_factor=128.0),
                                    dict(gradient_accumulation_steps=2)])
def test_float_gradient_transformations_are_refused(option):
    with pytest.raises(ValueError, match=f"IntegerSGD: {next(iter(option))} is not supported"):
        keras_int.optimizers.IntegerSGD(**option)


def test_set_mu_checks_its_value_and_sets_the_initial_mu_before_build():
    optimizer = keras_int.optimizers.IntegerSGD(mu=5)
    for bad in (0, 31, 2.0, True):
        with pytest.raises(ValueError, match="IntegerSGD.set_mu: mu must be an int in \\[1, 30\\]"):
            optimizer.set_mu(bad)
    optimizer.set_mu(np.int64(3))
    variable = keras.Variable(np.zeros(3, np.int8), dtype="int8")
    optimizer.build([variable])
    assert int(optimizer.mu_variable.numpy()) == 3
    assert optimizer.get_config()["mu"] == 5  # the constructor's argument
    optimizer.set_mu(7)
    assert int(optimizer.mu_variable.numpy()) == 7


def test_exponent_tracker_with_a_frozen_layer():
    keras.utils.set_random_seed(0)
    model = _dense_model()
    model.layers[0].trainable = False
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                  loss=keras_int.losses.IntegerCrossEntropy())
    x, y = _data(32)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0,
                        callbacks=[keras_int.callbacks.ExponentTracker()])
    frozen, trained = model.layers
    assert f"exp/{frozen.name}/grad_bits" not in history.history
    assert history.history[f"exp/{trained.name}/grad_bits"][0] > 0
    assert model.optimizer.grad_bits(frozen.kernel) is None


# ------------------------------------------------ 3. integers beyond int32 / int64

_Q = tf.constant([1, 2], tf.int8)
_ACC = tf.constant([100, -7], tf.int32)
_X4 = tf.ones([1, 4, 4, 2], tf.int8)
_W4 = tf.ones([3, 3, 2, 4], tf.int8)
_DY4 = tf.ones([1, 4, 4, 4], tf.int8)
_INT32_RANGE = "\\[-2147483648, 2147483647\\] \\(int32\\)"
_INT64_RANGE = "\\[-9223372036854775808, 9223372036854775807\\] \\(int64\\)"


_RANGE_CASES = [
    (lambda: tf_int_ops.dequantize(_Q, 2**32 + 5),
     f"dequantize: exponent must be in {_INT32_RANGE}, got 4294967301"),
    (lambda: tf_int_ops.dequantize(_Q, -2**31 - 1),
     f"dequantize: exponent must be in {_INT32_RANGE}, got -2147483649"),
    (lambda: tf_int_ops.requantize(_ACC, 2**33), f"requantize: exponent must be in {_INT32_RANGE}"),
    (lambda: tf_int_ops.round_shift(_ACC, 2**32 + 3),
     f"round_shift: shift must be in {_INT32_RANGE}, got 4294967299"),
    (lambda: tf_int_ops.int_add(_Q, 0, _Q, 2**32), f"int_add: b_exponent must be in {_INT32_RANGE}"),
    (lambda: tf_int_ops.int_conv2d_backprop_input([1, 2**32 + 4, 4, 2], _W4, _DY4),
     f"int_conv2d_backprop_input: input_sizes must be in {_INT32_RANGE}, got 4294967300"),
    (lambda: tf_int_ops.int_conv2d_backprop_input([1, np.int64(2**32 + 4), 4, 2], _W4, _DY4),
     f"int_conv2d_backprop_input: input_sizes must be in {_INT32_RANGE}, got 4294967300"),
    (lambda: tf_int_ops.int_conv2d_backprop_input(np.array([1, 2**32 + 4, 4, 2]), _W4, _DY4),
     "int_conv2d_backprop_input: input_sizes must be int32, got int64"),
    (lambda: tf_int_ops.int_conv2d_backprop_filter(_X4, [3, 3, 2, 2**32 + 4], _DY4),
     f"int_conv2d_backprop_filter: filter_sizes must be in {_INT32_RANGE}, got 4294967300"),
    (lambda: tf_int_ops.int_avg_pool2d_grad([1, 2**32 + 8, 8, 4], _DY4, 0),
     f"int_avg_pool2d_grad: input_sizes must be in {_INT32_RANGE}, got 4294967304"),
    (lambda: tf_int_ops.int_avg_pool2d_grad([1, 8, 8, 4], _DY4, 2**32),
     f"int_avg_pool2d_grad: exponent must be in {_INT32_RANGE}"),
    (lambda: tf_int_ops.integer_sgd_update(tf.zeros([2], tf.int8), _ACC, mu=2**32 + 3),
     "integer_sgd_update: mu must be an int in \\[1, 30\\], got 4294967299"),
    (lambda: tf_int_ops.integer_sgd_update(tf.zeros([2], tf.int8), _ACC, mu=[2**32 + 3]),
     f"integer_sgd_update: mu must be in {_INT32_RANGE}, got 4294967299"),
    (lambda: tf_int_ops.int_matmul([[40000]], [[1]]),
     "int_matmul: x must be in \\[-32768, 32767\\] \\(int16\\), got 40000"),
    (lambda: tf_int_ops.requantize(_ACC, 0, "stochastic", seed=2**64),
     f"requantize: seed must be in {_INT64_RANGE}, got 18446744073709551616"),
    (lambda: tf_int_ops.requantize(_ACC, 0, "stochastic", seed=[1, 2**63]),
     f"requantize: seed must be in {_INT64_RANGE}, got 9223372036854775808"),
    (lambda: tf_int_ops.int_softmax_cross_entropy_grad(tf.ones([1, 2], tf.int8), 0, [1],
                                                       seed=[-2**63 - 1, 0]),
     f"int_softmax_cross_entropy_grad: seed must be in {_INT64_RANGE}"),
    (lambda: tf_int_ops.int_softmax_cross_entropy_grad(tf.ones([1, 2], tf.int8), 0, [2**64]),
     f"int_softmax_cross_entropy_grad: labels must be in {_INT64_RANGE}"),
    (lambda: tf_int_ops.int_max_pool2d(tf.ones([1, 4, 4, 1], tf.int8), 2**31),
     "int_max_pool2d: pool_size must be <= 2147483647 \\(an int32 attribute\\), got 2147483648"),
    (lambda: tf_int_ops.int_max_pool2d(tf.ones([1, 4, 4, 1], tf.int8), 2, strides=(1, 2**31)),
     "int_max_pool2d: strides must be <= 2147483647"),
    (lambda: tf_int_ops.int_avg_pool2d(tf.ones([1, 4, 4, 1], tf.int8), 0, (2, 2**32 + 2)),
     "int_avg_pool2d: pool_size must be <= 2147483647"),
    (lambda: tf_int_ops.int_conv2d(_X4, _W4, strides=2**31),
     "int_conv2d: strides must be <= 2147483647"),
    (lambda: tf_int_ops.int_conv2d(_X4, _W4, dilations=2**31),
     "int_conv2d: dilations must be <= 2147483647"),
    (lambda: tf_int_ops.int_conv2d(_X4, _W4, strides=2.0),
     "int_conv2d: strides must be an int or a pair of ints"),
    (lambda: layer_ops.max_pool2d(tf.ones([1, 4, 4, 1]), 2**31),
     "max_pool2d: pool_size must be <= 2147483647"),
    (lambda: layer_ops.dense(tf.ones([1, 3]), tf.Variable(tf.ones([3, 2], tf.int8)), 2**32 - 7),
     f"dense: kernel_exponent must be in {_INT32_RANGE}"),
    (lambda: L.IntDense(3, seed=2**63),
     f"IntDense: seed must be in {_INT64_RANGE}, got 9223372036854775808"),
    (lambda: L.IntDropout(0.5, seed=1.5), "IntDropout: seed must be None or an int"),
    (lambda: L.IntMaxPool2D(2**31),
     "IntMaxPool2D: pool_size must be <= 2147483647 \\(an int32 attribute\\), got 2147483648"),
    (lambda: L.IntConv2D(4, 3, dilation_rate=(1, 2**31)),
     "IntConv2D: dilation_rate must be <= 2147483647"),
]


@pytest.mark.parametrize("call,pattern", _RANGE_CASES,
                         ids=[pattern.split(" must")[0][:50] for _, pattern in _RANGE_CASES])
def test_integers_out_of_range_are_errors_not_wrapped(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_in_range_integers_and_int32_tensors_still_work():
    assert tf_int_ops.dequantize(_Q, tf.constant(5)).numpy().tolist() == [32.0, 64.0]
    assert tf_int_ops.dequantize(_Q, -120).numpy().tolist() == [2.0**-120, 2.0**-119]
    assert tf_int_ops.round_shift(_ACC, 2).numpy().tolist() == [25, -2]
    q, e = tf_int_ops.requantize(_ACC, 0, "stochastic", seed=[-2**63, 2**63 - 1])
    assert q.dtype == tf.int8 and int(e) == 0
    dx = tf_int_ops.int_conv2d_backprop_input([1, np.int64(4), 4, 2], _W4, _DY4)
    assert dx.shape == (1, 4, 4, 2)
    assert tf_int_ops.int_max_pool2d(tf.ones([1, 4, 4, 1], tf.int8), np.int64(2)).shape == (1, 2, 2, 1)
    assert L.IntDense(3, seed=2**63 - 1).seed == 2**63 - 1


# ------------------------------------------------ 4. crafted checkpoints


def _checkpoint_model():
    """A small trained model with every keras_int layer that has integer variables."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 1))
    h = L.IntConv2D(4, 3, padding="same", use_bias=True, rounding="stochastic", name="conv")(inputs)
    h = L.IntReLU(name="relu")(h)
    h = L.IntAdd(rounding="stochastic", name="add")([h, h])
    h = L.IntAveragePooling2D(2, rounding="stochastic", name="avg")(h)
    h = L.IntMaxPool2D(1, rounding="stochastic", name="max")(h)
    h = L.IntGlobalAveragePooling2D(rounding="stochastic", name="gap")(h)
    h = L.IntDropout(0.5, name="drop")(h)
    outputs = L.IntDense(3, use_bias=True, name="dense")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(mu=5, momentum=4, weight_bits=16),
                  loss=keras_int.losses.IntegerCrossEntropy())
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 32),
              epochs=1, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = _checkpoint_model()
    path = tmp_path_factory.mktemp("checkpoint") / "model.keras"
    model.save(str(path))
    optimizer = model.optimizer
    kernel = model.get_layer("conv").kernel
    slots = {"master": optimizer._masters[optimizer._get_variable_index(kernel)],
             "momentum": optimizer._momenta[optimizer._get_variable_index(kernel)],
             "grad_bits": optimizer._grad_bits[optimizer._get_variable_index(kernel)],
             "mu": optimizer.mu_variable, "current_mu": optimizer.current_mu,
             "iterations": optimizer.iterations}
    keys = {name: f"optimizer/vars/{_index(optimizer.variables, variable)}"
            for name, variable in slots.items()}
    weights = [v.numpy() for v in model.weights]
    optimizer_values = [v.numpy() for v in optimizer.variables]
    return path, keys, weights, optimizer_values


def _index(variables, variable):
    return next(i for i, v in enumerate(variables) if v is variable)


def _rewrite(path, out, dataset, transform):
    """Copies the .keras zip at `path` to `out` with one weights dataset replaced by transform(data)."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    weights = out.with_suffix(".h5")
    weights.write_bytes(entries["model.weights.h5"])
    with h5py.File(weights, "r+") as f:
        data = f[dataset][()]
        del f[dataset]
        f.create_dataset(dataset, data=transform(data))
    entries["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(out)


def _set(index, value, dtype=None):
    def transform(data):
        data = data.astype(dtype or data.dtype)
        data[index] = value
        return data
    return transform


def test_untouched_checkpoint_loads_bit_identically(saved, tmp_path):
    path, _, weights, optimizer_values = saved
    # Rewriting a dataset with its own data changes nothing.
    copy = _rewrite(path, tmp_path / "copy.keras", "layers/int_conv2d/vars/0", lambda data: data)
    for file in (str(path), copy):
        model = keras.models.load_model(file)
        assert len(model.weights) == len(weights)
        for variable, want in zip(model.weights, weights):
            assert variable.dtype == want.dtype
            np.testing.assert_array_equal(variable.numpy(), want, err_msg=variable.path)
        for variable, want in zip(model.optimizer.variables, optimizer_values):
            np.testing.assert_array_equal(variable.numpy(), want, err_msg=variable.path)


def test_integer_data_of_another_dtype_within_range_loads_unchanged(saved, tmp_path):
    path, _, weights, _ = saved
    file = _rewrite(path, tmp_path / "int16.keras", "layers/int_conv2d/vars/0",
                    lambda data: data.astype(np.int16))
    model = keras.models.load_model(file)
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), weights[0])


_KERNEL = "checkpoint value for kernel \\(int8, values in \\[-127, 127\\]\\)"
_STEP = "checkpoint value for rounding_step \\(int64, values in \\[0, 9223372036854775807\\]\\)"
_LAYER_CASES = [
    # (dataset in model.weights.h5, transform of its data, message pattern)
    ("layers/int_conv2d/vars/0", _set((0, 0, 0, 1), 300, np.int16),
     f"IntConv2D 'conv': {_KERNEL} is out of range: 300 at index \\(0, 0, 0, 1\\)"),
    ("layers/int_conv2d/vars/0", _set((1, 2, 0, 3), 1e9, np.float32),
     f"IntConv2D 'conv': {_KERNEL} has dtype float32, not an integer type: "
     "1000000000.0 at index \\(1, 2, 0, 3\\)"),
    ("layers/int_conv2d/vars/0", _set((0, 0, 0, 0), -128), f"{_KERNEL} is out of range: -128"),
    ("layers/int_conv2d/vars/0", lambda data: data.astype(np.float32),
     "IntConv2D 'conv': checkpoint value for kernel .* has dtype float32"),
    ("layers/int_conv2d/vars/0", lambda data: data[..., :2],
     "IntConv2D 'conv': checkpoint value for kernel \\(int8, shape \\(3, 3, 1, 4\\)\\) "
     "has shape \\(3, 3, 1, 2\\)"),
    ("layers/int_conv2d/vars/1", _set(2, 2**31, np.int64),
     "IntConv2D 'conv': checkpoint value for bias \\(int32, values in \\[-2147483647, 2147483647\\]\\) "
     "is out of range: 2147483648 at index \\(2,\\)"),
    ("layers/int_conv2d/vars/1", _set(0, 0.5, np.float64),
     "bias .* has dtype float64, not an integer type: 0.5 at index \\(0,\\)"),
    ("layers/int_conv2d/vars/2", lambda data: np.int32(101),
     "IntConv2D 'conv': checkpoint value for kernel_exponent \\(int32, values in \\[-120, 100\\]\\) "
     "is out of range: 101"),
    ("layers/int_conv2d/vars/3", lambda data: np.int64(-121),
     "output_exponent \\(int32, values in \\[-120, 100\\]\\) is out of range: -121"),
    ("layers/int_conv2d/vars/4", lambda data: np.float32(np.nan),
     "error_exponent \\(int32, .*\\) has dtype float32, not an integer type: nan"),
    ("layers/int_conv2d/vars/5", lambda data: np.int64(-1), f"IntConv2D 'conv': {_STEP} is out of range: -1"),
    ("layers/int_add/vars/0", lambda data: np.float64(3), f"IntAdd 'add': {_STEP} has dtype float64"),
    ("layers/int_average_pooling2d/vars/0", lambda data: np.int64(-5), f"IntAveragePooling2D 'avg': {_STEP}"),
    ("layers/int_max_pool2d/vars/0", lambda data: np.int64(-5), f"IntMaxPool2D 'max': {_STEP}"),
    ("layers/int_global_average_pooling2d/vars/0", lambda data: np.int64(-5),
     f"IntGlobalAveragePooling2D 'gap': {_STEP}"),
    ("layers/int_dropout/vars/0", lambda data: np.uint64(2**64 - 1),
     f"IntDropout 'drop': {_STEP} is out of range: 18446744073709551615"),
    ("layers/int_dense/vars/0", _set((0, 0), 127.5, np.float32),
     f"IntDense 'dense': {_KERNEL} has dtype float32, not an integer type: 127.5 at index \\(0, 0\\)"),
    ("layers/int_dense/vars/1", _set(1, True, bool),
     "IntDense 'dense': checkpoint value for bias \\(int32, .*\\) has dtype bool"),
]


@pytest.mark.parametrize("dataset,transform,pattern", _LAYER_CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(_LAYER_CASES)])
def test_crafted_layer_weights_are_refused(saved, tmp_path, dataset, transform, pattern):
    path = saved[0]
    file = _rewrite(path, tmp_path / "crafted.keras", dataset, transform)
    with pytest.raises(ValueError, match=pattern):
        keras.models.load_model(file)


_MASTER = "checkpoint value for conv_kernel_master16 \\(int16, values in \\[-32767, 32767\\]\\)"
_OPTIMIZER_CASES = [
    # (optimizer slot, transform of its data, message pattern)
    ("master", _set((0, 0, 0, 0), 1e9, np.float32),
     f"IntegerSGD 'integer_sgd': {_MASTER} has dtype float32, not an integer type: 1000000000.0 "
     "at index \\(0, 0, 0, 0\\)"),
    ("master", _set((0, 1, 0, 2), 40000, np.int32),
     f"{_MASTER} is out of range: 40000 at index \\(0, 1, 0, 2\\)"),
    ("momentum", _set((0, 0, 0, 0), -32768, np.int32),
     "conv_kernel_momentum \\(int16, values in \\[-32767, 32767\\]\\) is out of range: -32768"),
    ("momentum", lambda data: data.astype(np.float16), "conv_kernel_momentum .* has dtype float16"),
    ("grad_bits", lambda data: np.int32(33),
     "conv_kernel_grad_bits \\(int32, values in \\[0, 32\\]\\) is out of range: 33"),
    ("mu", lambda data: np.int32(0),
     "IntegerSGD 'integer_sgd': checkpoint value for mu \\(int32, values in \\[1, 30\\]\\) is out of range: 0"),
    ("mu", lambda data: np.float32(4.0),
     "mu \\(int32, values in \\[1, 30\\]\\) has dtype float32, not an integer type: 4.0"),
    ("current_mu", lambda data: np.int64(2**32 + 5),
     "current_mu \\(int32, values in \\[0, 30\\]\\) is out of range: 4294967301"),
    ("iterations", lambda data: np.float64(2.0),
     "iteration \\(int64, values in \\[0, 9223372036854775807\\]\\) has dtype float64"),
]


@pytest.mark.parametrize("slot,transform,pattern", _OPTIMIZER_CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(_OPTIMIZER_CASES)])
def test_crafted_optimizer_variables_are_refused(saved, tmp_path, slot, transform, pattern):
    path, keys = saved[0], saved[1]
    file = _rewrite(path, tmp_path / "crafted.keras", keys[slot], transform)
    with pytest.raises(ValueError, match=pattern):
        keras.models.load_model(file)


def test_load_weights_checks_too(saved, tmp_path):
    path, _, weights, _ = saved
    model = keras.models.load_model(str(path))
    good = tmp_path / "good.weights.h5"
    model.save_weights(str(good))
    with h5py.File(good, "r+") as f:
        name = "layers/int_dense/vars/0"
        data = f[name][()].astype(np.float32)
        data[0, 0] = 1e9
        del f[name]
        f.create_dataset(name, data=data)
    with pytest.raises(ValueError, match="IntDense 'dense': checkpoint value for kernel .* 1000000000.0"):
        model.load_weights(str(good))


# ------------------------------------------------ 5. labels of IntegerCrossEntropy

_LOGITS = tf.constant(np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32))
_ONE_HOT = keras.utils.to_categorical([1, 2, 3, 4], 10)


def _loss(sparse=True):
    return keras_int.losses.IntegerCrossEntropy(sparse=sparse)


def test_well_formed_labels_give_the_same_loss():
    want = float(_loss()(np.array([1, 2, 3, 4]), _LOGITS))
    assert float(_loss()(np.array([[1], [2], [3], [4]]), _LOGITS)) == want
    assert float(_loss(sparse=False)(_ONE_HOT, _LOGITS)) == want


@pytest.mark.parametrize("sparse,labels,logits,pattern", [
    (False, keras.utils.to_categorical([1, 2, 3, 4], 5), _LOGITS,
     "IntegerCrossEntropy: one-hot labels have width 5 but the logits have 10 classes"),
    (False, _ONE_HOT[:, None], _LOGITS,
     "IntegerCrossEntropy: one-hot labels must have shape \\[batch, classes\\], got shape \\(4, 1, 10\\)"),
    (False, _ONE_HOT[:3], _LOGITS, "IntegerCrossEntropy: 3 one-hot labels for 4 rows of logits"),
    (True, _ONE_HOT, _LOGITS,
     "IntegerCrossEntropy: sparse labels must be class indices of shape \\[batch\\] or \\[batch, 1\\], "
     "got shape \\(4, 10\\); for one-hot labels pass sparse=False"),
    (True, np.array([1, 2, 3]), _LOGITS, "IntegerCrossEntropy: 3 labels for 4 rows of logits"),
    (True, np.array([1, 2, 3, 4]), _LOGITS[:, None],
     "IntegerCrossEntropy: y_pred must be logits of shape \\[batch, classes\\], got shape \\(4, 1, 10\\)"),
], ids=["one_hot_width", "one_hot_rank", "one_hot_batch", "sparse_given_one_hot", "sparse_batch",
        "logits_rank"])
def test_label_shapes_are_checked_statically(sparse, labels, logits, pattern):
    with pytest.raises(ValueError, match=pattern):
        _loss(sparse)(labels, logits)


def _nan_row(labels, row):
    labels = labels.copy()
    labels[row, 0] = np.nan
    return labels


@pytest.mark.parametrize("sparse,labels,pattern", [
    (False, _ONE_HOT * 0.9 + 0.01, "one-hot labels must hold a single 1 and zeros in each row"),
    (False, _nan_row(_ONE_HOT, 2), "one-hot labels must hold a single 1 and zeros in each row"),
    (False, _ONE_HOT * 2, "one-hot labels must hold a single 1 and zeros in each row"),
    (True, np.array([1, 2.5, 3, 4]), "sparse labels must be whole class indices"),
    (True, np.array([1, np.nan, 3, 4]), "sparse labels must be whole class indices"),
], ids=["soft", "nan_one_hot", "twos", "fraction", "nan_sparse"])
def test_label_values_are_checked(sparse, labels, pattern):
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        _loss(sparse)(labels, _LOGITS)


def test_label_shapes_known_only_at_run_time_are_checked():
    one_hot = tf.function(lambda y, p: _loss(sparse=False)(y, p),
                          input_signature=[tf.TensorSpec([None, None]), tf.TensorSpec([None, None])])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="(?s)one-hot labels .* and logits .* must have the same shape.*\\[4 5\\].*\\[4 10\\]"):
        one_hot(keras.utils.to_categorical([1, 2, 3, 4], 5), _LOGITS)
    sparse = tf.function(lambda y, p: _loss()(y, p),
                         input_signature=[tf.TensorSpec(None), tf.TensorSpec([None, None])])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="(?s)the number of labels .* must match.*\\[5\\].*\\[4\\]"):
        sparse(np.array([1.0, 2, 3, 4, 5]), _LOGITS)
    want = float(_loss()(np.array([1, 2, 3, 4]), _LOGITS))
    assert float(sparse(np.array([1.0, 2, 3, 4]), _LOGITS)) == want


def test_fit_with_one_hot_labels_of_the_wrong_width_names_both_widths():
    (x, y), _ = digits()
    model = digits_cnn()
    model.compile(optimizer=keras_int.optimizers.IntegerSGD(),
                  loss=keras_int.losses.IntegerCrossEntropy(sparse=False))
    with pytest.raises(ValueError, match="one-hot labels have width 9 but the logits have 10 classes"):
        model.fit(x[:32], keras.utils.to_categorical(y[:32] % 9, 9), verbose=0)

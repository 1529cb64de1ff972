"""From float Keras models to integer ones and back: ``integerize`` and ``to_float``.

``integerize(model)`` clones a float Keras model (Sequential or functional,
same topology) with each layer replaced by its keras_int counterpart and
the float weights quantized (the boundary conversion of docs/algorithms.md
section 1). ``to_float(model)`` clones an integer model with stock Keras
layers holding the integer weights dequantized exactly (``q * 2**e`` is a
float32 value), for deployment anywhere Keras runs, keras_int not needed.

>>> int_model = keras_int.integerize(float_model)
>>> int_model.compile(optimizer=keras_int.optimizers.IntegerSGD(), loss=keras_int.losses.IntegerCrossEntropy())
>>> int_model.fit(x, y)
>>> float_model = keras_int.to_float(int_model)     # stock layers only
"""

import inspect

import keras
import numpy as np

import tf_int_ops
from keras_int import layers as L
from keras_int.layers.normalization import _statistic
from keras_int.precision import resolve_bits

# Stock layers that only move data: exact on carriers, kept as they are.
_DATA_MOVEMENT = (keras.layers.InputLayer, keras.layers.Reshape, keras.layers.Permute, keras.layers.Identity)


def _is_keras_int(layer):
    return type(layer).__module__.startswith("keras_int.")


def _name(layer):
    return f"layer '{layer.name}' ({type(layer).__name__})"


def _activation_name(layer):
    """The name of a float layer's `activation` (None for none/linear)."""
    activation = getattr(layer, "activation", None)
    name = None if activation is None else getattr(activation, "__name__", str(activation))
    return None if name in (None, "linear") else name


def _check_config(layer, **expected):
    """Raises when a float layer's config has a value the integer layer cannot reproduce."""
    config = layer.get_config()
    for key, value in expected.items():
        if key in config and config[key] != value:
            raise ValueError(f"integerize: {_name(layer)} has {key}={config[key]!r}; its keras_int counterpart "
                             f"supports {key}={value!r} only. Pass it in keep_float to keep it float")


def _constructed(layer, cls, *args, **kwargs):
    """cls(*args, **kwargs), its argument errors (IntDropout's exact rates) naming the float layer."""
    try:
        return cls(*args, **kwargs)
    except ValueError as error:
        raise ValueError(f"integerize: {_name(layer)}: {error}. Pass it in keep_float to keep it float") from None


def _int_bias(bias, exponent, layer):
    """A float bias as int32 at the kernel's exponent (nearest); an error when it does not fit."""
    scaled = np.round(np.asarray(bias, np.float64) * 2.0**-exponent)
    if np.any(np.abs(scaled) > 2**31 - 1):
        raise ValueError(f"integerize: {_name(layer)}: the bias does not fit int32 at the kernel's exponent "
                         f"{exponent} (|bias| up to {np.max(np.abs(bias))})")
    return scaled.astype(np.int32)


def _quantized(values, bits=8):
    q, e = tf_int_ops.quantize(np.asarray(values, np.float32), bits=bits)
    return q.numpy(), int(e)


def _integer_layer(layer, bits):
    """The keras_int layer for a float layer (unbuilt), or None when there is none."""
    common = {"name": layer.name}
    if getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None) is not None:
        raise ValueError(f"integerize: {_name(layer)} is quantized by Keras ({layer.dtype_policy.name}); "
                         "integerize takes float layers")
    if isinstance(layer, keras.layers.Dense):
        _check_activation(layer, ("relu",))
        return L.IntDense(layer.units, use_bias=layer.use_bias, activation=_activation_name(layer), bits=bits,
                          **common)
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
        _check_config(layer, data_format="channels_last", groups=1)
        _check_activation(layer, ("relu",))
        return L.IntConv2D(layer.filters, layer.kernel_size, strides=layer.strides, padding=layer.padding,
                           dilation_rate=layer.dilation_rate, use_bias=layer.use_bias,
                           activation=_activation_name(layer), bits=bits, **common)
    if isinstance(layer, keras.layers.ReLU):
        _check_config(layer, max_value=None, negative_slope=0.0, threshold=0.0)
        return L.IntReLU(**common)
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(layer)
        if name == "relu":
            return L.IntReLU(**common)
        if name == "gelu":
            return L.IntGELU(**common)
        if name is None:
            return keras.layers.Identity(**common)
        raise ValueError(f"integerize: {_name(layer)}: activation {name!r} has no integer form (relu, gelu). "
                         "Pass it in keep_float to keep it float")
    if isinstance(layer, keras.layers.MaxPooling2D):
        _check_config(layer, data_format="channels_last")
        return L.IntMaxPool2D(layer.pool_size, strides=layer.strides, padding=layer.padding, bits=bits, **common)
    if isinstance(layer, keras.layers.AveragePooling2D):
        _check_config(layer, data_format="channels_last")
        return L.IntAveragePooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding, bits=bits,
                                     **common)
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        _check_config(layer, data_format="channels_last", keepdims=False)
        return L.IntGlobalAveragePooling2D(bits=bits, **common)
    if isinstance(layer, keras.layers.GlobalAveragePooling1D):
        _check_config(layer, data_format="channels_last", keepdims=False)
        return L.IntGlobalAveragePooling1D(bits=bits, **common)
    if isinstance(layer, keras.layers.Flatten):
        return L.IntFlatten(**common)
    if isinstance(layer, keras.layers.Dropout):
        if layer.rate == 0:
            return keras.layers.Identity(**common)
        return _constructed(layer, L.IntDropout, layer.rate, bits=bits, **common)
    if isinstance(layer, keras.layers.Add):
        return L.IntAdd(bits=bits, **common)
    if isinstance(layer, keras.layers.BatchNormalization):
        _check_config(layer, synchronized=False)
        if not _last_axis(layer):
            raise ValueError(f"integerize: {_name(layer)} normalises axis {layer.axis}; IntBatchNormalization "
                             "the last axis only")
        return L.IntBatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center,
                                       scale=layer.scale, **common)
    if isinstance(layer, keras.layers.LayerNormalization):
        _check_config(layer, rms_scaling=False)
        if not _last_axis(layer):
            raise ValueError(f"integerize: {_name(layer)} normalises axis {layer.axis}; IntLayerNormalization "
                             "the last axis only")
        return L.IntLayerNormalization(epsilon=layer.epsilon, center=layer.center, scale=layer.scale, **common)
    if isinstance(layer, keras.layers.Embedding):
        _check_config(layer, mask_zero=False)
        return L.IntEmbedding(layer.input_dim, layer.output_dim, **common)
    if isinstance(layer, keras.layers.MultiHeadAttention):
        _check_config(layer, use_gate=False)
        config = layer.get_config()
        if config["attention_axes"] not in (None, (1,), [1]):  # (1,): the sequence axis, set when built
            raise ValueError(f"integerize: {_name(layer)} attends over axes {config['attention_axes']}; "
                             "IntMultiHeadAttention over the sequence axis of [batch, steps, dim] only")
        return _constructed(layer, L.IntMultiHeadAttention, config["num_heads"], config["key_dim"],
                            value_dim=config["value_dim"], dropout=config["dropout"], use_bias=config["use_bias"],
                            output_shape=config.get("output_shape"), **common)
    if isinstance(layer, _DATA_MOVEMENT):
        return layer.__class__.from_config(layer.get_config())
    return None


# IntMultiHeadAttention's projections by the names of Keras' MultiHeadAttention sublayers.
_PROJECTIONS = {"query": "_query_dense", "key": "_key_dense", "value": "_value_dense",
                "attention_output": "_output_dense"}


def _named_weights(layer):
    """A Keras MultiHeadAttention's variables by '<sublayer>/<weight>' (query/kernel, ...)."""
    return {"/".join(v.path.split("/")[-2:]): v for v in layer.weights}


def _last_axis(layer):
    """Whether a normalisation layer normalises over (batch norm: per) the last axis only."""
    axes = [int(a) for a in np.atleast_1d(layer.axis)]
    return axes == [-1] or axes == [len(layer.input.shape) - 1]


def _check_activation(layer, supported):
    name = _activation_name(layer)
    if name is not None and name not in supported:
        raise ValueError(f"integerize: {_name(layer)} has activation {name!r}; an integer {type(layer).__name__} "
                         f"applies {', '.join(supported)} only (IntegerCrossEntropy takes logits; other "
                         "activations are layers: Activation('gelu') becomes IntGELU). Pass it in keep_float to "
                         "keep it float")


def _set_kernel(int_layer, kernel, bias, float_layer):
    """An integer layer's kernel and exponent quantized from a float kernel (to its
    bits), and its int32 bias (None: none) at the kernel's exponent."""
    q, e = _quantized(kernel, int_layer.bits)
    int_layer.kernel.assign(q)
    int_layer.kernel_exponent.assign(e)
    if bias is not None:
        int_layer.bias.assign(_int_bias(bias, e, float_layer))


def _set_integer_weights(float_layer, int_layer):
    """Quantizes the float layer's weights into the (built) integer layer."""
    if isinstance(int_layer, (L.IntDense, L.IntConv2D)):
        _set_kernel(int_layer, float_layer.kernel.numpy(), float_layer.bias.numpy() if int_layer.use_bias else None,
                    float_layer)
    elif isinstance(int_layer, (L.IntBatchNormalization, L.IntLayerNormalization)):
        shape = int_layer.gamma.shape
        gamma = float_layer.gamma.numpy() if float_layer.scale else np.ones(shape, np.float32)
        q, e = _quantized(gamma)
        int_layer.gamma.assign(q)
        int_layer.gamma_exponent.assign(e)
        beta = float_layer.beta.numpy() if float_layer.center else np.zeros(shape, np.float32)
        int_layer.beta.assign(_int_bias(beta, e - tf_int_ops.NORM_FRACTION_BITS, float_layer))
        if isinstance(int_layer, L.IntBatchNormalization):
            for name in ("moving_mean", "moving_variance"):
                q, e = _statistic(getattr(float_layer, name).numpy())
                getattr(int_layer, name).assign(q)
                getattr(int_layer, f"{name}_exponent").assign(e)
    elif isinstance(int_layer, L.IntEmbedding):
        q, e = _quantized(float_layer.embeddings.numpy())
        int_layer.embeddings.assign(q)
        int_layer.embeddings_exponent.assign(e)
    elif isinstance(int_layer, L.IntMultiHeadAttention):
        # Keras' [d, heads, size] (output: [heads, size, d]) kernels are the
        # integer projections' [d, heads * size] ([heads * size, d]) row-major.
        weights = _named_weights(float_layer)
        for name, attribute in _PROJECTIONS.items():
            dense = getattr(int_layer, attribute)
            bias = weights[f"{name}/bias"].numpy().reshape(-1) if dense.use_bias else None
            _set_kernel(dense, weights[f"{name}/kernel"].numpy().reshape(dense.kernel.shape), bias, float_layer)


def _call_accepted(layer, *args, **kwargs):
    """Calls a cloned layer with the call arguments of the layer it replaces, less the
    keyword arguments its own ``call`` does not take (``training``, which Keras passes
    on by itself; masks only when None: Keras records BatchNormalization's
    ``mask=None``); a real mask is an error."""
    parameters = inspect.signature(layer.call).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        dropped = [k for k, v in kwargs.items() if k not in parameters and "mask" in k and v is not None]
        if dropped:
            raise ValueError(f"{_name(layer)} is called with {dropped} (a mask from Embedding(mask_zero=True)?), "
                             "which its counterpart does not take: masks are not converted")
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    return layer(*args, **kwargs)


def _clone(model, convert):
    """keras.models.clone_model with `convert` per layer, uncompiled; functional models'
    layers are called through _call_accepted (Sequential ones are only listed).

    clone_model compiles the clone as the model was compiled, but a float
    model's optimizer and loss do not train an integer model, nor the reverse:
    the model is cloned as if it were not compiled (and left as it was)."""
    options = {} if isinstance(model, keras.Sequential) else {"call_function": _call_accepted}

    def convert_or_clone(layer):  # a nested model is cloned the same way
        return _clone(layer, convert) if isinstance(layer, keras.Model) else convert(layer)

    compiled = model.compiled
    model.compiled = False
    try:
        return keras.models.clone_model(model, clone_function=convert_or_clone, **options)
    finally:
        model.compiled = compiled


def all_layers(model):
    """The layers of `model` with nested models' layers in their place (depth first)."""
    for layer in model.layers:
        yield from all_layers(layer) if isinstance(layer, keras.Model) else (layer,)


def _layer_pairs(model, clone):
    """(original, clone) layer pairs of two models of one topology, nested models included."""
    return list(zip(all_layers(model), all_layers(clone)))


def integerize(model, keep_float=(), bits=None):
    """The integer twin of a float Keras model: same topology, keras_int layers,
    the float weights quantized.

    Maps Dense, Conv2D (with ``activation`` None, "linear" or "relu"), ReLU,
    Activation("relu"/"gelu"/"linear"), MaxPooling2D, AveragePooling2D,
    GlobalAveragePooling1D/2D, Flatten, Dropout (rates 1 - 2**-k), Add,
    BatchNormalization, LayerNormalization, Embedding and MultiHeadAttention
    (dropout 0 or 1 - 2**-k); InputLayer,
    Reshape, Permute and Identity (data movement, exact on carriers) stay
    as they are. Any other layer is an error naming it, unless its name (or
    the layer) is in ``keep_float``: then it stays float (its arithmetic is
    float32 on the carriers; README, "What is integer").

    Kernels are quantized to ``bits``-bit mantissas (None: keras_int's
    default); biases become int32 at the kernel's exponent; batch norm's
    gamma, beta and moving statistics their integer forms. The model is
    returned uncompiled: compile it with IntegerSGD (fine-tuning a trained
    model wants small steps, e.g. ``IntegerSGD(mu=1)``) and
    IntegerCrossEntropy.

    >>> float_model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
    ...                                 keras.layers.Flatten(), keras.layers.Dense(10)])
    >>> int_model = integerize(float_model)     # IntConv2D(activation="relu"), IntFlatten, IntDense
    """
    keep = {k if isinstance(k, str) else k.name for k in keep_float}
    unknown = keep - {layer.name for layer in all_layers(model)}
    if unknown:
        raise ValueError(f"integerize: keep_float names no layer of the model: {sorted(unknown)}")
    bits = resolve_bits(bits, "integerize")

    def convert(layer):
        if layer.name in keep:
            return layer.__class__.from_config(layer.get_config())
        converted = _integer_layer(layer, bits)
        if converted is None:
            raise ValueError(f"integerize: {_name(layer)} has no keras_int counterpart; pass "
                             f"keep_float=['{layer.name}'] to keep it float")
        return converted

    clone = _clone(model, convert)
    for original, copy in _layer_pairs(model, clone):
        if copy.name in keep or isinstance(copy, _DATA_MOVEMENT):
            copy.set_weights(original.get_weights())
        else:
            _set_integer_weights(original, copy)
    return clone


def _float_layer(layer):
    """The stock Keras layer for a keras_int layer (unbuilt)."""
    common = {"name": layer.name}
    if isinstance(layer, L.IntDense):
        return keras.layers.Dense(layer.units, use_bias=layer.use_bias, activation=layer.activation, **common)
    if isinstance(layer, L.IntConv2D):
        return keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides, padding=layer.padding,
                                   dilation_rate=layer.dilation_rate, use_bias=layer.use_bias,
                                   activation=layer.activation, **common)
    if isinstance(layer, L.IntReLU):
        return keras.layers.ReLU(**common)
    if isinstance(layer, L.IntGELU):
        return keras.layers.Activation("gelu", **common)
    if isinstance(layer, L.IntMaxPool2D):
        return keras.layers.MaxPooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding, **common)
    if isinstance(layer, L.IntAveragePooling2D):
        return keras.layers.AveragePooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding,
                                             **common)
    if isinstance(layer, L.IntGlobalAveragePooling2D):
        return keras.layers.GlobalAveragePooling2D(**common)
    if isinstance(layer, L.IntGlobalAveragePooling1D):
        return keras.layers.GlobalAveragePooling1D(**common)
    if isinstance(layer, L.IntFlatten):
        return keras.layers.Flatten(**common)
    if isinstance(layer, L.IntDropout):
        return keras.layers.Dropout(layer.rate, **common)
    if isinstance(layer, L.IntAdd):
        return keras.layers.Add(**common)
    if isinstance(layer, L.IntBatchNormalization):
        return keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center,
                                               scale=layer.scale, **common)
    if isinstance(layer, L.IntLayerNormalization):
        return keras.layers.LayerNormalization(epsilon=layer.epsilon, center=layer.center, scale=layer.scale,
                                               **common)
    if isinstance(layer, L.IntEmbedding):
        if layer.mask_zero:
            # The integer layers ignore the mask; stock layers would apply it.
            raise ValueError(f"to_float: {_name(layer)} has mask_zero=True: masks are not converted")
        return keras.layers.Embedding(layer.input_dim, layer.output_dim, **common)
    if isinstance(layer, L.IntMultiHeadAttention):
        return keras.layers.MultiHeadAttention(layer.num_heads, layer.key_dim, value_dim=layer.value_dim,
                                               dropout=layer.dropout, use_bias=layer.use_bias,
                                               output_shape=layer.output_shape_, **common)
    if isinstance(layer, L.IntPositionEmbedding):
        return _position_table_layer(layer, common)
    return None


def _position_table_layer(layer, common):
    """Keras has no position embedding layer; an EinsumDense with a zero kernel and a
    [steps, dim] bias is one: x @ 0 + table[:steps] broadcast over the leading axes
    (exact for finite inputs: 0 * x = 0), and TFLite converts it."""
    shape = tuple(layer.input.shape)
    if shape[-2] is None:
        raise ValueError(f"to_float: {_name(layer)} is called on {shape}: its stock twin (EinsumDense) needs a "
                         "known number of steps")
    leading = "abcfghijkl"[:len(shape) - 2]
    return keras.layers.EinsumDense(f"{leading}sd,de->{leading}se", output_shape=shape[1:], bias_axes="se",
                                    **common)


def _exact(q, e):
    """q * 2**e in float32 (exact: q has at most 24 significant bits here, or is an int8/int16)."""
    return (np.asarray(q, np.float64) * 2.0 ** int(e)).astype(np.float32)


def _dequantized_kernel(int_layer):
    """[kernel] or [kernel, bias] of an integer layer with weights, as exact float32 values."""
    e = int(int_layer.kernel_exponent.numpy())
    return [_exact(int_layer.kernel.numpy(), e)] + ([_exact(int_layer.bias.numpy(), e)] if int_layer.use_bias else [])


def _set_float_weights(int_layer, float_layer):
    if isinstance(int_layer, (L.IntDense, L.IntConv2D)):
        float_layer.set_weights(_dequantized_kernel(int_layer))
    elif isinstance(int_layer, (L.IntBatchNormalization, L.IntLayerNormalization)):
        e = int(int_layer.gamma_exponent.numpy())
        weights = []
        if int_layer.scale:
            weights.append(_exact(int_layer.gamma.numpy(), e))
        if int_layer.center:
            weights.append(_exact(int_layer.beta.numpy(), e - tf_int_ops.NORM_FRACTION_BITS))
        if isinstance(int_layer, L.IntBatchNormalization):
            weights += [_exact(getattr(int_layer, name).numpy(), getattr(int_layer, f"{name}_exponent").numpy())
                        for name in ("moving_mean", "moving_variance")]
        float_layer.set_weights(weights)
    elif isinstance(int_layer, L.IntEmbedding):
        float_layer.set_weights([_exact(int_layer.embeddings.numpy(), int_layer.embeddings_exponent.numpy())])
    elif isinstance(int_layer, L.IntPositionEmbedding):
        steps, dim = float_layer.bias.shape
        table = _exact(int_layer.embeddings.numpy()[:steps], int_layer.embeddings_exponent.numpy())
        float_layer.set_weights([np.zeros((dim, dim), np.float32), table])
    elif isinstance(int_layer, L.IntMultiHeadAttention):
        weights = _named_weights(float_layer)
        for name, attribute in _PROJECTIONS.items():
            values = _dequantized_kernel(getattr(int_layer, attribute))
            for key, value in zip((f"{name}/kernel", f"{name}/bias"), values):
                weights[key].assign(value.reshape(weights[key].shape))
    elif not _is_keras_int(int_layer):
        float_layer.set_weights(int_layer.get_weights())  # a float layer of the integer model
    # The other keras_int layers hold only exponents and counters, which a float layer has no use for.


def to_float(model):
    """A plain Keras model (stock layers, no custom ops) with the integer model's weights
    dequantized exactly, for inference anywhere Keras runs.

    Same topology; each keras_int layer becomes its stock counterpart
    (IntDense -> Dense, IntConv2D -> Conv2D, IntBatchNormalization ->
    BatchNormalization with the moving statistics, IntGELU ->
    Activation("gelu"), ...); float layers kept in the integer model stay.
    Its predictions differ from the integer model's by the integer model's
    activation rounding only (and IntGELU's polynomial, docs/algorithms.md
    section 11, and the integer softmax's base-2 table, section 10).
    IntPositionEmbedding becomes an EinsumDense with a zero kernel whose bias
    is the position table (Keras has no position embedding layer). The model
    is returned uncompiled.

    >>> plain = to_float(int_model)
    >>> plain.save("model.keras")     # loads with keras.models.load_model, no keras_int needed
    """
    def convert(layer):
        converted = _float_layer(layer)
        if converted is not None:
            return converted
        if _is_keras_int(layer):
            raise ValueError(f"to_float: {_name(layer)} has no stock Keras counterpart yet")
        return layer.__class__.from_config(layer.get_config())

    clone = _clone(model, convert)
    for original, copy in _layer_pairs(model, clone):
        _set_float_weights(original, copy)
    return clone

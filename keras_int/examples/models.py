"""Example architectures, each with its float32 twin built from the same recipe."""

import keras

import keras_int
from keras_int import layers as int_layers

MODELS = ("lenet", "vgg_small", "resnet20", "vit_tiny", "text_transformer")
# The transformer examples' width, heads and MLP width.
TRANSFORMER_DIM, TRANSFORMER_HEADS, TRANSFORMER_MLP = 32, 2, 64

# Batch-norm momentum of the example ResNets (integer and float32 twin alike).
# Keras' default 0.99 needs many hundred steps before the moving statistics
# are usable, which the small example datasets (digits: 43 steps an epoch at
# batch 32) do not give; 0.9 is what the original ResNet (Torch) used.
BN_MOMENTUM = 0.9


def _suffix(integer):
    """A model's name suffix: its mantissa width (int8, or int16 under keras_int.set_default_bits(16)) or float32."""
    return f"int{keras_int.default_bits()}" if integer else "float32"


def _blocks(name):
    """Conv widths per stage ('M' = 2x2 max-pool) and dense widths."""
    if name == "lenet":
        return [32, "M", 64, "M"], []
    if name == "vgg_small":  # NITI's VGG-small for CIFAR-10, no batch norm
        return [128, 128, "M", 256, 256, "M", 512, 512, "M"], []
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def _resnet_layers(integer, bn_momentum):
    """(conv(filters, kernel, strides, name), bn(name), relu(name), add(name), gap, dense)."""
    if integer:
        L = int_layers

        def conv(filters, kernel, strides, name):
            return L.IntConv2D(filters, kernel, strides=strides, padding="same", name=name)

        def bn(name):
            return L.IntBatchNormalization(momentum=bn_momentum, name=name)

        return conv, bn, L.IntReLU, L.IntAdd, L.IntGlobalAveragePooling2D, L.IntDense
    L = keras.layers

    def conv(filters, kernel, strides, name):
        return L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)

    def bn(name):
        return L.BatchNormalization(momentum=bn_momentum, name=name)

    return conv, bn, L.ReLU, L.Add, L.GlobalAveragePooling2D, L.Dense


def resnet(input_shape, classes, integer=True, depth=20, widths=(16, 32, 64), bn_momentum=BN_MOMENTUM,
           name=None):
    """The CIFAR ResNet of He et al. (2016, section 4.2): depth = 6 n + 2.

    A stem conv3x3-BN-ReLU, then one stage per width of n basic blocks
    (conv3x3-BN-ReLU-conv3x3-BN, add the shortcut, ReLU); the first block of
    every stage after the first halves height and width (stride 2) and its
    shortcut is a 1x1 stride-2 projection (conv + BN); global average
    pooling and a dense layer to the classes. ResNet-20: n = 3, widths
    16/32/64. Small inputs work: 8x8 digits end in 2x2 feature maps.
    """
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(f"resnet: depth must be 6 n + 2 with n >= 1, got {depth}")
    conv, bn, relu, add, gap, dense = _resnet_layers(integer, bn_momentum)
    inputs = keras.Input(input_shape)
    h = conv(widths[0], 3, 1, "stem_conv")(inputs)
    h = relu(name="stem_relu")(bn("stem_bn")(h))
    for stage, width in enumerate(widths, start=1):
        for block in range(1, (depth - 2) // 6 + 1):
            prefix = f"stage{stage}_block{block}_"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = h
            if strides != 1 or h.shape[-1] != width:
                shortcut = conv(width, 1, strides, prefix + "proj_conv")(h)
                shortcut = bn(prefix + "proj_bn")(shortcut)
            h = conv(width, 3, strides, prefix + "conv1")(h)
            h = relu(name=prefix + "relu1")(bn(prefix + "bn1")(h))
            h = bn(prefix + "bn2")(conv(width, 3, 1, prefix + "conv2")(h))
            h = relu(name=prefix + "relu2")(add(name=prefix + "add")([shortcut, h]))
    h = gap(name="pool")(h)
    outputs = dense(classes, name="logits")(h)
    name = name or f"resnet{depth}_{_suffix(integer)}"
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="keras_int_examples")
class PositionEmbedding(keras.layers.Layer):
    """The float32 twin of IntPositionEmbedding (keras_hub's PositionEmbedding,
    which the examples do not depend on): a learned [sequence_length, dim]
    table whose first `steps` rows are broadcast to the input's shape."""

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.sequence_length, input_shape[-1]),
                                          initializer=self.initializer)

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.broadcast_to(self.embeddings[: shape[-2]], shape)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer)}


def _transformer_layers(integer):
    """The layer constructors of a transformer, integer or float32."""
    if integer:
        L = int_layers
        return {"dense": L.IntDense, "norm": L.IntLayerNormalization, "attention": L.IntMultiHeadAttention,
                "gelu": L.IntGELU, "add": L.IntAdd, "position": L.IntPositionEmbedding,
                "pool": L.IntGlobalAveragePooling1D, "embedding": L.IntEmbedding, "conv": L.IntConv2D}
    L = keras.layers
    # Keras' attention without biases, as IntMultiHeadAttention's default.
    return {"dense": L.Dense, "norm": L.LayerNormalization,
            "attention": lambda **kw: L.MultiHeadAttention(use_bias=False, **kw),
            "gelu": lambda name=None: L.Activation("gelu", name=name), "add": L.Add, "position": PositionEmbedding,
            "pool": L.GlobalAveragePooling1D, "embedding": L.Embedding, "conv": L.Conv2D}


def _encoder_block(h, layers, prefix, dim=TRANSFORMER_DIM, heads=TRANSFORMER_HEADS, mlp=TRANSFORMER_MLP):
    """A pre-norm transformer block: h + MHA(LN(h)), then h + MLP(LN(h)) with GELU."""
    x = layers["norm"](name=prefix + "norm1")(h)
    x = layers["attention"](num_heads=heads, key_dim=dim // heads, name=prefix + "attention")(x, x)
    h = layers["add"](name=prefix + "add1")([h, x])
    x = layers["norm"](name=prefix + "norm2")(h)
    x = layers["gelu"](name=prefix + "gelu")(layers["dense"](mlp, name=prefix + "mlp1")(x))
    x = layers["dense"](dim, name=prefix + "mlp2")(x)
    return layers["add"](name=prefix + "add2")([h, x])


def vit(input_shape, classes, integer=True, patch=2, blocks=2, dim=TRANSFORMER_DIM, name=None):
    """A small vision transformer: patches embedded by a convolution with
    stride = patch size, learned positions, `blocks` pre-norm transformer
    blocks, a final layer norm, the mean over the patches and a dense
    classifier. On the 8x8 digits with 2x2 patches: 16 tokens of width 32."""
    layers = _transformer_layers(integer)
    height, width = input_shape[0] // patch, input_shape[1] // patch
    inputs = keras.Input(input_shape)
    h = layers["conv"](dim, patch, strides=patch, padding="valid", name="patch_embedding")(inputs)
    h = keras.layers.Reshape((height * width, dim), name="tokens")(h)
    h = layers["add"](name="add_positions")([h, layers["position"](height * width, name="positions")(h)])
    for block in range(1, blocks + 1):
        h = _encoder_block(h, layers, f"block{block}_", dim=dim)
    h = layers["pool"](name="pool")(layers["norm"](name="final_norm")(h))
    outputs = layers["dense"](classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name or f"vit_tiny_{_suffix(integer)}")


def text_transformer(sequence_length, vocab, classes, integer=True, blocks=1, dim=TRANSFORMER_DIM, name=None,
                     embeddings_initializer="glorot_uniform"):
    """A small text classifier: token embedding, learned positions, `blocks`
    pre-norm transformer blocks, a final layer norm, the mean over the
    sequence and a dense classifier. Input: int token ids [batch, sequence_length].

    The token embedding starts from glorot_uniform in both twins (Keras'
    Embedding default is uniform +-0.05): an int8 table's exponent is fixed
    by its initial values, and +-0.05 capped it at 0.062 with steps of
    2**-11. On fortunes, 5 seeds, the gap to the float32 twin was -0.53
    points from uniform and -0.13 from glorot_uniform (+-0.23 here)
    (benchmarks/README.md, "Accuracy gap")."""
    layers = _transformer_layers(integer)
    inputs = keras.Input((sequence_length,), dtype="int32")
    h = layers["embedding"](vocab, dim, embeddings_initializer=embeddings_initializer, name="tokens")(inputs)
    h = layers["add"](name="add_positions")([h, layers["position"](sequence_length, name="positions")(h)])
    for block in range(1, blocks + 1):
        h = _encoder_block(h, layers, f"block{block}_", dim=dim)
    h = layers["pool"](name="pool")(layers["norm"](name="final_norm")(h))
    outputs = layers["dense"](classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name or f"text_transformer_{_suffix(integer)}")


def build(name, input_shape, classes, integer=True, bn_momentum=BN_MOMENTUM, vocab=None,
          kernel_initializer="glorot_uniform", embeddings_initializer="glorot_uniform"):
    """The integer model (keras_int layers) or its float32 twin (keras.layers).

    ``bn_momentum`` is used by the models with batch normalization (resnet20);
    ``vocab`` by text models (the token ids are in [0, vocab));
    ``kernel_initializer`` by the plain CNNs (lenet, vgg_small),
    ``embeddings_initializer`` by the text model's token embedding.
    """
    if name == "resnet20":
        return resnet(input_shape, classes, integer=integer, depth=20, bn_momentum=bn_momentum)
    if name == "vit_tiny":
        if len(input_shape) != 3:
            raise ValueError(f"vit_tiny needs images, got input shape {input_shape}")
        # 2x2 patches on small images (the 8x8 digits: 16 tokens), 4x4 from
        # 28x28 up (MNIST: 49 tokens, CIFAR-10: 64).
        return vit(input_shape, classes, integer=integer, patch=2 if max(input_shape[:2]) <= 16 else 4)
    if name == "text_transformer":
        if vocab is None or len(input_shape) != 1:
            raise ValueError("text_transformer needs a text dataset (token ids and a vocabulary)")
        return text_transformer(input_shape[0], vocab, classes, integer=integer,
                                embeddings_initializer=embeddings_initializer)
    if len(input_shape) != 3:
        raise ValueError(f"{name} needs images, got input shape {input_shape}")
    convs, dense = _blocks(name)
    # Each convolution and hidden dense layer ReLUs its own output
    # (activation="relu"): the integer layer op does it in its requantize
    # pass, as float32's oneDNN fuses it into the convolution.
    if integer:
        conv = lambda f: int_layers.IntConv2D(f, 3, padding="same", activation="relu",  # noqa: E731
                                              kernel_initializer=kernel_initializer)
        pool, flatten = int_layers.IntMaxPool2D, int_layers.IntFlatten
        fc = lambda units, activation=None: int_layers.IntDense(  # noqa: E731
            units, activation=activation, kernel_initializer=kernel_initializer)
    else:
        conv = lambda f: keras.layers.Conv2D(f, 3, padding="same", activation="relu",  # noqa: E731
                                             kernel_initializer=kernel_initializer)
        pool, flatten = keras.layers.MaxPool2D, keras.layers.Flatten
        fc = lambda units, activation=None: keras.layers.Dense(  # noqa: E731
            units, activation=activation, kernel_initializer=kernel_initializer)
    stack = [keras.Input(input_shape)]
    for item in convs:
        stack.append(pool(2) if item == "M" else conv(item))
    stack.append(flatten())
    for units in dense:
        stack.append(fc(units, "relu"))
    stack.append(fc(classes))
    return keras.Sequential(stack, name=f"{name}_{_suffix(integer)}")

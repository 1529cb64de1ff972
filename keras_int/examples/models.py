"""Example architectures, each with its float32 twin built from the same recipe."""

import keras

from keras_int import layers as int_layers

MODELS = ("lenet", "vgg_small", "resnet20")

# Batch-norm momentum of the example ResNets (integer and float32 twin alike).
# Keras' default 0.99 needs many hundred steps before the moving statistics
# are usable, which the small example datasets (digits: 43 steps an epoch at
# batch 32) do not give; 0.9 is what the original ResNet (Torch) used.
BN_MOMENTUM = 0.9


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
    name = name or f"resnet{depth}_{'int8' if integer else 'float32'}"
    return keras.Model(inputs, outputs, name=name)


def build(name, input_shape, classes, integer=True, bn_momentum=BN_MOMENTUM):
    """The integer model (keras_int layers) or its float32 twin (keras.layers).

    ``bn_momentum`` is used by the models with batch normalization (resnet20).
    """
    if name == "resnet20":
        return resnet(input_shape, classes, integer=integer, depth=20, bn_momentum=bn_momentum)
    convs, dense = _blocks(name)
    if integer:
        conv = lambda f: int_layers.IntConv2D(f, 3, padding="same")  # noqa: E731
        relu, pool, flatten = int_layers.IntReLU, int_layers.IntMaxPool2D, int_layers.IntFlatten
        fc = int_layers.IntDense
    else:
        conv = lambda f: keras.layers.Conv2D(f, 3, padding="same")  # noqa: E731
        relu, pool, flatten, fc = keras.layers.ReLU, keras.layers.MaxPool2D, keras.layers.Flatten, keras.layers.Dense
    stack = [keras.Input(input_shape)]
    for item in convs:
        stack += [pool(2)] if item == "M" else [conv(item), relu()]
    stack.append(flatten())
    for units in dense:
        stack += [fc(units), relu()]
    stack.append(fc(classes))
    return keras.Sequential(stack, name=f"{name}_{'int8' if integer else 'float32'}")

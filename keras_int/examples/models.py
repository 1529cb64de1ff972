"""Example architectures, each with its float32 twin built from the same recipe."""

import keras

from keras_int import layers as int_layers

MODELS = ("lenet", "vgg_small")


def _blocks(name):
    """Conv widths per stage ('M' = 2x2 max-pool) and dense widths."""
    if name == "lenet":
        return [32, "M", 64, "M"], []
    if name == "vgg_small":  # NITI's VGG-small for CIFAR-10, no batch norm
        return [128, 128, "M", 256, 256, "M", 512, 512, "M"], []
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def build(name, input_shape, classes, integer=True):
    """The integer model (keras_int layers) or its float32 twin (keras.layers)."""
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

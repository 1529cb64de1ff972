"""Reshaping layers for carriers."""

import keras

from keras_int.layers.base import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntFlatten(keras.layers.Flatten):
    """Flattens a carrier (a reshape: no arithmetic, exponents unchanged).

    >>> IntFlatten()(keras.random.uniform((2, 3, 3, 4))).shape  # (2, 36)
    """

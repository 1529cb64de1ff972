"""Datasets for the example trainings: TFDS (MNIST, CIFAR-10) and scikit-learn's digits."""

import numpy as np
import tensorflow as tf

DATASETS = ("auto", "mnist", "cifar10", "digits")


class DatasetError(RuntimeError):
    """A dataset cannot be loaded; the message says why and what to do."""


def _pipeline(dataset, batch_size, training, augment=None, shuffle_buffer=10000, seed=0):
    """cache -> (shuffle, augment) -> batch -> prefetch, images scaled to [0, 1]."""
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.cast(y, tf.int64)),
                          num_parallel_calls=tf.data.AUTOTUNE).cache()
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if augment is not None:
            dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def crop_and_flip(image, label, pad=4):
    """NITI's CIFAR-10 augmentation: random 32x32 crop of the 4-pixel padded image, random flip."""
    shape = tf.shape(image)
    padded = tf.image.pad_to_bounding_box(image, pad, pad, shape[0] + 2 * pad, shape[1] + 2 * pad)
    image = tf.image.random_crop(padded, shape)
    return tf.image.random_flip_left_right(image), label


def load_tfds(name, batch_size, data_dir=None, download=True):
    """(train, test, info) tf.data pipelines of a TFDS image classification dataset."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        train, test = builder.as_dataset(split=["train", "test"], as_supervised=True)
    except Exception as error:  # TFDS raises many types (network, permissions, missing files)
        raise DatasetError(f"TFDS cannot load {name!r} (data_dir={data_dir!r}): {error}") from error
    augment = crop_and_flip if name == "cifar10" else None
    train = _pipeline(train, batch_size, True, augment)
    try:
        train_examples = builder.info.splits["train"].num_examples
    except KeyError:  # no split metadata (e.g. under tfds.testing.mock_data): count
        train_examples = int(sum(int(tf.shape(labels)[0]) for _, labels in train))
    info = {"name": name, "input_shape": tuple(builder.info.features["image"].shape),
            "classes": builder.info.features["label"].num_classes,
            "train_examples": train_examples}
    return train, _pipeline(test, batch_size, False), info


def load_digits(batch_size, test_fraction=0.25, seed=0):
    """scikit-learn's 1797 real 8x8 handwritten digits (offline), as (train, test, info)."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[..., np.newaxis]
    order = np.random.default_rng(seed).permutation(len(images))
    split = int(len(images) * (1 - test_fraction))
    train_idx, test_idx = order[:split], order[split:]
    make = tf.data.Dataset.from_tensor_slices
    train = _pipeline(make((images[train_idx], digits.target[train_idx])), batch_size, True)
    test = _pipeline(make((images[test_idx], digits.target[test_idx])), batch_size, False)
    info = {"name": "digits", "input_shape": (8, 8, 1), "classes": 10, "train_examples": split}
    return train, test, info


def _mnist_reachable(data_dir):
    """True when MNIST is prepared, or its download host resolves (a quick
    check: an offline TFDS download otherwise retries for minutes)."""
    import socket
    import urllib.parse

    import tensorflow_datasets as tfds

    if tfds.builder("mnist", data_dir=data_dir).is_prepared():
        return True
    try:
        from tensorflow_datasets.image_classification import mnist

        host = urllib.parse.urlparse(mnist._MNIST_URL).hostname
        socket.getaddrinfo(host, 443)
        return True
    except (ImportError, AttributeError):
        return True  # cannot tell: let TFDS try
    except OSError:
        return False


def load(name, batch_size, data_dir=None, log=print):
    """Loads `name`; "auto" is MNIST when TFDS can load it, otherwise the digits."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data_dir is not None:
        import os

        if not os.path.isdir(data_dir) or not os.access(data_dir, os.R_OK):
            raise DatasetError(f"--data-dir {data_dir!r} is not a readable directory")
    if name == "digits":
        return load_digits(batch_size)
    if name == "auto":
        try:
            if not _mnist_reachable(data_dir):
                raise DatasetError("it is not prepared and its download host cannot be resolved")
            return load_tfds("mnist", batch_size, data_dir)
        except DatasetError as error:
            log(f"MNIST is not available ({str(error).splitlines()[0][:200]}); "
                "falling back to scikit-learn's digits (offline).")
            return load_digits(batch_size)
    return load_tfds(name, batch_size, data_dir)

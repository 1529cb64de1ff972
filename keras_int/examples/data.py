"""Datasets for the example trainings: TFDS (MNIST, CIFAR-10), scikit-learn's digits,
Zalando's Fashion-MNIST from Debian's package, and the fortune-mod cookies in four
languages (text)."""

import gzip
import os
import re

import numpy as np
import tensorflow as tf

DATASETS = ("auto", "mnist", "cifar10", "digits", "fashion_mnist", "fortunes")
TEXT_DATASETS = ("fortunes",)


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


# Debian's dataset-fashion-mnist (MIT, Zalando SE): the original Fashion-MNIST
# idx files, 60000 training and 10000 test 28x28 images of 10 clothing classes.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"


def _idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def load_fashion_mnist(batch_size, root=FASHION_MNIST_DIR, seed=0):
    """Fashion-MNIST from Debian's package (offline, the standard split), as (train, test, info)."""
    if not os.path.isdir(root):
        raise DatasetError(f"Fashion-MNIST is not installed at {root}: apt-get install {FASHION_MNIST_PACKAGE} "
                           "(make setup does)")
    splits = []
    for split in ("train", "t10k"):
        try:
            images = _idx(os.path.join(root, f"{split}-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28, 1)
            labels = _idx(os.path.join(root, f"{split}-labels-idx1-ubyte.gz"), 8).astype(np.int64)
        except (OSError, ValueError) as error:
            raise DatasetError(f"Fashion-MNIST at {root} is incomplete or damaged ({error}): reinstall "
                               f"{FASHION_MNIST_PACKAGE}") from error
        if len(images) != len(labels):
            raise DatasetError(f"Fashion-MNIST at {root}: {len(images)} {split} images but {len(labels)} labels")
        splits.append((images, labels))
    (train_x, train_y), (test_x, test_y) = splits
    make = tf.data.Dataset.from_tensor_slices
    train = _pipeline(make((train_x, train_y)), batch_size, True, seed=seed)
    test = _pipeline(make((test_x, test_y)), batch_size, False)
    info = {"name": "fashion_mnist", "input_shape": (28, 28, 1), "classes": 10, "train_examples": len(train_x)}
    return train, test, info


# Debian's fortune-mod data (packages fortunes, fortunes-de, fortunes-es,
# fortunes-it): real, human-written sayings and quotes, one language per
# package. The English files are the ones with a UTF-8 twin (name.u8) at the
# top level; the others live in a directory per language.
FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNE_LANGUAGES = ("en", "de", "es", "it")
FORTUNE_PACKAGES = "fortunes fortunes-de fortunes-es fortunes-it"


def _fortune_files(root, language):
    if language == "en":
        return sorted(os.path.join(root, name) for name in os.listdir(root)
                      if os.path.isfile(os.path.join(root, name)) and os.path.exists(os.path.join(root, name + ".u8")))
    directory = os.path.join(root, language)
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if not name.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(directory, name)))


def _fortunes(path):
    """The cookies of one file (its UTF-8 twin when there is one), whitespace collapsed."""
    if os.path.exists(path + ".u8"):
        path += ".u8"
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    cookies = re.split(r"\n%\n", text)
    return [" ".join(cookie.split()) for cookie in cookies]


def load_fortunes(batch_size, sequence_length=64, per_language=3000, test_fraction=0.2, seed=0,
                  root=FORTUNES_DIR):
    """Language identification of fortune cookies (en, de, es, it), as (train, test, info).

    Each cookie of at least 20 characters is a sample (duplicates dropped);
    ``per_language`` of them per language, shuffled with ``seed``, split
    into train and test per language. Tokens are lower-case characters: 0 is
    padding, 1 unknown, then the training set's characters seen at least 5
    times, most frequent first; each sample is its first ``sequence_length``
    characters. ``info["vocab"]`` is the vocabulary size.
    """
    if not all(os.path.isdir(os.path.join(root, language)) for language in FORTUNE_LANGUAGES[1:]) or \
            not os.path.isfile(os.path.join(root, "fortunes")):
        raise DatasetError(f"the fortune cookies are not installed under {root}: "
                           f"apt-get install {FORTUNE_PACKAGES} (make setup does)")
    rng = np.random.default_rng(seed)
    train_text, train_labels, test_text, test_labels = [], [], [], []
    for label, language in enumerate(FORTUNE_LANGUAGES):
        cookies = sorted({c for path in _fortune_files(root, language) for c in _fortunes(path) if len(c) >= 20})
        rng.shuffle(cookies)
        cookies = cookies[:per_language]
        split = int(len(cookies) * (1 - test_fraction))
        train_text += cookies[:split]
        train_labels += [label] * split
        test_text += cookies[split:]
        test_labels += [label] * (len(cookies) - split)
    counts = {}
    for text in train_text:
        for ch in text[:sequence_length].lower():
            counts[ch] = counts.get(ch, 0) + 1
    alphabet = sorted((ch for ch, n in counts.items() if n >= 5), key=lambda ch: (-counts[ch], ch))
    index = {ch: i + 2 for i, ch in enumerate(alphabet)}

    def encode(texts):
        ids = np.zeros((len(texts), sequence_length), np.int32)
        for row, text in enumerate(texts):
            codes = [index.get(ch, 1) for ch in text[:sequence_length].lower()]
            ids[row, :len(codes)] = codes
        return ids

    make = tf.data.Dataset.from_tensor_slices
    order = rng.permutation(len(train_text))
    x_train, y_train = encode(train_text)[order], np.asarray(train_labels, np.int64)[order]
    train = make((x_train, y_train)).shuffle(len(order), seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test = make((encode(test_text), np.asarray(test_labels, np.int64))).batch(batch_size)
    info = {"name": "fortunes", "input_shape": (sequence_length,), "classes": len(FORTUNE_LANGUAGES),
            "train_examples": len(train_text), "vocab": len(alphabet) + 2, "kind": "text",
            "labels": FORTUNE_LANGUAGES}
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
        if not os.path.isdir(data_dir) or not os.access(data_dir, os.R_OK):
            raise DatasetError(f"--data-dir {data_dir!r} is not a readable directory")
    if name == "digits":
        return load_digits(batch_size)
    if name == "fortunes":
        return load_fortunes(batch_size)
    if name == "fashion_mnist":  # --data-dir: a directory with the four idx files
        return load_fashion_mnist(batch_size, root=data_dir or FASHION_MNIST_DIR)
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

"""The Keras-style aliases of the pooling layers, and saved models after the per-family split."""

import json
import zipfile

import keras
import numpy as np
import pytest

import keras_int

L = keras_int.layers


@pytest.mark.parametrize("alias,name", [("IntMaxPooling2D", "IntMaxPool2D"),
                                        ("IntAvgPool2D", "IntAveragePooling2D")])
def test_alias_is_the_same_class(alias, name):
    # Plain aliases, as keras.layers.MaxPooling2D is keras.layers.MaxPool2D.
    assert getattr(L, alias) is getattr(L, name)
    assert alias in L.__all__ and name in L.__all__


def test_every_public_layer_is_registered_under_keras_int():
    for name in L.__all__:
        cls = getattr(L, name)
        assert keras.saving.get_registered_name(cls) == f"keras_int>{cls.__name__}"
        assert keras.saving.get_registered_object(f"keras_int>{cls.__name__}") is cls


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        L.IntConv2D(4, 3, padding="same"),
        L.IntMaxPooling2D(2),
        L.IntAvgPool2D(2, padding="same"),
        L.IntFlatten(),
        L.IntDense(3),
    ])


def test_model_built_with_aliases_saves_and_loads(tmp_path):
    model = _model()
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    expected = model(x).numpy()
    path = str(tmp_path / "aliases.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert isinstance(loaded.layers[1], L.IntMaxPool2D)
    assert isinstance(loaded.layers[2], L.IntAveragePooling2D)
    np.testing.assert_array_equal(loaded(x).numpy(), expected)


def test_model_saved_before_the_split_loads(tmp_path):
    """A .keras file whose config names the old module keras_int.layers (one file) still loads."""
    model = _model()
    path = tmp_path / "new.keras"
    model.save(str(path))
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                rewritten = 0
                for layer in config["config"]["layers"]:
                    if layer["module"].startswith("keras_int.layers."):
                        layer["module"] = "keras_int.layers"
                        rewritten += 1
                assert rewritten == 5
                data = json.dumps(config).encode()
            target.writestr(item, data)
    loaded = keras.models.load_model(str(old))
    x = np.ones((1, 8, 8, 1), np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())

"""The installable wheel: `pip wheel .` carries the built op library; installed into a
fresh virtual environment it trains outside the checkout, with no Bazel."""

import glob
import os
import subprocess
import sys
import sysconfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN_A_STEP = """
import os, sys
import numpy as np
import keras, keras_int
assert keras_int.__file__.startswith(sys.prefix), keras_int.__file__   # the wheel's, not the checkout's
model = keras.Sequential([keras.Input((8, 8, 1)), keras_int.layers.IntConv2D(4, 3, activation="relu"),
                          keras_int.layers.IntFlatten(), keras_int.layers.IntDense(10)])
model.compile(keras_int.optimizers.IntegerSGD(), keras_int.losses.IntegerCrossEntropy())
before = model.layers[0].kernel.numpy().copy()
rng = np.random.default_rng(0)
model.fit(rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 32), epochs=1, verbose=0)
assert not np.array_equal(before, model.layers[0].kernel.numpy())
print("trained", model.layers[0].kernel.dtype)
"""


def test_wheel_installs_into_a_fresh_venv_and_trains_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheels)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = glob.glob(str(wheels / "keras_int-*.whl"))
    # A platform wheel (it carries a compiled library), with the library in it.
    assert wheel.endswith("linux_x86_64.whl"), wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    # The pinned TensorFlow, Keras and NumPy of this environment, without downloading
    # them again: its site-packages as a path (a path from a .pth file is not a site
    # directory, so this environment's own .pth files, the editable checkout's
    # among them, are not run there).
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "pinned_dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                              wheel], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    assert os.path.exists(os.path.join(site, "tf_int_ops", "_int_ops.so"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_INT_OPS_LIBRARY")}
    run = subprocess.run([python, "-c", TRAIN_A_STEP], capture_output=True, text=True, timeout=600,
                         cwd=str(tmp_path), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trained int8" in run.stdout

"""The CUDA variant of the op library: where nvcc is installed, `make build`
compiles every op for DEVICE_GPU with sm_80 and sm_90 code. (The kernels
themselves are checked bit for bit on a GPU by tests/gpu/.)"""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu"))

import build  # noqa: E402  (tests/gpu/build.py: how nvcc is found)

pytestmark = pytest.mark.skipif(
    not any(build.nvcc_candidates()), reason="nvcc not installed: the op library is the CPU build")


@pytest.fixture(scope="module")
def library():
    import tf_int_ops._loader as loader

    loader.load()
    return os.environ.get(loader._ENV_OVERRIDE, loader._DEFAULT_PATH)


def test_every_op_has_a_gpu_kernel(library):
    from tensorflow.python.framework import kernels

    registered = kernels.get_all_registered_kernels().kernel
    ops = {k.op for k in registered if k.op.startswith("IntOps>")}
    gpu_ops = {k.op for k in registered if k.op.startswith("IntOps>") and k.device_type == "GPU"}
    # Every op the library defines has kernels (23 ops at the time of writing).
    import tf_int_ops._loader as loader

    defined = {name.replace("IntOps_", "IntOps>") for name in dir(loader.load()) if name.startswith("IntOps_")}
    assert ops == defined and len(ops) >= 23
    assert ops == gpu_ops, f"ops without a GPU kernel: {sorted(ops - gpu_ops)}"


def test_library_embeds_sm80_and_sm90_code(library):
    # The pinned nvidia-cuda-cuobjdump wheel puts it in site-packages.
    cuobjdump = shutil.which("cuobjdump") or os.path.join(
        sysconfig.get_paths()["purelib"], "nvidia", "cu13", "bin", "cuobjdump")
    listing = subprocess.run([cuobjdump, "--list-elf", library], capture_output=True, text=True, check=True).stdout
    archs = {line.rsplit(".", 2)[-2] for line in listing.splitlines() if line.endswith(".cubin")}
    assert archs == {"sm_80", "sm_90"}, listing

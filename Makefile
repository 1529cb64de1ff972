# One entry point for set-up, build, tests and the example training.
#   make train   # set everything up, then train integer vs float32 on the default dataset
#   make test    # set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BAZEL ?= bazel
TRAIN_ARGS ?= --compare
# Where nvcc is installed (PATH or /usr/local/cuda), the op library also gets
# its CUDA kernels (DEVICE_GPU): CI compiles them on every run.
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
BAZEL_CONFIG ?= $(if $(NVCC),--config=cuda,)

.PHONY: setup system venv build sanitize test train bench bench-gpu clean

setup: system venv build

# Debian/Ubuntu packages: Bazel (Debian's bazel-bootstrap builds offline), g++,
# the fortune-mod cookies in four languages, the real text of the example
# text classifier (keras_int.examples.data.load_fortunes), and Fashion-MNIST
# (dataset-fashion-mnist: keras_int.examples.data.load_fashion_mnist).
FORTUNES ?= /usr/share/games/fortunes
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
system:
	@if ! command -v $(BAZEL) >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1 \
	    || ! $(PYTHON) -c "import venv, ensurepip" >/dev/null 2>&1 \
	    || ! [ -f $(FORTUNES)/fortunes -a -d $(FORTUNES)/de -a -d $(FORTUNES)/es -a -d $(FORTUNES)/it ] \
	    || ! [ -f $(FASHION_MNIST)/train-images-idx3-ubyte.gz ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
	    --no-install-recommends bazel-bootstrap g++ python3-venv fortunes fortunes-de fortunes-es fortunes-it \
	    dataset-fashion-mnist; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . || $(PY) -m pip install -q --no-deps -e .
	touch $@

# Configure against the venv's TensorFlow, build, and put the library where
# the Python package (and a wheel) finds it.
build: venv
	$(PY) configure.py
	$(BAZEL) build $(BAZEL_CONFIG) //cc:_int_ops.so
	install -m 644 bazel-bin/cc/_int_ops.so tf_int_ops/_int_ops.so

# The C++ core under AddressSanitizer + UndefinedBehaviorSanitizer: its own
# test (twice: KERAS_INT_GEMM=pairs turns off the AVX-512 VNNI kernels, so a
# VNNI machine checks both sides of the run-time choice), then the op tests
# with the sanitized core loaded into TensorFlow (libasan must come first in
# the process, libstdc++ right after it).
SANITIZED_TESTS := tests/test_gemm_conv_ops.py tests/test_dfp_ops.py tests/test_pool_training_ops.py \
	tests/test_properties.py tests/test_layer_ops.py $(wildcard tests/test_layer_ops_*.py)
sanitize: build
	$(BAZEL) run --config=asan //cc:core_test
	KERAS_INT_GEMM=pairs $(BAZEL) run --config=asan //cc:core_test
	$(BAZEL) build //cc:_int_ops_asan.so
	LD_PRELOAD="$$(g++ -print-file-name=libasan.so) $$(g++ -print-file-name=libstdc++.so)" \
	  ASAN_OPTIONS=detect_leaks=0 TF_INT_OPS_LIBRARY=$(CURDIR)/bazel-bin/cc/_int_ops_asan.so \
	  $(PY) -m pytest -q -p no:cacheprovider $(SANITIZED_TESTS)

test: setup sanitize
	$(PY) -m pytest -q tests

train: setup
	$(PY) -m keras_int.examples.train $(TRAIN_ARGS)

bench: setup
	$(PY) benchmarks/ops.py

# int8 tensor-core GEMM/conv TOPS vs an fp16 GEMM of the same shape (needs nvcc and a GPU).
bench-gpu: venv
	$(PY) benchmarks/gpu.py

clean:
	$(BAZEL) clean
	rm -f tf_int_ops/_int_ops.so .bazelrc.user

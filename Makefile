PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := constraints-ci.txt
# The extras `make test` installs: the test tools, and CuPy + NVRTC to compile the CUDA kernels without a GPU
# (`make test TEST_EXTRAS=test` leaves those out; tests/test_cupy_offline.py is then skipped, except under CI).
TEST_EXTRAS ?= test,nvrtc
# One BLAS thread per process by default: on small machines NumPy's and torch's thread pools otherwise fight over
# the cores and make small matrix work many times slower. Override with `make test OMP_NUM_THREADS=2`.
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS
export OPENBLAS_NUM_THREADS ?= $(OMP_NUM_THREADS)
export MKL_NUM_THREADS ?= $(OMP_NUM_THREADS)

.PHONY: demo test tutorials bench gpu-check clean

$(VENV)/.installed-%: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-tutorials
	$(PY) -m tinyautograd.demo

test: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest -q $(PYTEST_ARGS)

tutorials: $(VENV)/.installed-test
	$(PY) tutorials/run_all.py

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py

gpu-check:
	PYTHON=$(PYTHON) bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info

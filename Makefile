PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := constraints-ci.txt

.PHONY: demo test tutorials bench gpu-check clean

$(VENV)/.installed-%: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-tutorials
	$(PY) -m tinyautograd.demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -q $(PYTEST_ARGS)

tutorials: $(VENV)/.installed-test
	$(PY) tutorials/run_all.py

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py

gpu-check:
	PYTHON=$(PYTHON) bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info

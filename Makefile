# Two entry points for a fresh machine: `make run` (quickstart study) and `make test` (the suite).
# Each creates .venv and installs what it needs; re-running skips the install while pyproject.toml is unchanged.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXPERIMENT ?= experiments/quickstart.yaml

.PHONY: run test test-fast lint docs wheel-check bench gpu-check install ui clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/rnncompare run $(EXPERIMENT)

# The HTML report is checked in headless Chromium: Debian's package, installed once if missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
chromium:
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 \
		|| ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null)

# The whole suite, slow tests included; the linter, the formatter's check and the docs site's strict build first.
test: $(VENV)/.installed-test chromium lint docs
	$(BIN)/python -m pytest

# The inner loop: the tests not marked slow (under 90 s on 2 cores).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The docs site (docs/, mkdocs.yml) into build/site; --strict: a broken link or a missing page is an error.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# A wheel built from this tree, installed alone in a fresh virtual environment: its `rnncompare tasks` and
# `rnncompare validate` of a shipped experiment work, with configs/default.yaml packaged inside it.
wheel-check: $(VENV)/.installed-test
	bash tests/scripts/wheel_check.sh $(BIN)/python

# What rnncompare costs over the bare fits, and what the workers and the backend gain: benchmarks/bench.py
# (three rounds of twelve runs, about 40 minutes on 2 cores at its usual speed).
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench.py --repeat 3

# On a machine with an NVIDIA GPU (and jax[cuda]): which kernels the models run there, their epoch times on GPU and
# CPU, and the quickstart with 1 and 3 workers sharing the GPU (about 7 minutes; results in /tmp/gpu-check).
gpu-check: $(VENV)/.installed
	PATH=$(abspath $(BIN)):$$PATH bash benchmarks/gpu_check.sh

ui: $(VENV)/.installed
	$(BIN)/rnncompare ui

clean:
	rm -rf $(VENV) mlruns/mlflow.db mlruns/artifacts mlruns/tuner mlruns/reports mlruns/cache

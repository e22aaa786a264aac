# The two commands of the README: `make demo` and `make test`.
# Both create a virtual environment in .venv and install atominfo into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all dev lint docs bench bench-streaming clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

# Development tools (ruff, mypy, pre-commit, mkdocs): the `dev` extra.
DEV_STAMP := $(VENV)/.installed-dev

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[test,dev]"
	touch $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/atominfo demo

# The torch tests run on the CPU build: the pinned version resolves to the
# local CPU wheel (never an unpinned torch, which pulls the CUDA build).
TORCH_CPU ?= torch==2.13.0

# The suite on TEST_WORKERS processes (pytest-xdist); tests sharing a Dask cluster or
# an expensive module fixture run in one process (an xdist_group, see tests/conftest.py).
# `make test`: every test but those marked `slow` (about 2 min on 2 cores);
# `make test-slow`: the slow ones (MD, LAMMPS, MPI, Dask, signals; about 3.5 min);
# `make test-all`: both, as CI runs them (.ci/run).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP)
	$(BIN)/pip install -q "$(TORCH_CPU)"
	$(PYTEST) -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pip install -q "$(TORCH_CPU)"
	$(PYTEST) -m slow

test-all: test test-slow

dev: $(DEV_STAMP)

# Rules in ruff.toml, mypy settings in pyproject.toml ([tool.mypy]).
# Both always run, so one pass reports everything; fails if either found problems.
lint: $(DEV_STAMP)
	$(BIN)/ruff check; ruff=$$?; $(BIN)/mypy; mypy=$$?; test $$ruff -eq 0 && test $$mypy -eq 0

# The API reference and the method into site/ (mkdocs.yml). Add DOCSFLAGS=--strict
# to fail on any warning, docstrings included.
DOCSFLAGS ?=
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build $(DOCSFLAGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_descriptors.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_compression.py
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/bench_outliers.py
	$(BIN)/python benchmarks/bench_monitor.py
	$(BIN)/python benchmarks/bench_kernels.py

bench-streaming: $(STAMP)  # about an hour on 2 cores: 1,000,000 atoms x 100,000 references
	$(BIN)/python benchmarks/bench_streaming_memory.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache site

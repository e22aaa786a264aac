# The two commands of the README: `make demo` and `make test`.
# Both create a virtual environment in .venv and install atominfo into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/atominfo demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_descriptors.py
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache

# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11+.
# Each (re)builds the local virtual environment .venv when it is missing or older
# than pyproject.toml, then runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

demo: $(VENV)/.demo-ready
	$(BIN)/chainrule demo

test: $(VENV)/.test-ready
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(VENV)/.test-ready
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(VENV)/.test-ready
	$(BIN)/python benchmarks/run_all.py

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "chainrule needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-ready: pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[rich,plot]'
	touch $@

# The tests cross-check the engine against PyTorch: its CPU build, pinned (a looser pin
# would fetch a CUDA build of several GB). It goes first, so that the [torch] extra that
# [dev] holds finds it already installed.
$(VENV)/.test-ready: pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache .hypothesis chainrule-demo

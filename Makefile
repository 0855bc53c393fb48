# Targets people and CI use. Every target sets up .venv itself; nothing needs the network
# beyond the package registry (MNIST falls back to the copy bundled in data/mnist/).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help venv dev train test lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/mnist-train: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/mnist-train
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/mnist-train  ## create .venv with the package installed

dev: $(VENV)/.dev  ## create .venv with the dev extras (pytest, ruff)

train: venv  ## fetch MNIST (bundled copy as last mirror) and train the softmax model into runs/
	$(BIN)/mnist-train --config configs/default.toml

lint: dev  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: dev lint  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

bench: dev  ## benchmark: epoch times vs the BLAS floor, peers, memory, start-up (~2 min); writes bench/results.json
	$(BIN)/python bench/run.py

clean:  ## remove .venv and caches (keeps runs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

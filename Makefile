# Targets people and CI use. Every target sets up .venv itself; nothing needs the network
# beyond the package registry (MNIST falls back to the copy bundled in data/mnist/).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help venv dev train test lint bench docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# pip's own output shows (its progress bars on a terminal): the first install takes ~40 s
$(BIN)/mnist-train: pyproject.toml
	@echo "setting up .venv: numpy, click, requests, tqdm, threadpoolctl (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e .
	@# the commands start ~30 ms sooner from bytecode, which PYTHONDONTWRITEBYTECODE=1 would
	@# otherwise never let Python keep for an editable install
	$(BIN)/python -m compileall -q mnist_cli
	touch $@

$(VENV)/.dev: $(BIN)/mnist-train
	@echo "adding the dev extras to .venv: pytest, pytest-xdist, ruff, matplotlib, Pillow, playwright (first run only)"
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

venv: $(BIN)/mnist-train  ## create .venv with the package installed

dev: $(VENV)/.dev  ## create .venv with the dev extras (pytest, pytest-xdist, ruff, matplotlib, Pillow, Playwright)

train: venv  ## fetch MNIST (bundled copy as last mirror) and train the softmax model into runs/
	$(BIN)/mnist-train --config configs/default.toml

lint: dev  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: dev lint  ## the whole test suite (what CI runs)
	@# two workers (pytest-xdist): much of the suite waits on servers and subprocesses
	$(BIN)/python -m pytest -q -n 2

bench: dev  ## benchmark: epoch times vs the BLAS floor, peers, memory, start-up, mnist-serve latency (~3 min); writes bench/results.json
	$(BIN)/python bench/run.py
	$(BIN)/python bench/serve.py

docs: dev  ## regenerate docs/cli.md's option reference (--help) and every example output (runs them, ~2 min)
	$(BIN)/python docs/generate_cli_md.py
	$(BIN)/python docs/examples.py

clean:  ## remove .venv and caches (keeps runs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

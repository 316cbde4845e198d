# The two commands of the README: `make run` (the example service) and `make test` (install
# everything into .venv, then lint, type-check and run the whole test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m uvicorn examples.app:app --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests examples benchmarks deploy
	$(PY) -m ruff format --check src tests examples benchmarks deploy
	$(PY) -m mypy

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The README's commands. Each creates .venv when missing and installs the pinned dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo test lint typecheck unit bench e2e constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# Installed state is keyed on the inputs that define it.
$(VENV)/.installed: $(BIN)/uv pyproject.toml constraints.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[dev,bench]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.run

e2e: $(VENV)/.installed
	$(BIN)/python scripts/e2e.py

# Refresh the pins from a fresh resolution (run when pyproject.toml's dependencies change).
constraints: $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python $(BIN)/python --python-version 3.11 --extra dev --extra bench \
		--no-header --no-annotate pyproject.toml -o constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

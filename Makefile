# The README's commands. Each creates .venv when missing and installs the pinned dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo test lint typecheck unit bench e2e ui-test constraints pins compat matrix dist-check clean

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

# -- other Airflow versions (README: "Airflow and Python versions") ---------------------------------
# One venv per Airflow minor, installed from the pins in ci/pins (resolved from the package index
# only, with the packages of that Airflow release's time: a fresh resolution takes today's releases,
# which that Airflow predates; e.g. Airflow 3.0.6 fails with cryptography 51 and FastAPI 0.12x).
# Our own direct dependencies are exempt from the date, so their lower bounds are what is tested.
# The first interpreter of that version that runs (a pyenv shim without the version does not).
find_python = $(shell for c in $$(command -v python$(1)) $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python /root/.pyenv/versions/$(1).*/bin/python); do "$$c" -c 'import sys; assert sys.version_info[:2] == tuple(map(int, "$(1)".split(".")))' 2>/dev/null && { echo "$$c"; break; }; done)
PY310 := $(call find_python,3.10)
PY311 := $(call find_python,3.11)
PY312 := $(call find_python,3.12)
PY313 := $(call find_python,3.13)
OWN_DEPS_UNDATED := $(foreach p,apache-airflow-providers-common-compat tenacity aiohttp,--exclude-newer-package $(p)=2026-12-01)
# Airflow version -> Python of its venv and the date its release's dependencies are taken from.
MATRIX := 3.0:3.10:2025-09-15 3.1:3.11:2026-03-15 3.2:3.12:2026-06-15 3.3:3.13:
COMPAT_TESTS := tests --ignore=tests/e2e --ignore=tests/benchmarks

# Refresh ci/pins/airflow-<minor>.txt. 3.0 takes the lowest versions of our direct dependencies
# (lowest-direct): the compatibility run of CI tests every lower bound in pyproject.toml.
pins: $(BIN)/uv
	@for entry in $(MATRIX); do \
		minor=$${entry%%:*}; rest=$${entry#*:}; py=$${rest%%:*}; date=$${rest#*:}; \
		resolution=$$([ $$minor = 3.0 ] && echo lowest-direct || echo highest); \
		echo "pins: Airflow $$minor, Python $$py, $$resolution, packages of $${date:-today}"; \
		$(BIN)/uv pip compile --quiet --python-version $$py --resolution $$resolution --extra test \
			$${date:+--exclude-newer $$date} $(OWN_DEPS_UNDATED) --no-header --no-annotate \
			pyproject.toml ci/pins/airflow-$$minor.in -o ci/pins/airflow-$$minor.txt || exit 1; \
	done
	$(BIN)/uv pip compile --quiet --python-version 3.13 --no-header --no-annotate \
		ci/pins/release-tools.in -o ci/pins/release-tools.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --no-annotate \
		ci/pins/ui-test.in -o ci/pins/ui-test.txt

# venv-<minor>: Airflow <minor> from its pins, this project editable, on the Python the matrix names.
.venv-%/.installed: ci/pins/airflow-%.txt pyproject.toml | $(BIN)/uv
	@entry="$(filter $*:%,$(MATRIX))"; rest=$${entry#*:}; py=$${rest%%:*}; \
	python=$$(case $$py in 3.10) echo "$(PY310)";; 3.11) echo "$(PY311)";; 3.12) echo "$(PY312)";; 3.13) echo "$(PY313)";; esac); \
	if [ -z "$$python" ]; then echo "Airflow $* is tested on Python $$py, which is not installed" >&2; exit 1; fi; \
	$(BIN)/uv venv --quiet --allow-existing --python $$python .venv-$* && \
	$(BIN)/uv pip install --quiet --python .venv-$*/bin/python -c ci/pins/airflow-$*.txt -e ".[test]"
	touch $@

# The compatibility run of CI: the oldest supported Airflow (3.0.6) with the lowest versions of our
# dependencies, on Python 3.10: every test but e2e and the benchmarks (unit, sandbox, trigger, fault
# matrix, example DAGs with dag.test()); what needs Airflow 3.3 is skipped with its reason.
compat: .venv-3.0/.installed
	.venv-3.0/bin/python -m pytest $(COMPAT_TESTS)

# Every supported Airflow minor in turn (not in CI: about as long as make test each).
matrix: $(foreach entry,$(MATRIX),.venv-$(firstword $(subst :, ,$(entry)))/.installed)
	@for entry in $(MATRIX); do minor=$${entry%%:*}; echo "== Airflow $$minor"; \
		.venv-$$minor/bin/python -m pytest $(COMPAT_TESTS) -q || exit 1; done

# The built artifact, tested once: wheel and sdist, twine check, the wheel (not editable, only the
# Airflow 3.3 pins) in a clean venv on Python 3.13, then providers list, connection test, a DAG run.
dist-check: $(BIN)/uv
	@if [ -z "$(PY313)" ]; then echo "dist-check needs Python 3.13, which is not installed" >&2; exit 1; fi
	rm -rf dist .venv-dist .venv-tools
	$(BIN)/uv build --quiet --out-dir dist
	$(BIN)/uv venv --quiet --python $(PY313) .venv-tools
	$(BIN)/uv pip install --quiet --python .venv-tools/bin/python -r ci/pins/release-tools.txt
	.venv-tools/bin/twine check --strict dist/*
	$(BIN)/uv venv --quiet --python $(PY313) .venv-dist
	$(BIN)/uv pip install --quiet --python .venv-dist/bin/python -c ci/pins/airflow-3.3.txt dist/*.whl
	.venv-dist/bin/python scripts/dist_check.py dist

# The connection form, Test and the Providers page in headless Chromium (scripts/ui_test.py): Debian's
# chromium and chromium-driver (installed here when missing, no browser download), Selenium in its
# own venv; Airflow's api-server and the sandbox run from .venv on loopback.
UI_VENV := .venv-ui
$(UI_VENV)/.installed: ci/pins/ui-test.txt | $(BIN)/uv
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(UI_VENV)
	$(BIN)/uv pip install --quiet --python $(UI_VENV)/bin/python -r ci/pins/ui-test.txt
	touch $@

ui-test: $(VENV)/.installed $(UI_VENV)/.installed
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "ui-test: installing Debian's chromium and chromium-driver"; \
		$$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
		|| { $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -q >/dev/null && \
		     $$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	fi
	$(UI_VENV)/bin/python scripts/ui_test.py --venv $(VENV)

clean:
	rm -rf $(VENV) .venv-* dist .mypy_cache .ruff_cache .pytest_cache

# The two commands: `make run` (the relay locally, on embedded defaults) and `make test` (everything).
# Both set up .venv on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (Terraform policy checks) lives in its own venv: its ~100 dependencies would clash with our pins.
CHECKOV := .venv-checkov/bin/checkov

.PHONY: run test lint bench setup clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(CHECKOV):
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30

setup: $(STAMP) $(CHECKOV)

run: $(STAMP)
	$(BIN)/alert-relay local

test: $(STAMP) $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .venv-checkov .alert-relay .pytest_cache .ruff_cache

# The README's commands: `make demo` and `make test`. Everything runs from the project's .venv.
# `make demo DEMO_LANG=en` runs the demo in English.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_LANG ?= ja

.PHONY: venv install demo demo-terminal test lint clean

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changed since the last install.
install: $(INSTALLED)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The web demo on a fresh demo/regflow.db; `make demo-terminal` registers in the terminal instead.
demo: install
	$(BIN)/regflow demo --db sqlite:///demo/regflow.db --mail outbox:demo/outbox --lang $(DEMO_LANG)

demo-terminal: install
	mkdir -p demo
	$(BIN)/regflow demo --terminal --db sqlite:///demo/regflow.db --mail outbox:demo/outbox --lang $(DEMO_LANG)

lint: install
	$(BIN)/ruff check regflow tests
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

# Removes the demo's database and mail, and caches; keeps .venv.
clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache build dist
	find regflow tests -name __pycache__ -type d -prune -exec rm -rf {} +

# The README's commands: `make demo`, `make test`, `make bench`. Everything runs from .venv.
# `make demo DEMO_LANG=en` runs the demo in English; DEMO_PRODUCT is the product name it shows
# (as the guide does; mail comes from "DEMO_PRODUCT <no-reply@regflow.invalid>").
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.installed-bench
DEMO_LANG ?= ja
DEMO_PRODUCT ?= 次世代社労法務システム

.PHONY: venv install demo demo-terminal test lint bench clean

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changed since the last install.
install: $(INSTALLED)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The web demo on a fresh demo/regflow.db; `make demo-terminal` registers in the terminal instead.
demo: install
	$(BIN)/regflow demo --db sqlite:///demo/regflow.db --mail outbox:demo/outbox --lang $(DEMO_LANG) \
		--product '$(DEMO_PRODUCT)'

demo-terminal: install
	mkdir -p demo
	$(BIN)/regflow demo --terminal --db sqlite:///demo/regflow.db --mail outbox:demo/outbox --lang $(DEMO_LANG) \
		--product '$(DEMO_PRODUCT)'

lint: install
	$(BIN)/ruff check regflow tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest

# regflow against its anchors, in one run (a few minutes): prints the table and writes
# benchmarks/results.json; see docs/benchmarks.md. `python -m benchmarks --quick` is a smoke test.
bench: install $(BENCH_INSTALLED)
	$(BIN)/python -m benchmarks

$(BENCH_INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $@

# Removes the demo's database and mail, and caches; keeps .venv.
clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache build dist
	find regflow tests -name __pycache__ -type d -prune -exec rm -rf {} +

# The documentation site in site/ (MkDocs Material, strict: a broken link fails it): regenerates
# docs/gen/ (a page per built-in flow with its diagram, drawn by Graphviz' dot, which must be
# installed; the overview; the JSON API reference; the changelog) and bundles Mermaid from
# tools/mermaid so Mermaid blocks draw offline. Browse it with `python3 -m http.server -d site`.
.PHONY: docs
MERMAID_JS := tools/mermaid/node_modules/mermaid/dist/mermaid.min.js

docs: install $(MERMAID_JS)
	$(BIN)/python -m regflow.docgen docs/gen --mermaid $(MERMAID_JS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(MERMAID_JS):
	npm ci --prefix tools/mermaid --no-audit --no-fund

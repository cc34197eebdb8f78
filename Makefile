# AUTO toolkit. `make demo` and `make test` do all set-up on a fresh Debian machine (run as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the lab and tests need: dockerd for the swarm clusters, busybox for the image.
APT_PACKAGES := docker.io busybox-static iproute2 curl

.PHONY: help system venv test unit lint demo lab-up lab-down clean

help:
	@echo "make demo  - set up, start the local lab and deploy a sample stack to its live colour"
	@echo "make test  - set up and run the whole suite (lint, unit, state service, lab end-to-end)"
	@echo "make lint | make lab-down | make clean"

system:
	@if ! command -v dockerd >/dev/null || ! command -v busybox >/dev/null || ! command -v ip >/dev/null \
	    || ! command -v curl >/dev/null; then \
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

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/state

test: system $(STAMP) lint
	$(BIN)/pytest tests

lab-up: system $(STAMP)
	$(BIN)/auto-deploy lab up >/dev/null

lab-down: $(STAMP)
	$(BIN)/auto-deploy lab down

demo: lab-up
	@set -euo pipefail; eval "$$($(BIN)/auto-deploy lab env)"; \
	echo "== which colour is live"; \
	$(BIN)/auto-deploy resolve --env lab; \
	echo "== deploy the sample stack (deployer/lab/demo-stack.yml) and wait until it really runs"; \
	$(BIN)/auto-deploy deploy --env lab --stack demo -c deployer/lab/demo-stack.yml \
	  --resolve-image never --rollback-on-failure --timeout 120; \
	echo "== status"; \
	$(BIN)/auto-deploy status --env lab --stack demo; \
	manager=$$($(BIN)/auto-deploy resolve --env lab --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["manager_address"])'); \
	echo "== reach it: curl http://$$manager:18080/"; \
	curl -fsS --max-time 5 "http://$$manager:18080/"; \
	echo "(the lab stays up: 'make lab-down' removes it)"

clean: lab-down
	rm -rf $(VENV) .tox .pytest_cache .ruff_cache

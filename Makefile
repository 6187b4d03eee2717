# gitops-lab: `make lab` to run the lab, `make test` to pass the tests (see README.md).
# Everything lands in .venv (Python) and ~/.cache/gitops-lab (control-plane binaries).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp
LAB_CACHE := $(or $(GITOPS_LAB_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gitops-lab)
TEST_CLUSTER := $(or $(GITOPS_LAB_TEST_CLUSTER),gitops-lab-test)
PYTEST_ARGS ?=

.PHONY: setup binaries kind-images lab test lint bench clean distclean notebooks docs

setup: $(STAMP) binaries

# Re-installs only when pyproject.toml changes; a warm `make setup` takes about a second.
$(STAMP): pyproject.toml
	@if [ ! -x "$(BIN)/python" ]; then \
	  [ -n "$(PYTHON)" ] || { echo "error: python3.11 not found; hint: install Python 3.11 (Debian 12: apt-get install python3 python3-venv)" >&2; exit 1; }; \
	  "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: $(PYTHON) is not Python 3.11; hint: make PYTHON=/path/to/python3.11" >&2; exit 1; }; \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  "$(PYTHON)" -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The pinned Kubernetes toolchain: cold = built with Go (~6-7 min on 2 cores), warm = a check.
binaries: $(STAMP)
	$(BIN)/python -c 'from gitops_lab.cluster import ensure_binaries; ensure_binaries()'

# The kind node image and the course's images, built here (cold ~10 min), where Docker answers.
kind-images: $(STAMP) binaries
	@if $(BIN)/gitops-lab docker status >/dev/null 2>&1; then \
	  $(BIN)/python -c 'from gitops_lab.cluster.labimages import build_all; build_all()'; \
	else echo "no Docker daemon answers: skipping the kind images (the local provider needs none)"; fi

lab: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# The chapters are generated (without outputs) from notebooks/_build.py.
notebooks: $(STAMP)
	$(BIN)/python notebooks/_build.py

# Executed copies of the chapters, with outputs, for reading on the web: every chapter in order on
# a fresh lab of its own (GITOPS_LAB_DOCS_CLUSTER, default gitops-lab-docs; the local provider
# unless GITOPS_LAB_DOCS_PROVIDER=kind), solutions on, outputs sanitised, into docs/notebooks/.
# Outside notebooks/, so nbval never runs them; not a prerequisite of `make test`.
docs: setup
	$(BIN)/python -m gitops_lab.course.publish

test: setup lint kind-images
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gitops_lab tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

clean:
	@if [ -x "$(BIN)/gitops-lab" ]; then $(BIN)/gitops-lab cluster down --name $(TEST_CLUSTER) || true; fi
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Also stops every lab cluster and registry and deletes the built binaries (the next setup
# rebuilds them).
distclean:
	@if [ -x "$(BIN)/gitops-lab" ] && [ -d "$(LAB_CACHE)/clusters" ]; then \
	  for dir in "$(LAB_CACHE)"/clusters/*/; do \
	    [ -d "$$dir" ] && $(BIN)/gitops-lab cluster down --name "$$(basename "$$dir")" || true; \
	  done; \
	fi
	@if [ -x "$(BIN)/gitops-lab" ] && [ -d "$(LAB_CACHE)/registry" ]; then \
	  for dir in "$(LAB_CACHE)"/registry/*/; do \
	    [ -d "$$dir" ] && $(BIN)/gitops-lab registry down --name "$$(basename "$$dir")" || true; \
	  done; \
	fi
	$(MAKE) clean
	rm -rf "$(LAB_CACHE)"

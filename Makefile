# Two commands do all the set-up on a fresh machine:
#   make demo   - train the demo model (built-in vs custom loss), write results to runs/demo
#   make test   - run the test suite (lint, types, tests, doctests)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch; a bare "torch" requirement could pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(VENV)/.core:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	touch $@

$(VENV)/.demo: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[demo]"
	touch $@

$(VENV)/.dev: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/lossforge demo --out runs/demo

test: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: $(VENV)/.dev
	$(VENV)/bin/lossforge bench --all

clean:
	rm -rf $(VENV) runs build *.egg-info

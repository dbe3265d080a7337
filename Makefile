# Two commands do all the set-up on a fresh machine:
#   make demo   - train the demo model (built-in vs custom loss), write results to runs/demo
#   make test   - run the test suite (lint, types, the docs site built with warnings as errors, tests, doctests)
#   make docs   - build the documentation site into site/ (mkdocs --strict; open site/index.html)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch; a bare "torch" requirement could pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test docs lint bench clean

$(VENV)/.core:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	touch $@

$(VENV)/.demo: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[demo]"
	touch $@

$(VENV)/.dev: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[dev,docs]"
	touch $@

$(VENV)/.docs: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[docs]"
	touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/lossforge demo --out runs/demo

# The per-loss pages and figures are generated from the registry during the build (docs/_gen/hooks.py).
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The site is built once, here, with warnings as errors; tests/test_docs_site.py serves that build.
test: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	LOSSFORGE_DOCS_SITE=site $(PY) -m pytest -q

bench: $(VENV)/.dev
	$(VENV)/bin/lossforge bench --all

clean:
	rm -rf $(VENV) runs build site *.egg-info

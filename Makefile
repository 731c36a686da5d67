# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OFFICIAL := .venv-official
STAMP := $(VENV)/.installed
UV := $(BIN)/uv

.PHONY: demo test lint typecheck bench chaos clean venv official floors

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip install -q --python $(BIN)/python -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

# The official client pins old packaging/dateutil, so it gets its own venv (driven as a subprocess).
$(OFFICIAL)/.installed:
	test -x $(OFFICIAL)/bin/python || $(PYTHON) -m venv $(OFFICIAL)
	$(OFFICIAL)/bin/python -m pip install -q --disable-pip-version-check dominodatalab==2.2.0
	touch $@

official: $(OFFICIAL)/.installed

test: $(STAMP) $(OFFICIAL)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	DOMINO_OFFICIAL_PYTHON=$(CURDIR)/$(OFFICIAL)/bin/python $(BIN)/pytest -n 2 --dist loadgroup

# The lowest versions pyproject.toml declares, each orchestrator in a throwaway venv (needs PyPI).
floors: $(STAMP)
	UV=$(CURDIR)/$(UV) ci/floors.sh

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

bench: $(STAMP) $(OFFICIAL)/.installed
	DOMINO_OFFICIAL_PYTHON=$(CURDIR)/$(OFFICIAL)/bin/python $(BIN)/python benchmarks/run_all.py

chaos: $(STAMP)
	DOMINO_CHAOS_FULL=1 $(BIN)/pytest -m chaos -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(OFFICIAL) build *.egg-info

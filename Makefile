# The two commands a fresh machine needs (see README):
#   make run   - set up .venv and start `restyle serve` (embedded mode) on http://127.0.0.1:8000
#   make test  - install redis-server if missing, set up .venv with the dev tools, lint, and run
#                the default test suite
# `make demo` stylizes the bundled example photos into ./out/.
# `make test-slow` adds the tests that run the real VGG19 at 256 px (minutes on a CPU).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run demo test test-slow lint system-deps bench-cpu bench-fast-cpu bench-service clean

$(STAMP): pyproject.toml web/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing can pull a multi-GB CUDA build in its place.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The web app's live mode: onnxruntime-web, exactly as web/package-lock.json pins it.
	@$(call apt,npm,nodejs npm)
	cd web && npm ci --no-audit --no-fund
	rm -f $(VENV)/.installed-*
	touch $@

HOST ?= 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/restyle serve --host $(HOST) --port $(PORT)

demo: $(STAMP)
	$(BIN)/restyle demo --output-dir out

# Debian packages, installed when their command is missing: $(call apt,COMMAND,PACKAGES).
apt = command -v $(1) >/dev/null || { \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get install -y -q $(2) >/dev/null 2>&1 || \
	{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(2) >/dev/null; }; }; \
	command -v $(1) >/dev/null

# The service tests run a real redis-server; the web app's tests drive Debian's headless chromium.
system-deps:
	@$(call apt,redis-server,redis-server)
	@$(call apt,chromium,chromium)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks model-zoo
	$(BIN)/ruff format --check src tests benchmarks model-zoo
	$(BIN)/mypy

test: lint system-deps
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench-cpu: $(STAMP)
	$(BIN)/python benchmarks/gatys_vs_pastiche.py --device cpu --size 256 --iterations 100

bench-fast-cpu: $(STAMP)
	$(BIN)/python benchmarks/fast_inference.py --device cpu

bench-service: $(STAMP)
	$(BIN)/python benchmarks/service_load.py --clients 32 --seconds 60 --json docs/benchmarks-service-cpu.json

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

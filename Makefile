# Every install step of edgecompress lives here. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench bench-quick fuzz clean

# torch is pinned to the CPU build 2.13.0 through constraints.txt (a newer torch would pull a CUDA build).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/edgecompress demo --out runs/demo

# The report's browser test (tests/report) opens report.html in Debian's headless Chromium. CI runs as root on
# a fresh Debian machine; elsewhere run this step with sudo, once.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

test: install chromium
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) -m benchmarks

# nightly: over 10,000 generated recipes and argument lists (benchmarks/fuzz.py); `make bench` runs it too.
# Rewrites only the fuzzing section of BENCHMARKS.md.
fuzz: install
	$(PY) -m benchmarks --only fuzz

# the README's headline claims, re-measured (about 3 minutes); CI runs it after the tests
bench-quick: install
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
